from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from tqdm import tqdm

from sim.agents import RecommenderAgent, StickyArtistAgent
from sim.catalog import read_world
from sim.env import RecEnv
from sim.errors import AgentError, SimError
from sim.run import (
    Job,
    build_agent,
    ctrl_c_held,
    episode_generators,
    main,
    run_day,
    run_episode,
    user_lanes,
)


def _summary(tmp_path, world_dir, *args: str) -> list[dict]:
    out = tmp_path / "summary.json"
    assert main(["--data", str(world_dir), "--quiet", "--out", str(out), *args]) == 0
    return json.loads(out.read_text())["results"]


def test_agents_leave_a_real_problem_to_solve(tmp_path, world_dir):
    agents = "random,toppop,sticky-artist,oracle"
    rows = {r["agent"]: r for r in _summary(tmp_path, world_dir, "--agent", agents, "--episodes", "300")}
    time = {name: rows[name]["mean_time"] for name in rows}
    assert time["random"] < time["toppop"] < time["sticky-artist"] < time["oracle"]
    sticky, random = rows["sticky-artist"], rows["random"]
    assert sticky["mean_time"] - random["mean_time"] > 5 * np.hypot(sticky["time_se"], random["time_se"])
    assert time["oracle"] >= 2 * time["sticky-artist"]
    assert all(r["sessions"] == 300 and r["truncated"] == 0 for r in rows.values())


def test_same_seed_same_results_whatever_the_processes(world_dir):
    job = Job(world_dir, "sticky-artist", None, 1000, seed=9)
    with tqdm(disable=True) as bar:
        one = run_day(job, 1, 200, 1, bar)
        again = run_day(job, 1, 200, 1, bar)
        two = run_day(job, 1, 200, 2, bar)  # in 4 lanes of users
        other_seed = run_day(Job(world_dir, "sticky-artist", None, 1000, seed=10), 1, 200, 1, bar)
    assert one == again == two
    assert [r.episode for r in two] == list(range(200))
    assert one != other_seed


def test_all_sessions_of_a_user_fall_in_one_lane_so_they_never_run_at_once(world_dir):
    job = Job(world_dir, "random", None, 1000, seed=4)
    lanes = user_lanes(job, 2, 600, 8)
    assert sorted(e for lane in lanes for e in lane) == list(range(600)) and all(lane == sorted(lane) for lane in lanes)
    env = RecEnv(read_world(world_dir))
    users_of_lane = []
    for lane in lanes:
        users = set()
        for episode in lane:
            env.np_random = episode_generators(4, 2, episode)[0]
            users.add(env.reset()[0]["user"])  # the user the session really draws
        users_of_lane.append(users)
    assert sum(len(users) for users in users_of_lane) == len(set().union(*users_of_lane))  # no user in two lanes
    assert len(set().union(*users_of_lane)) < 600  # users do come back within a day: the lanes matter


def test_agents_see_the_same_sessions(world_dir):
    env = RecEnv(read_world(world_dir))
    starts = []
    for name in ("random", "oracle"):
        agent = build_agent(name, env)
        run_episode(env, agent, name, seed=0, day=1, episode=3)
        starts.append((env.session.listener.user, env.session.interest))
    assert starts[0] == starts[1]


def test_days_run_the_hook_between_them(tmp_path, world_dir):
    marker = tmp_path / "days.txt"
    hook = f'echo "$SIM_DAY" >> "{marker}"'
    rows = _summary(tmp_path, world_dir, "--agent", "random", "--episodes", "20", "--days", "3", "--between-days", hook)
    assert [(r["agent"], r["day"], r["sessions"]) for r in rows] == [("random", d, 20) for d in (1, 2, 3)]
    assert marker.read_text().split() == ["1", "2"]


def test_a_run_that_fails_after_a_day_keeps_the_summary_of_the_days_it_finished(tmp_path, world_dir):
    out = tmp_path / "summary.json"
    args = ["--data", str(world_dir), "--quiet", "--out", str(out), "--agent", "random,toppop", "--episodes", "20"]
    with pytest.raises(SimError, match="failed with exit code 1 after day 2"):
        main([*args, "--days", "3", "--between-days", '[ "$SIM_DAY" -lt 2 ]'])
    rows = json.loads(out.read_text())["results"]
    assert sorted((r["agent"], r["day"]) for r in rows) == [(a, d) for a in ("random", "toppop") for d in (1, 2)]


