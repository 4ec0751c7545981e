"""A run stopped with SIGTERM (`kill`, a job's timeout) stops what it started: no service or Redis left running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from botify.embedded_redis import EmbeddedRedis
from botify.process import child_pids, claim
from pipeline.run import RUN_LOCK, stop_embedded

from .conftest import tiny_pipeline


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


def started_once(run: subprocess.Popen, ready: Callable[[list[str]], bool], timeout: float) -> dict[int, str]:
    """The processes below `run` once `ready(their command lines)` holds (or `run` ended, or the timeout)."""
    started: dict[int, str] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and run.poll() is None:
        started = descendants(run.pid)
        if ready(list(started.values())):
            break
        time.sleep(0.02)
    return started


def still_alive(started: dict[int, str]) -> dict[int, str]:
    """Which of `started` are alive 10 s on (orphans are reaped by init a moment after their parent ends)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(pid) for pid in started):
        time.sleep(0.1)
    return {pid: command for pid, command in started.items() if alive(pid)}


def kill_all(run: subprocess.Popen, started: dict[int, str]) -> None:
    """Whatever a failing test left behind."""
    for pid in [run.pid, *started]:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    run.wait()
    if run.stderr is not None:
        run.stderr.close()


def day_one_runs(commands: list[str]) -> bool:
    return all(any(name in command for command in commands) for name in ("sim.run", "gunicorn", "redis-server"))


def test_sigterm_during_a_day_stops_the_service_the_simulator_and_redis(tmp_path):
    out = tmp_path / "run"
    run = tiny_pipeline(out, stderr=subprocess.PIPE)
    started: dict[int, str] = {}
    try:
        started = started_once(run, day_one_runs, timeout=120)
        assert day_one_runs(list(started.values())), f"day 1 never started: {started}"
        time.sleep(1.0)  # the simulator's worker processes are under way

        run.send_signal(signal.SIGTERM)
        assert run.wait(timeout=60) == 128 + signal.SIGTERM
        stderr = run.stderr.read()  # the simulator was stopped as by Ctrl-C, its workers too: no traceback of theirs
        assert "Traceback" not in stderr and "leaked" not in stderr, stderr
        assert still_alive(started) == {}
        assert not EmbeddedRedis(out / "redis").is_up()
    finally:  # a failing run leaves nothing behind either
        kill_all(run, started)


def test_sigterm_to_a_background_job_stops_its_step_at_once(tmp_path):
    """A script's `python -m pipeline &` runs with SIGINT ignored, which its commands inherit: the simulator, told
    to stop as by Ctrl-C, went on to the end of its day (or was killed 30 s later). It stops at once, and says so."""
    out = tmp_path / "run"
    run = tiny_pipeline(out, stderr=subprocess.PIPE, ctrl_c_ignored=True)
    started: dict[int, str] = {}
    try:
        started = started_once(run, day_one_runs, timeout=120)
        assert day_one_runs(list(started.values())), f"day 1 never started: {started}"
        time.sleep(1.0)

        run.send_signal(signal.SIGTERM)
        assert run.wait(timeout=60) == 128 + signal.SIGTERM
        stderr = run.stderr.read()
        assert stderr.splitlines()[-2:] == ["sim.run: interrupted", "pipeline: terminated"], stderr
        assert "Traceback" not in stderr, stderr
        assert still_alive(started) == {}
        assert not (out / "sim" / "day1.json").exists()
    finally:
        kill_all(run, started)


def test_sigkill_during_a_day_leaves_no_service_simulator_or_redis_running(tmp_path):
    """A SIGKILL cannot be caught: what the run started is told by the kernel (PR_SET_PDEATHSIG) instead."""
    out = tmp_path / "run"
    run = tiny_pipeline(out)
    started: dict[int, str] = {}
    try:
        started = started_once(run, day_one_runs, timeout=120)
        assert day_one_runs(list(started.values())), f"day 1 never started: {started}"
        time.sleep(1.0)
        run.kill()
        run.wait(timeout=10)
        assert still_alive(started) == {}
    finally:
        kill_all(run, started)


# A day's service that never becomes ready (an empty Redis, no catalog to load), driven by the pipeline's own code.
SERVE_A_DAY = """
import signal, sys
from pathlib import Path
from pipeline.run import PARALLEL, SCALES, Run, unwind
signal.signal(signal.SIGTERM, unwind)
Run(Path(sys.argv[1]), "tiny", SCALES["tiny"], 0, PARALLEL, sys.argv[2]).serve_day("EXPLORE", "day1", 10, 1)
"""


def gunicorn_and_workers(commands: list[str]) -> bool:
    return sum("gunicorn" in command for command in commands) >= 3  # the master and its two workers


