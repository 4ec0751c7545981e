"""gunicorn settings for botify (`gunicorn -c python:botify.gunicorn_conf botify.wsgi:app`).

Threaded workers keep client connections alive (the simulator and nginx reuse them).
"""

import os

# One BLAS thread per worker thread: the workers and their threads already use every core, and OpenBLAS's own
# threads would only spin against them (a 50k x 32 mat-vec costs 6x the CPU with 2 BLAS threads here).
# Set before the workers import numpy (the app is imported after the fork).
for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(variable, "1")

bind = os.environ.get("BOTIFY_BIND", "127.0.0.1:5001")
workers = int(os.environ.get("BOTIFY_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("BOTIFY_THREADS", "4"))
keepalive = 75
timeout = 30
graceful_timeout = 15
accesslog = None
loglevel = os.environ.get("BOTIFY_LOG_LEVEL", "warning")
# Heartbeat files in memory: on a disk-backed /tmp (a container's overlay) their fchmod can stall a worker.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None


def worker_exit(server, worker):
    """Write out the worker's queued events before it goes."""
    services = getattr(getattr(worker, "wsgi", None), "extensions", {}).get("botify")
    if services is not None:
        services.events.close()