def test_a_summary_that_cannot_be_written_whole_keeps_the_days_written_before(tmp_path, world_dir):
    """The summary was rewritten in place after each day: a write that failed part-way (here the file size limit
    a full disk would impose) left a cut JSON, and the days a run had finished were lost with it."""
    args = ["--data", str(world_dir), "--quiet", "--agent", "random", "--episodes", "20"]
    day_one = tmp_path / "day1.json"
    assert main([*args, "--out", str(day_one)]) == 0
    out = tmp_path / "summary.json"
    limit = day_one.stat().st_size + 20  # room for day 1's summary, not for the two days'

    def limit_file_size() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    finished = subprocess.run(
        [sys.executable, "-m", "sim.run", *args, "--days", "2", "--out", str(out)],
        capture_output=True, text=True, preexec_fn=limit_file_size,
    )  # fmt: skip
    assert finished.returncode == 1 and "File too large" in finished.stderr
    assert finished.stderr.count("\n") == 1, finished.stderr
    assert json.loads(out.read_text()) == json.loads(day_one.read_text())
    assert sorted(path.name for path in tmp_path.iterdir()) == ["day1.json", "summary.json"]  # no temporary file


def test_pause_waits_for_enter_between_days(world_dir):
    command = [sys.executable, "-m", "sim.run", "--data", str(world_dir), "--agent", "random", "--episodes", "5",
               "--days", "2", "--pause", "--quiet"]  # fmt: skip
    answered = subprocess.run(command, input="\n", capture_output=True, text=True)
    assert answered.returncode == 0 and "press Enter to start day 2" in answered.stdout
    assert "| random | 2 | 5 |" in answered.stdout
    closed = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    assert closed.returncode == 1 and "--pause needs an interactive terminal" in closed.stderr


def test_without_a_terminal_progress_is_written_every_10_seconds_not_redrawn(world_dir):
    """A log file (CI, the pipeline's output redirected) keeps every redraw of the bar: a few, not ten a second."""
    command = [sys.executable, "-m", "sim.run", "--data", str(world_dir), "--agent", "oracle", "--episodes", "8000"]
    started = time.monotonic()
    finished = subprocess.run(command, capture_output=True, timeout=120)  # bytes: the bar's carriage returns kept
    elapsed = time.monotonic() - started
    assert finished.returncode == 0  # ~3 s here: ten redraws a second would write ~30
    assert finished.stderr.count(b"\r") <= 2 + elapsed / 10, finished.stderr  # the first, the last, one per 10 s
    assert b"8000/8000" in finished.stderr


class FarAway:
    """A recommender that answers a track of a bigger world, as a service loaded with another world would."""

    def recommend_next(self, user: int, prev_track: int, prev_track_time: float) -> int:
        return 7000


def test_a_track_outside_the_world_is_the_agents_error(world_dir):
    env = RecEnv(read_world(world_dir))
    with pytest.raises(AgentError, match=r"^agent far: recommended track 7000 is not in 0\.\.2999$"):
        run_episode(env, RecommenderAgent(FarAway()), "far", seed=0, day=1, episode=0)


