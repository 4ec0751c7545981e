"""gunicorn settings for botify (`gunicorn -c python:botify.gunicorn_conf botify.wsgi:app`).

Threaded workers keep client connections alive (the simulator and nginx reuse them).
"""

import os

# One BLAS thread per worker thread: the workers and their threads already use every core, and OpenBLAS's own
# threads would only spin against them (a 50k x 32 mat-vec costs 6x the CPU with 2 BLAS threads here).
# Set before the workers import numpy (the app is imported after the fork).
for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(variable, "1")

from botify.settings import Settings  # noqa: E402 (stdlib only: numpy is not imported yet)

settings = Settings.from_env()
bind = settings.bind
workers = settings.workers
worker_class = "gthread"
threads = settings.threads
keepalive = 75
timeout = 30
graceful_timeout = 15
accesslog = None
loglevel = os.environ.get("BOTIFY_LOG_LEVEL", "warning")
# Heartbeat files in memory: on a disk-backed /tmp (a container's overlay) their fchmod can stall a worker.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None


def worker_exit(server, worker):
    """Close the worker's event-log file (every line is already written)."""
    services = getattr(getattr(worker, "wsgi", None), "extensions", {}).get("botify")
    if services is not None:
        services.events.close()
