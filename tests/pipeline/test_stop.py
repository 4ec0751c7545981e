"""A run stopped with SIGTERM (`kill`, a job's timeout) stops what it started: no service or Redis left running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from botify.embedded_redis import EmbeddedRedis
from botify.process import child_pids


def descendants(pid: int) -> dict[int, str]:
    """Every process below `pid`, with its command line."""
    found: dict[int, str] = {}
    pending = [pid]
    while pending:
        for child in child_pids(pending.pop()):
            try:
                found[child] = (Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")).decode()
            except OSError:  # the process ended meanwhile
                continue
            pending.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_sigterm_during_a_day_stops_the_service_the_simulator_and_redis(tmp_path):
    out = tmp_path / "run"
    env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}  # the embedded Redis
    run = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "--scale", "tiny", "--out", str(out)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    started: dict[int, str] = {}
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and run.poll() is None:
            started = descendants(run.pid)
            commands = " | ".join(started.values())
            if "sim.run" in commands and "gunicorn" in commands and "redis-server" in commands:
                break
            time.sleep(0.05)
        assert "sim.run" in " ".join(started.values()), f"day 1 never started: {started}"

        run.send_signal(signal.SIGTERM)
        assert run.wait(timeout=60) == 128 + signal.SIGTERM

        deadline = time.monotonic() + 10  # orphans are reaped by init a moment later
        while time.monotonic() < deadline and any(alive(pid) for pid in started):
            time.sleep(0.1)
        assert {pid: command for pid, command in started.items() if alive(pid)} == {}
        assert not EmbeddedRedis(out / "redis").is_up()
    finally:  # a failing run leaves nothing behind either
        for pid in [run.pid, *started]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        run.wait()


# A day's service that never becomes ready (an empty Redis, no catalog to load), driven by the pipeline's own code.
SERVE_A_DAY = """
import signal, sys
from pathlib import Path
from pipeline.run import SCALES, Run, unwind
signal.signal(signal.SIGTERM, unwind)
Run(Path(sys.argv[1]), "tiny", SCALES["tiny"], 0, 1, sys.argv[2]).serve_day("EXPLORE", "day1", 10, 1)
"""


def test_sigterm_while_the_days_service_starts_stops_it(tmp_path, own_redis):
    run = subprocess.Popen([sys.executable, "-c", SERVE_A_DAY, str(tmp_path), own_redis.url], stderr=subprocess.PIPE)
    started: dict[int, str] = {}
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and run.poll() is None:
            started = descendants(run.pid)
            if sum("gunicorn" in command for command in started.values()) >= 3:  # the master and its two workers
                break
            time.sleep(0.05)
        assert sum("gunicorn" in command for command in started.values()) >= 3, f"never started: {started}"
        assert run.poll() is None, "still waiting for /ready"

        run.send_signal(signal.SIGTERM)
        assert run.wait(timeout=60) == 128 + signal.SIGTERM

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(alive(pid) for pid in started):
            time.sleep(0.1)
        assert {pid: command for pid, command in started.items() if alive(pid)} == {}
    finally:
        for pid in [run.pid, *started]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        run.wait()
        run.stderr.close()


def test_an_interrupt_stops_the_run_and_says_so_in_one_line(tmp_path):
    out = tmp_path / "run"
    env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}  # the embedded Redis
    run = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "--scale", "tiny", "--out", str(out)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    started: dict[int, str] = {}
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and run.poll() is None:
            started = descendants(run.pid)
            commands = " | ".join(started.values())
            if "redis-server" in commands and ("-m sim.world" in commands or "-m botify" in commands):
                break
            time.sleep(0.01)
        assert "redis-server" in " ".join(started.values()), f"the run never started: {started}"

        run.send_signal(signal.SIGINT)
        assert run.wait(timeout=60) == 130
        stderr = run.stderr.read()
        assert stderr.splitlines()[-1:] == ["pipeline: interrupted"] and "Traceback" not in stderr, stderr

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(alive(pid) for pid in started):
            time.sleep(0.1)
        assert {pid: command for pid, command in started.items() if alive(pid)} == {}
        assert not EmbeddedRedis(out / "redis").is_up()
    finally:
        for pid in [run.pid, *started]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        run.wait()
        run.stderr.close()
