"""`botify serve` looks after what it started: its embedded Redis is started again if it dies, and nothing it
started outlives it, even when it is killed."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

import pytest
import requests

from botify.process import ServiceProcess, child_pids, free_port, is_ready


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except OSError:
        return False


def _until(condition, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.fixture
def embedded_service(tiny_world):
    """`botify serve` on its own embedded Redis (no REDIS_URL), in a short folder (a unix socket path is short)."""
    data = Path(tempfile.mkdtemp(prefix="botify-", dir="/tmp"))
    for name in ("tracks.json", "top_tracks.json"):
        shutil.copy(tiny_world / name, data / name)
    service = ServiceProcess.start(free_port(), data / "log", {"REDIS_URL": "", "BOTIFY_DATA_DIR": str(data)}, 1)
    children = {pid: Path(f"/proc/{pid}/cmdline").read_bytes() for pid in child_pids(service.process.pid)}
    [redis_pid] = [pid for pid, command in children.items() if b"redis-server" in command]
    [gunicorn_pid] = [pid for pid, command in children.items() if b"gunicorn" in command]
    yield service, redis_pid, gunicorn_pid
    service.stop()
    shutil.rmtree(data, ignore_errors=True)


def test_serve_starts_its_embedded_redis_again_when_it_dies_with_the_catalog(embedded_service):
    service, redis_pid, _ = embedded_service
    os.kill(redis_pid, signal.SIGKILL)
    assert _until(lambda: any(b"redis-server" in Path(f"/proc/{pid}/cmdline").read_bytes()
                              for pid in child_pids(service.process.pid) if pid != redis_pid))  # fmt: skip
    assert _until(lambda: is_ready(service.url))  # the catalog came back from the snapshot serve took
    answer = requests.post(f"{service.url}/next/1", json={"track": 5, "time": 1})
    assert answer.status_code == 200 and 0 <= answer.json()["track"] < 300


def test_a_killed_serve_leaves_no_gunicorn_or_redis_running(embedded_service):
    service, redis_pid, gunicorn_pid = embedded_service
    service.process.kill()  # SIGKILL: serve cannot stop them itself
    service.process.wait()
    assert _until(lambda: not _alive(gunicorn_pid) and not _alive(redis_pid))