def test_sigterm_while_the_days_service_starts_stops_it(tmp_path, own_redis):
    run = subprocess.Popen([sys.executable, "-c", SERVE_A_DAY, str(tmp_path), own_redis.url], stderr=subprocess.PIPE)
    started: dict[int, str] = {}
    try:
        started = started_once(run, gunicorn_and_workers, timeout=60)
        assert gunicorn_and_workers(list(started.values())), f"never started: {started}"
        assert run.poll() is None, "still waiting for /ready"

        run.send_signal(signal.SIGTERM)
        assert run.wait(timeout=60) == 128 + signal.SIGTERM
        assert still_alive(started) == {}
    finally:
        kill_all(run, started)


def redis_and_a_step(commands: list[str]) -> bool:
    return any("redis-server" in c for c in commands) and any("-m sim.world" in c or "-m botify" in c for c in commands)


def test_an_interrupt_stops_the_run_and_says_so_in_one_line(tmp_path):
    out = tmp_path / "run"
    run = tiny_pipeline(out, stderr=subprocess.PIPE, parallel=False)  # the default run
    started: dict[int, str] = {}
    try:
        started = started_once(run, redis_and_a_step, timeout=60)
        assert redis_and_a_step(list(started.values())), f"the run never started: {started}"

        run.send_signal(signal.SIGINT)
        assert run.wait(timeout=60) == 130
        stderr = run.stderr.read()
        assert stderr.splitlines()[-1:] == ["pipeline: interrupted"] and "Traceback" not in stderr, stderr
        assert still_alive(started) == {}
        assert not EmbeddedRedis(out / "redis").is_up()
    finally:
        kill_all(run, started)


@pytest.mark.parametrize("parallel", [True, False])
def test_a_terminals_ctrl_c_during_a_day_stops_the_run_in_one_line_per_step(tmp_path, parallel):
    """A terminal sends Ctrl-C to its whole foreground group. The simulator's worker processes, still importing,
    each printed a traceback (the pipeline's test above signals the pipeline alone)."""
    out = tmp_path / "run"
    run = tiny_pipeline(out, stderr=subprocess.PIPE, parallel=parallel, own_group=True)
    started: dict[int, str] = {}
    try:
        started = started_once(run, day_one_runs, timeout=120)
        assert day_one_runs(list(started.values())), f"day 1 never started: {started}"
        time.sleep(1.0)  # the simulator's worker processes are under way

        os.killpg(run.pid, signal.SIGINT)
        assert run.wait(timeout=60) == 130
        stderr = run.stderr.read()
        assert stderr.splitlines()[-2:] == ["sim.run: interrupted", "pipeline: interrupted"], stderr
        assert "Traceback" not in stderr, stderr
        assert still_alive(started) == {}
    finally:
        kill_all(run, started)


def test_a_second_run_on_the_same_out_folder_is_refused_in_one_line_and_starts_nothing(tmp_path):
    """Two runs on one folder would overwrite each other's world and logs, and the first to end would stop the
    embedded Redis under the other."""
    out = tmp_path / "out"
    out.mkdir()
    with claim(out / RUN_LOCK):  # as the first run holds it
        second = tiny_pipeline(out, stderr=subprocess.PIPE)
        _, stderr = second.communicate(timeout=60)
    assert second.returncode == 1
    assert stderr == f"pipeline: another run (pid {os.getpid()}) writes to {out}: give this one its own --out\n"
    assert sorted(path.name for path in out.iterdir()) == [RUN_LOCK]  # no Redis, no world


def test_a_ctrl_c_while_redis_saves_its_last_snapshot_kills_it_and_says_so(tmp_path, capsys):
    """A second Ctrl-C (while the first's `finally` waits for Redis's snapshot) ended the run with a traceback."""
    embedded = EmbeddedRedis(tmp_path / "redis").start()
    client = embedded.client()
    client.mset({f"key{i}": i for i in range(50)})
    client.config_set("rdb-key-save-delay", 200_000)  # 0.2 s a key: the shutdown's snapshot takes ~10 s
    process = embedded.process
    ctrl_c = threading.Timer(0.5, signal.pthread_kill, [threading.main_thread().ident, signal.SIGINT])
    ctrl_c.start()
    started = time.monotonic()
    try:
        stop_embedded(embedded)
    finally:
        ctrl_c.cancel()  # never into the test run itself
    assert time.monotonic() - started < 5 and process.poll() is not None and not embedded.is_up()
    assert capsys.readouterr().err == ("pipeline: interrupted while Redis saved its snapshot: stopped without it\n")
