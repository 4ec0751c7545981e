"""Start what the serving benchmarks measure: a Redis with the world loaded, and gunicorn apps on loopback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from serving_world import World

from botify.embedded_redis import EmbeddedRedis
from botify.process import child_pids, free_port

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
BOTIFY_APP = "botify.wsgi:app"
HELLO_APP = "serving_hello:app"


@contextmanager
def loaded_redis(workdir: Path, world: World) -> Iterator[EmbeddedRedis]:
    """A redis-server on a loopback port with the world's catalog and recommendations loaded."""
    server = EmbeddedRedis(workdir / "redis", port=free_port()).start()
    try:
        server.client().flushdb()
        command = [
            sys.executable,
            "-m",
            "botify",
            "load",
            "--data",
            str(world.data_dir),
            "--recs",
            f"lightfm={world.recs}",
        ]
        subprocess.run(command, env={**os.environ, "REDIS_URL": server.url}, cwd=REPO, check=True, capture_output=True)
        yield server
    finally:
        server.stop(save=False)


def end_sessions(redis: EmbeddedRedis) -> None:
    """Delete every user's session: each run starts from the store `loaded_redis` left, not the last run's listens
    (longer sessions cost the re-ranking more, so rounds would drift)."""
    from botify.store import SESSION_PREFIX

    with redis.client() as client:
        keys = list(client.scan_iter(match=f"{SESSION_PREFIX}*", count=10_000))
        for start in range(0, len(keys), 10_000):
            client.delete(*keys[start : start + 10_000])


@dataclass
class Server:
    url: str
    process: subprocess.Popen

    def worker_pids(self) -> list[int]:
        """The gunicorn workers (children of the master), for profilers and CPU accounting."""
        return child_pids(self.process.pid)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes have used so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def resident_mib(pid: int) -> float:
    """The process's resident memory (VmRSS), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


@contextmanager
def gunicorn(app: str, workers: int, threads: int, **env: str) -> Iterator[Server]:
    """`app` under botify's gunicorn settings on a free loopback port, until the block ends."""
    port = free_port()
    variables = {
        **os.environ,
        "BOTIFY_BIND": f"127.0.0.1:{port}",
        "BOTIFY_WORKERS": str(workers),
        "BOTIFY_THREADS": str(threads),
        "PYTHONPATH": os.pathsep.join([str(BENCH), str(REPO)]),
        **env,
    }
    command = [sys.executable, "-m", "gunicorn", "-c", "python:botify.gunicorn_conf", app]
    process = subprocess.Popen(command, env=variables, cwd=REPO, stdout=subprocess.DEVNULL)
    server = Server(f"http://127.0.0.1:{port}", process)
    try:
        wait_healthy(server)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_healthy(server: Server, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.process.returncode}")
        try:
            with urllib.request.urlopen(f"{server.url}/health", timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:  # refused, reset or timed out: not up yet
            time.sleep(0.1)
    raise RuntimeError(f"{server.url} not healthy after {timeout}s")
