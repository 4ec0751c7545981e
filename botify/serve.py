"""`python -m botify serve`: the service under gunicorn, on the embedded Redis unless `REDIS_URL` is set."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys

from botify.arguments import bounded
from botify.connection import check_answers, client_for, embedded_for, save_snapshot, url_location
from botify.embedded_redis import EmbeddedRedis
from botify.event_log import check_log_dir
from botify.load import load_catalog
from botify.process import host_port, stop_with_parent
from botify.registry import check_settings
from botify.settings import MAX_WORKERS, Settings
from botify.store import live_catalog_version

REDIS_CHECK_SECONDS = 1.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    host, port = Settings.bind.rsplit(":", 1)
    parser.add_argument("--host", default=host, help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=bounded(int, 1, 65535), default=int(port), help="port (default: %(default)s)")
    parser.add_argument(
        "--workers", type=bounded(int, 1, MAX_WORKERS), help="gunicorn workers (default: BOTIFY_WORKERS or 2)"
    )


def check_address(host: str, port: int) -> None:
    """OSError naming why `host:port` cannot be listened on. gunicorn itself would not say it in one line, and
    with SO_REUSEPORT it would quietly share a port another botify already serves instead of failing."""
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as error:
        raise OSError(f"cannot resolve --host {host!r}: {error.strerror}") from None
    with socket.socket(family, kind, protocol) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn: closed connections do not count
        try:
            probe.bind(address)
        except OSError as error:
            raise OSError(f"cannot listen on {host}:{port}: {error.strerror}") from None


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    check_settings(settings)  # one line here, not a worker's traceback per boot attempt
    check_log_dir(settings.log_dir)
    check_address(args.host, args.port)
    embedded = None if settings.redis_url else embedded_for(settings)
    owner = embedded.claim() if embedded else None  # noqa: F841 (held while serving)
    try:
        return serve(args, settings, embedded)
    finally:
        if embedded is not None:  # a Redis serve started (or started again) stops with a snapshot of the sessions;
            embedded.stop(save=True)  # one a running `load` started is left to it


def serve(args: argparse.Namespace, settings: Settings, embedded: EmbeddedRedis | None) -> int:
    """Start gunicorn on the configured Redis (the embedded one started if need be) and supervise it."""
    env = dict(os.environ, BOTIFY_BIND=host_port(args.host, args.port))  # `::1:5001` was no address to gunicorn
    if args.workers:
        env["BOTIFY_WORKERS"] = str(args.workers)
    if embedded is None:
        check_answers(settings.redis_url)  # one line saying which Redis, not Redis's words alone
    client = embedded.start().client() if embedded else client_for(settings.redis_url)
    with client:
        env["REDIS_URL"] = settings.redis_url or embedded.url
        if live_catalog_version(client) is None and (settings.data_dir / "tracks.json").exists():
            print(f"catalog: {load_catalog(client, settings.data_dir)} tracks from {settings.data_dir}")
            save_snapshot(client)  # a Redis restarted from its snapshot comes back with it
        command = [sys.executable, "-m", "gunicorn", "-c", "python:botify.gunicorn_conf", "botify.wsgi:app"]
        started: list[subprocess.Popen] = []

        def forward(number: int, frame: object) -> None:
            """gunicorn stops gracefully on the signal; before it exists, there is nothing to stop but us."""
            if not started:
                raise SystemExit(128 + number)
            started[0].send_signal(number)

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, forward)  # before gunicorn starts: a signal can never leave it running alone
        server = subprocess.Popen(command, env=env, preexec_fn=stop_with_parent)
        started.append(server)
        print(f"botify serving on http://{env['BOTIFY_BIND']} (Redis: {url_location(env['REDIS_URL'])})", flush=True)
        return supervise(server, embedded)


def supervise(server: subprocess.Popen, embedded: EmbeddedRedis | None) -> int:
    """Wait for gunicorn to exit; meanwhile an embedded Redis that stopped is started again (from its snapshot:
    the catalog and the sets come back), as a supervisor would restart a Redis of one's own."""
    while True:
        try:
            return server.wait(timeout=REDIS_CHECK_SECONDS)
        except subprocess.TimeoutExpired:
            if embedded is not None and not embedded.is_up():
                print("botify serve: the embedded Redis stopped; starting it again", file=sys.stderr, flush=True)
                with contextlib.suppress(RuntimeError):  # did not come up: tried again at the next check
                    embedded.start()