def test_ctrl_c_with_worker_processes_prints_one_line(tmp_path, world_dir):
    """Ctrl-C reaches the whole foreground process group: the pool's workers too, which must stay quiet."""
    (tmp_path / "marking.py").write_text(
        "import os, pathlib\n"
        "class Next:\n"
        "    def recommend_next(self, user, prev_track, prev_track_time):\n        return (prev_track + 1) % 3000\n"
        "def make(world):\n"
        "    (pathlib.Path(os.environ['MARKS']) / str(os.getpid())).touch()\n"
        "    return Next()\n"
    )
    marks = tmp_path / "marks"
    marks.mkdir()
    # Seconds of sessions left when the Ctrl-C comes; not millions, whose lanes alone take the run ~15 s to draw.
    command = [sys.executable, "-m", "sim.run", "--data", str(world_dir), "--agent", "marking:make",
               "--episodes", "200000", "--processes", "2", "--quiet"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "MARKS": str(marks)}
    run = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while len(list(marks.iterdir())) < 3 and time.monotonic() < deadline and run.poll() is None:
            time.sleep(0.05)  # the main process's agent and both workers' are built: the workers run episodes
        assert len(list(marks.iterdir())) == 3
        os.killpg(run.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        assert run.wait(timeout=30) == 130
        assert run.stderr.read() == "sim.run: interrupted\n"
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
        run.stderr.close()


def test_a_ctrl_c_while_workers_start_is_held_for_them_and_delivered_after():
    """The pool's workers start inside `ctrl_c_held`: they begin with SIGINT blocked (so a Ctrl-C while they import
    prints nothing), and the run still stops for a Ctrl-C that came while they started."""
    probe = "import signal; print(signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, []))"
    handler = signal.getsignal(signal.SIGINT)
    reached = False
    with pytest.raises(KeyboardInterrupt), ctrl_c_held():
        os.kill(os.getpid(), signal.SIGINT)
        started = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
        reached = True  # the Ctrl-C waited
    assert reached
    assert started.stdout == "True\n"
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, [])  # this process's mask as before
    assert signal.getsignal(signal.SIGINT) is handler


# In a fresh process (no resource tracker running yet, as in `sim.run`): the tracker, started by the pool's first
# lock, unblocks SIGINT in the thread starting it, which would end the hold before the workers start.
POOL_PROBE = """
import signal
from sim.run import quiet_pool

if __name__ == "__main__":
    with quiet_pool(1, None, ()) as pool:  # no initializer: the worker's mask as it started
        worker = signal.SIGINT in pool.apply(signal.pthread_sigmask, (signal.SIG_BLOCK, []))
        print(worker, signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, []))
"""


def test_the_pools_workers_start_with_ctrl_c_blocked():
    probe = subprocess.run([sys.executable, "-c", POOL_PROBE], capture_output=True, text=True, timeout=120, check=True)
    assert probe.stdout == "True False\n"  # the worker blocked from its start; the parent's hold over


class CountingRecommender:
    """A botify-style recommender: the next track id, and a count of ended sessions."""

    def __init__(self, n_tracks: int) -> None:
        self.n_tracks, self.ended = n_tracks, []

    def recommend_next(self, user: int, prev_track: int, prev_track_time: float) -> int:
        return (prev_track + 1) % self.n_tracks

    def end_session(self, user: int) -> None:
        self.ended.append(user)


