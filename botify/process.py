"""botify as a child process: start `python -m botify serve`, wait until ready, stop gracefully.

What the end-to-end run and the tests use to run the real service under gunicorn; `stop_with_parent` is
also what `botify serve` gives its own children.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

PR_SET_PDEATHSIG = 1  # prctl(2)


def free_port() -> int:
    """A TCP port on the loopback that nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def child_pids(pid: int) -> list[int]:
    """The running processes that `pid` started, from any of its threads (Linux's /proc; none once it has ended)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:  # the thread or the process ended meanwhile
            continue
    return found


def stop_with_parent() -> None:
    """In a child about to exec (`preexec_fn`): SIGTERM it when the process that started it dies, even by SIGKILL,
    so a killed `botify serve` leaves no gunicorn or Redis running alone (Linux; elsewhere nothing happens)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Claimed(OSError):
    """Another process holds the lock; `owner` is the pid it wrote there ("?" if none)."""

    def __init__(self, path: Path, owner: str) -> None:
        super().__init__(f"{path} is held by process {owner}")
        self.owner = owner


def claim(path: Path) -> IO[str]:
    """An exclusive lock on `path` (created if need be), with this process's pid written in it, held while the
    returned file is open (the kernel lets go when the process ends, however it ends). Claimed if another holds it."""
    lock = open(path, "a+", encoding="utf-8")  # noqa: SIM115 (held by the caller)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        owner = lock.read().strip() or "?"
        lock.close()
        raise Claimed(path, owner) from None
    lock.truncate(0)
    lock.write(str(os.getpid()))
    lock.flush()
    return lock


def host_port(host: str, port: int) -> str:
    """`host:port` as gunicorn's bind and URLs spell it: an IPv6 literal in brackets (`[::1]:5001`)."""
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def is_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/ready", timeout=3) as answer:
            return answer.status == 200
    except (urllib.error.URLError, OSError):
        return False


@dataclass
class ServiceProcess:
    url: str
    log_dir: Path
    process: subprocess.Popen

    @classmethod
    def start(
        cls,
        port: int,
        log_dir: Path,
        env: dict[str, str] | None = None,
        workers: int = 2,
        host: str = "127.0.0.1",
        timeout: float = 60.0,
        with_parent: bool = False,
        base_env: Mapping[str, str] | None = None,
    ) -> ServiceProcess:
        """Serve with `env` on top of `base_env` (this process's environment by default); returns once `/ready`
        answers 200. `with_parent`: the service stops when this process dies, even by SIGKILL (`stop_with_parent`;
        only from a process without other threads, as any `preexec_fn`), and is stopped by it only: in a session of
        its own, a terminal's Ctrl-C does not reach it (gunicorn would quit at once, resetting the requests under
        way, and the client would fail on them before seeing its own Ctrl-C); `stop` ends it."""
        variables = {**(os.environ if base_env is None else base_env), **(env or {}), "BOTIFY_LOG_DIR": str(log_dir)}
        command = [sys.executable, "-m", "botify", "serve", "--host", host, "--port", str(port)]
        command += ["--workers", str(workers)]
        preexec = stop_with_parent if with_parent else None
        process = subprocess.Popen(
            command, env=variables, stdout=subprocess.DEVNULL, preexec_fn=preexec, start_new_session=with_parent
        )
        service = cls(f"http://{host_port(host, port)}", Path(log_dir), process)
        deadline = time.monotonic() + timeout
        try:
            while not is_ready(service.url):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"botify did not become ready at {service.url}")
                time.sleep(0.1)
        except BaseException:  # a timeout, or Ctrl-C / a SIGTERM handler's exit while it starts: stop it all the same
            service.stop()
            raise
        return service

    def worker_pids(self) -> list[int]:
        """gunicorn's workers: the children of its master, which `botify serve` runs as its own child."""
        return [worker for master in child_pids(self.process.pid) for worker in child_pids(master)]

    def stop(self) -> None:
        """SIGTERM: gunicorn finishes the requests under way, then its workers close their event logs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
