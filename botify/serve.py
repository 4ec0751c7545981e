"""`python -m botify serve`: the service under gunicorn, on the embedded Redis unless `REDIS_URL` is set."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys

from botify.app import check_settings
from botify.connection import embedded_for, open_redis
from botify.load import load_catalog
from botify.settings import Settings
from botify.store import CATALOG


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5001)
    parser.add_argument("--workers", type=int, help="gunicorn workers (default: BOTIFY_WORKERS or 2)")


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    check_settings(settings)  # one line here, not a worker's traceback per boot attempt
    env = dict(os.environ, BOTIFY_BIND=f"{args.host}:{args.port}")
    if args.workers:
        env["BOTIFY_WORKERS"] = str(args.workers)
    with open_redis(settings) as client:  # the embedded server, when started here, lives as long as gunicorn
        env["REDIS_URL"] = settings.redis_url or embedded_for(settings).url
        if client.get(f"{CATALOG}:current") is None and (settings.data_dir / "tracks.json").exists():
            print(f"catalog: {load_catalog(client, settings.data_dir)} tracks from {settings.data_dir}")
        command = [sys.executable, "-m", "gunicorn", "-c", "python:botify.gunicorn_conf", "botify.wsgi:app"]
        started: list[subprocess.Popen] = []

        def forward(number: int, frame: object) -> None:
            """gunicorn stops gracefully on the signal; before it exists, there is nothing to stop but us."""
            if not started:
                raise SystemExit(128 + number)
            started[0].send_signal(number)

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, forward)  # before gunicorn starts: a signal can never leave it running alone
        server = subprocess.Popen(command, env=env)
        started.append(server)
        print(f"botify serving on http://{args.host}:{args.port} (Redis: {env['REDIS_URL']})", flush=True)
        return server.wait()
