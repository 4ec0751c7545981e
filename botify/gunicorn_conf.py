"""gunicorn settings for botify (`gunicorn -c python:botify.gunicorn_conf botify.wsgi:app`).

Threaded workers keep client connections alive (the simulator and nginx reuse them).
"""

import gc
import os
import sys

# One BLAS thread per worker thread: the workers and their threads already use every core, and OpenBLAS's own
# threads would only spin against them (a 50k x 32 mat-vec costs 6x the CPU with 2 BLAS threads here).
# Set before the workers import numpy (the app is imported after the fork).
for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(variable, "1")

from botify.settings import GUNICORN_MASTER, WORKER_NUMBER, Settings  # noqa: E402 (stdlib only: no numpy yet)

try:
    settings = Settings.from_env()
except ValueError as error:  # one line, as `botify serve` says it, not gunicorn's "Failed to read config file" stack
    print(f"botify: {error}", file=sys.stderr)
    raise SystemExit(1) from None
os.environ[GUNICORN_MASTER] = str(os.getpid())  # the app refuses to be built in this process (`botify.wsgi`)
bind = settings.bind
workers = settings.workers
worker_class = "botify.gunicorn_worker.DrainingThreadWorker"  # gthread, closing its socket at once on stop
# Each worker listens on its own SO_REUSEPORT socket, so the kernel spreads new connections across workers.
# With one shared socket, the first worker to wake accepts a whole burst of keep-alive connections (the
# simulator's, nginx's upstream pool): all 32 of a load test's connections on one worker was the usual outcome.
# The flip sides: a second botify started by the same user on the same port joins instead of failing to bind, and
# connections still queued on a worker's socket when it dies are reset (Linux >= 5.14 migrates them to a sibling
# with `sysctl net.ipv4.tcp_migrate_req=1`).
reuse_port = True
threads = settings.threads
keepalive = 75
timeout = 30
graceful_timeout = 15
accesslog = None
loglevel = settings.log_level
# Heartbeat files in memory: on a disk-backed /tmp (a container's overlay) their fchmod can stall a worker.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None


def on_starting(server):
    """Refuse to start, in one line, with settings `botify serve` refuses (an unknown experiment or fallback, an
    event-log folder that cannot be written) or without a Redis to serve from: else workers die with a traceback."""
    from botify.connection import NoRedis, redis_client  # redis-py, orjson: numpy stays out of the master
    from botify.event_log import check_log_dir
    from botify.registry import check_settings

    try:
        check_settings(settings)
        check_log_dir(settings.log_dir)
        redis_client(settings)  # a REDIS_URL redis-py can read, or the data folder's embedded Redis running
    except (NoRedis, ValueError, OSError) as error:
        print(f"botify: {error}", file=sys.stderr)
        raise SystemExit(1) from None


def post_fork(server, worker):
    """Tell the app which worker it is (1, 2, ... in spawn order): it seeds its random picks with that number."""
    os.environ[WORKER_NUMBER] = str(worker.age)


def post_worker_init(worker):
    """Freeze what the worker loaded (modules, the app, the catalog): the collector's full passes then skip it.
    Unfrozen, each full pass walked these ~35-55k objects every few seconds under load, stalling the worker
    10-34 ms (both threads) and setting the tail; frozen, a pass takes under 1 ms."""
    gc.freeze()


def worker_exit(server, worker):
    """Close the worker's event-log file (every line is already written)."""
    services = getattr(getattr(worker, "wsgi", None), "extensions", {}).get("botify")
    if services is not None:
        services.events.close()
