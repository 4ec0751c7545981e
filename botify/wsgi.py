"""The WSGI application for any server: `botify.wsgi:app` (settings from the environment), one per worker process.

Not in gunicorn's master (`--preload`, which builds it before any other hook): each worker must build its own, with
its own event-log file and random stream, where a preloaded app's workers would all write the master's file and
rotate it under each other.
"""

import os
import sys

from botify.settings import GUNICORN_MASTER

if os.environ.get(GUNICORN_MASTER) == str(os.getpid()):
    print("botify: --preload is not supported: each worker builds its own app (its event log)", file=sys.stderr)
    raise SystemExit(1)

from botify.app import create_app  # noqa: E402 (numpy and the rest: not imported in a master refusing to preload)

app = create_app()