def test_any_botify_recommender_runs_in_process(tmp_path, world_dir, monkeypatch):
    (tmp_path / "my_recs.py").write_text(
        "class Next:\n"
        "    def __init__(self, n):\n        self.n = n\n"
        "    def recommend_next(self, user, prev_track, prev_track_time):\n        return (prev_track + 1) % self.n\n"
        "def make(world):\n    return Next(world.n_tracks)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    rows = _summary(tmp_path, world_dir, "--agent", "my_recs:make", "--episodes", "30")
    assert rows[0]["agent"] == "my_recs:make" and rows[0]["sessions"] == 30 and rows[0]["mean_steps"] >= 5

    env = RecEnv(read_world(world_dir))
    recommender = CountingRecommender(env.world.n_tracks)
    agent = RecommenderAgent(recommender)
    users = [run_episode(env, agent, "counting", 0, 1, e).user for e in range(5)]
    assert recommender.ended == users


def test_botifys_own_sticky_artist_runs_in_process(tmp_path, world_dir, monkeypatch):
    """The service's recommender object, driven in-process, scores like the simulator's own StickyArtist."""
    (tmp_path / "botify_agents.py").write_text(
        "import numpy as np\n"
        "from botify.catalog import Catalog\n"
        "from botify.recommenders.sticky_artist import StickyArtist\n"
        "def sticky(world):\n"
        "    catalog = Catalog.build(world.artists, world.top_tracks)\n"
        "    return StickyArtist(lambda: catalog, np.random.default_rng(1))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    rows = _summary(tmp_path, world_dir, "--agent", "botify_agents:sticky,sticky-artist", "--episodes", "400")
    theirs, ours = rows
    assert theirs["agent"] == "botify_agents:sticky" and theirs["sessions"] == 400
    assert abs(theirs["mean_time"] - ours["mean_time"]) < 3 * np.hypot(theirs["time_se"], ours["time_se"])
    assert theirs["mean_time"] > 1.5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _corrupt_embeddings(path):
    np.save(path / "tracks.npy", np.zeros((10, 32), dtype=np.float32))


def _not_utf8(name):
    def setup(path):
        (path / name).write_bytes(b"\xff" + (path / name).read_bytes())

    return setup


def _first_user(**fields):
    def setup(path):
        first, *rest = (path / "users.json").read_text().splitlines()
        (path / "users.json").write_text("\n".join([json.dumps({**json.loads(first), **fields}), *rest]) + "\n")

    return setup


def _repeat_first_user(path):
    lines = (path / "users.json").read_text().splitlines()
    (path / "users.json").write_text("\n".join([*lines, lines[0]]) + "\n")


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        (lambda p: (p / "users.json").unlink(), ["--agent", "random"], "missing data file"),
        (_corrupt_embeddings, ["--agent", "random"], "has 10 rows but"),
        (None, ["--agent", "remote", "--url", "http://127.0.0.1:{port}"], "cannot reach botify"),
        (None, ["--agent", "nonsense"], "unknown agent 'nonsense'"),
        (None, ["--agent", "random", "--episodes", "0"], "--episodes must be between 1 and 10,000,000"),
        (None, ["--agent", "random", "--episodes", "10000000001"], "--episodes must be between 1 and 10,000,000"),
        (None, ["--agent", "random", "--processes", "1000"], "--processes must be between 1 and 256"),
        (None, ["--agent", "random", "--out", ""], "argument --out: an empty path"),
        (None, ["--agent", "random", "--data", "{data}/tracks.json"], "tracks.json: a file, not a folder"),
        (None, ["--agent", "random", "--data", "{data}/none"], "none: no such folder"),
        (None, ["--agent", "random", "--between-days", "exit 3", "--days", "2", "--episodes", "2"], "exit code 3"),
        (_not_utf8("tracks.json"), ["--agent", "random"], "tracks.json: not UTF-8 text (byte 0)"),
        (_not_utf8("users.json"), ["--agent", "random"], "users.json: not UTF-8 text (byte 0)"),
        (_not_utf8("top_tracks.json"), ["--agent", "random"], "top_tracks.json: not UTF-8 text (byte 0)"),
        (_first_user(session_budget=None), ["--agent", "random"], "users.json:1: field 'session_budget' must be"),
        (_first_user(session_budget="five"), ["--agent", "random"], "users.json:1: field 'session_budget' must be"),
        (_first_user(artist_discount_gamma=1.5), ["--agent", "random"], "field 'artist_discount_gamma' must be"),
        (None, ["--agent", "random,toppop", "--agent", "random"], "--agent random given more than once"),
        (None, ["--agent", "remote", "--url", "http://127.0.0.1:99999"], "bad service URL 'http://127.0.0.1:99999'"),
        (None, ["--agent", "remote", "--url", "http://127.0.0.1:abc"], "bad service URL 'http://127.0.0.1:abc'"),
        (None, ["--agent", ":foo"], "cannot load agent ':foo'"),
        (None, ["--agent", "builtins:str"], "agent 'builtins:str': str(world) returned type str, not a recommender"),
        (None, ["--agent", "math:pi"], "agent 'math:pi': pi is a float, not a factory(world)"),
        (None, ["--agent", "os:system"], "agent 'os:system': system(world) raised TypeError"),
        (None, ["--agent", ""], "--agent names no agent"),
        (None, ["--agent", ",,"], "--agent names no agent"),
        (lambda p: (p / "tracks.npy").write_bytes(b""), ["--agent", "random"], "tracks.npy: not a numeric .npy array"),
        (_repeat_first_user, ["--agent", "random"], "is already defined on line 1"),
        (_first_user(user=-1), ["--agent", "sticky-artist"], "users.json:1: field 'user' must be a whole number in"),
        (_first_user(user=2**63), ["--agent", "random"], "users.json:1: field 'user' must be a whole number in"),
        (lambda p: (p / "users.json").write_text(""), ["--agent", "random"], "users.json: no users"),
        (  # a hook that breaks the world between days: the next day reads it as it is, in one process or several
            None,
            [
                "--agent",
                "random",
                "--days",
                "2",
                "--episodes",
                "100",
                "--processes",
                "2",
                "--between-days",
                "echo x > {data}/users.json",
            ],
            "users.json:1",
        ),
    ],
)
def test_bad_config_exits_with_one_line(tmp_path, world_dir, setup, args, message):
    data = tmp_path / "world"
    data.mkdir()
    for f in world_dir.iterdir():
        (data / f.name).write_bytes(f.read_bytes())
    if setup is not None:
        setup(data)
    args = [a.format(port=_free_port(), data=data) for a in args]
    finished = subprocess.run(
        [sys.executable, "-m", "sim.run", "--data", str(data), "--quiet", *args], capture_output=True, text=True
    )
    assert finished.returncode != 0
    assert finished.stderr.count("\n") == 1, finished.stderr
    assert message in finished.stderr


