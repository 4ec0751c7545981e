"""`botify serve` looks after what it started: its embedded Redis is started again if it dies, and nothing it
started outlives it, even when it is killed."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

from botify.embedded_redis import EmbeddedRedis
from botify.process import ServiceProcess, child_pids, free_port, is_ready
from botify.registry import experiment_arms
from botify.store import session_key


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


def test_a_second_serve_of_the_same_data_folder_is_refused_in_one_line(embedded_service):
    service, redis_pid, _ = embedded_service
    data = Path(service.log_dir).parent
    env = {**os.environ, "REDIS_URL": "", "BOTIFY_DATA_DIR": str(data), "BOTIFY_LOG_DIR": str(data / "log2")}
    command = [sys.executable, "-m", "botify", "serve", "--port", str(free_port()), "--workers", "1"]
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert second.returncode != 0
    assert second.stderr.strip().splitlines() == [
        f"botify serve: another botify serve (pid {service.process.pid}) runs the embedded Redis of {data}: "
        f"share it with REDIS_URL=unix://{data}/redis/redis.sock?db=0, or give this one its own BOTIFY_DATA_DIR"
    ]
    assert _alive(redis_pid) and is_ready(service.url)  # the first one's Redis is left alone


def test_a_load_names_the_redis_it_published_to_and_one_that_nothing_serves(embedded_service, tiny_world):
    """A load run with another BOTIFY_DATA_DIR than the service's (another shell, another folder) publishes to that
    folder's Redis, which nothing serves: it says so, and where it published."""
    service, _, _ = embedded_service
    data = Path(service.log_dir).parent
    elsewhere = Path(tempfile.mkdtemp(prefix="botify-", dir="/tmp"))
    command = [sys.executable, "-m", "botify", "load", "--data", str(tiny_world)]
    try:
        loads = {
            folder: subprocess.run(
                command,
                env={**os.environ, "REDIS_URL": "", "BOTIFY_DATA_DIR": str(folder)},
                capture_output=True,
                text=True,
                timeout=60,
            )  # fmt: skip
            for folder in (data, elsewhere)
        }
    finally:
        shutil.rmtree(elsewhere, ignore_errors=True)
    served, unserved = loads[data], loads[elsewhere]
    assert served.returncode == 0 and unserved.returncode == 0, (served.stderr, unserved.stderr)
    assert "note:" not in served.stdout
    assert f"published to the embedded Redis of BOTIFY_DATA_DIR {data.resolve()}:" in served.stdout.splitlines()
    assert unserved.stdout.splitlines()[0] == (
        f"note: nothing serves the embedded Redis of BOTIFY_DATA_DIR {elsewhere.resolve()} now: it runs for this "
        "load only; a `botify serve` with the same BOTIFY_DATA_DIR serves what is loaded"
    )
    assert f"published to the embedded Redis of BOTIFY_DATA_DIR {elsewhere.resolve()}:" in unserved.stdout.splitlines()


HOLD_THE_FOLDERS_REDIS = """
import sys
from botify.connection import open_redis
from botify.settings import Settings
with open_redis(Settings.from_env()):  # as `botify load` does: starts the folder's Redis, stops it at the end
    print("up", flush=True)
    sys.stdin.readline()
"""


@pytest.mark.parametrize("redis_started_by", ["serve", "a load still running"])
def test_ctrl_c_in_a_terminal_keeps_the_sessions_in_the_snapshot(tiny_world, redis_started_by):
    """A terminal's Ctrl-C signals the whole foreground process group: the embedded Redis must not get it too (it
    would exit without a snapshot); serve stops it itself, snapshotting what was served, also when a `botify load`
    had started it (the load stops it with a snapshot as it ends, and serve starts it again from there)."""
    data = Path(tempfile.mkdtemp(prefix="botify-", dir="/tmp"))
    for name in ("tracks.json", "top_tracks.json"):
        shutil.copy(tiny_world / name, data / name)
    port, url = free_port(), None
    env = {**os.environ, "REDIS_URL": "", "BOTIFY_DATA_DIR": str(data), "BOTIFY_LOG_DIR": str(data / "log")}
    holder = None
    if redis_started_by != "serve":
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD_THE_FOLDERS_REDIS], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert holder.stdout.readline() == b"up\n"
    command = [sys.executable, "-m", "botify", "serve", "--port", str(port), "--workers", "1"]
    serve = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, start_new_session=True)  # a shell's job
    url = f"http://127.0.0.1:{port}"
    users = [user for user in range(100) if experiment_arms(user)["HW_2"] == "T1"][:2]  # LightFM keeps sessions
    try:
        assert _until(lambda: is_ready(url))
        assert requests.post(f"{url}/next/{users[0]}", json={"track": 5, "time": 1}).status_code == 200
        if holder is not None:
            holder.communicate(b"\n", timeout=30)  # the load ends while serve runs on its Redis
            assert _until(lambda: is_ready(url))  # started again by serve
        for _ in range(2):  # a worker's connection from before a Redis restart fails once (that listen: a fallback)
            assert requests.post(f"{url}/next/{users[1]}", json={"track": 5, "time": 1}).status_code == 200
        os.killpg(serve.pid, signal.SIGINT)
        assert serve.wait(timeout=30) == 0
        assert _until(lambda: not EmbeddedRedis(data / "redis").is_up())  # stopped with serve
        redis = EmbeddedRedis(data / "redis").start()  # the data folder's Redis, from the snapshot serve left
        try:
            assert [redis.client().exists(session_key(user)) for user in users] == [1, 1]
        finally:
            redis.stop(save=False)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(serve.pid, signal.SIGKILL)
        serve.wait()
        if holder is not None and holder.poll() is None:
            holder.kill()
        shutil.rmtree(data, ignore_errors=True)


def test_a_serve_that_stops_leaves_a_redis_a_running_load_started_to_that_load(tiny_world):
    data = Path(tempfile.mkdtemp(prefix="botify-", dir="/tmp"))
    for name in ("tracks.json", "top_tracks.json"):
        shutil.copy(tiny_world / name, data / name)
    env = {**os.environ, "REDIS_URL": "", "BOTIFY_DATA_DIR": str(data), "BOTIFY_LOG_DIR": str(data / "log")}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_FOLDERS_REDIS], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert holder.stdout.readline() == b"up\n"
        service = ServiceProcess.start(free_port(), data / "log", {"REDIS_URL": "", "BOTIFY_DATA_DIR": str(data)}, 1)
        service.stop()
        assert EmbeddedRedis(data / "redis").is_up()  # still serving the load
        holder.communicate(b"\n", timeout=30)
        assert holder.returncode == 0 and not EmbeddedRedis(data / "redis").is_up()  # stopped by the load
    finally:
        if holder.poll() is None:
            holder.kill()
        shutil.rmtree(data, ignore_errors=True)