def test_a_summary_path_that_cannot_be_written_stops_the_run_before_any_session(tmp_path, world_dir):
    finished = subprocess.run(
        [sys.executable, "-m", "sim.run", "--data", str(world_dir), "--agent", "random", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert (finished.returncode, finished.stdout) == (1, "")  # no session ran, no table printed
    assert finished.stderr.count("\n") == 1 and "Is a directory" in finished.stderr
    summary = tmp_path / "new" / "summary.json"  # a path that can be written is not left behind empty on failure
    finished = subprocess.run(
        [
            sys.executable,
            "-m",
            "sim.run",
            "--data",
            str(world_dir / "missing"),
            "--agent",
            "random",
            "--out",
            str(summary),
        ],
        capture_output=True,
        text=True,
    )
    assert finished.returncode == 1 and not summary.exists()


class RepeatLast:
    """Recommends the track just played: every listen is a repeat, heard for 0."""

    def recommend_next(self, user: int, prev_track: int, prev_track_time: float) -> int:
        return prev_track


class RecordingEnv(RecEnv):
    """The environment, keeping the listen time of every step it scored."""

    def __init__(self, world) -> None:
        super().__init__(world)
        self.times: list[float] = []

    def step(self, action):
        observation, time, terminated, truncated, info = super().step(action)
        self.times.append(time)
        return observation, time, terminated, truncated, info


def test_an_episodes_time_is_the_sum_of_its_listens(world_dir):
    world = read_world(world_dir)
    results = {}
    for agent, name in ((StickyArtistAgent(world), "sticky-artist"), (RecommenderAgent(RepeatLast()), "repeat")):
        env = RecordingEnv(world)
        results[name] = run_episode(env, agent, name, 0, 1, 0)
        assert results[name].steps == len(env.times) >= 1
        assert results[name].time == pytest.approx(round(sum(env.times), 2))
    assert results["sticky-artist"].time > 0.0
    assert results["repeat"].time == 0.0  # repeats of the start track: every listen scores 0


@pytest.mark.parametrize(
    ("agent", "processes", "message"),
    [
        (  # raised while a pool worker starts: the pool would restart it forever, printing a traceback each time
            "agents_for_tests:fails_in_workers",
            "2",
            "could not start: agent 'agents_for_tests:fails_in_workers': fails_in_workers(world) raised RuntimeError",
        ),
        ("agents_for_tests:answers_none", "1", "recommend_next returned None, not a track id"),
        ("agents_for_tests:answers_a_float", "2", "recommend_next returned 3.7, not a track id"),
        ("agents_for_tests:raises_key_error", "1", "recommend_next raised KeyError: 'user 5'"),
        ("agents_for_tests:fails_to_begin", "1", "begin raised RuntimeError: no generator wanted"),
        ("agents_for_tests:fails_at_session_end", "2", "end_session raised KeyError: 'no session for "),
    ],
)
def test_an_in_process_agent_that_fails_is_one_line_whatever_the_processes(world_dir, agent, processes, message):
    tests = str(Path(__file__).parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [tests, os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "sim.run", "--data", str(world_dir), "--quiet", "--agent", agent]
    command += ["--episodes", "100", "--processes", processes]
    finished = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert finished.returncode == 1
    assert finished.stderr.count("\n") == 1, finished.stderr
    assert message in finished.stderr
