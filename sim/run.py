"""``python -m sim.run``: simulated listening sessions against a recommender, and their summary.

Episode ``i`` of day ``d`` always gets the same seeds (one ``SeedSequence`` child per episode),
so a run gives identical sessions whatever ``--processes`` is; several agents given together
see the same users, start tracks and random draws (a paired comparison).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import multiprocessing
import multiprocessing.resource_tracker
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from multiprocessing.pool import Pool
from pathlib import Path
from typing import Protocol

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from models.atomic import write_text
from sim.agents import (
    Agent,
    OracleAgent,
    RandomAgent,
    RecommenderAgent,
    StickyArtistAgent,
    TopPopAgent,
)
from sim.catalog import World, read_world
from sim.cli import Parser, path_argument, run_cli
from sim.env import RecEnv, draw_listener
from sim.errors import AgentError, SimError
from sim.remote import RemoteAgent
from sim.summary import EpisodeResult, Summary, format_table, summarize

IN_PROCESS_AGENTS = ("random", "toppop", "sticky-artist", "oracle")
DEFAULT_URL = "http://127.0.0.1:5001"
# The most a run takes of each (a run keeps every session's result in memory: ~10M sessions fit in a few GiB).
LIMITS = {"episodes": 10_000_000, "processes": 256, "days": 1_000}


def build_agent(name: str, env: RecEnv, url: str | None = None) -> Agent:
    """An agent by its command-line name; ``module:factory`` calls ``factory(world)`` for a
    botify-style recommender object and runs it in-process."""
    world = env.world
    if name == "random":
        return RandomAgent(world.n_tracks)
    if name == "toppop":
        return TopPopAgent(world.top_tracks)
    if name == "sticky-artist":
        return StickyArtistAgent(world)
    if name == "oracle":
        return OracleAgent(env)
    if name == "remote":
        if not url:
            raise SimError("--agent remote needs --url")
        return RemoteAgent(url)
    if ":" in name:
        module_name, _, attribute = name.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError, ValueError) as error:  # ValueError: no module name (":factory")
            raise SimError(f"cannot load agent {name!r}: {error}") from None
        if not callable(factory):
            raise SimError(f"agent {name!r}: {attribute} is a {type(factory).__name__}, not a factory(world)")
        try:
            recommender = factory(world)
        except Exception as error:  # noqa: BLE001 (the factory's own code: one line says what it raised)
            raise SimError(f"agent {name!r}: {attribute}(world) raised {type(error).__name__}: {error}") from None
        try:
            return RecommenderAgent(recommender)
        except TypeError:
            kind = type(recommender).__name__
            raise SimError(f"agent {name!r}: {attribute}(world) returned type {kind}, not a recommender") from None
    raise SimError(f"unknown agent {name!r}: use {', '.join(IN_PROCESS_AGENTS)}, remote or module:factory")


def stream_generator(seed: int, day: int, episode: int, stream: int) -> np.random.Generator:
    """One of an episode's independent random streams: 0 the environment's, 1 the agent's."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(day, episode, stream))))


def episode_generators(seed: int, day: int, episode: int) -> tuple[np.random.Generator, np.random.Generator]:
    """The environment's and the agent's generators for one episode, independent of every other episode."""
    return stream_generator(seed, day, episode, 0), stream_generator(seed, day, episode, 1)


def run_episode(env: RecEnv, agent: Agent, name: str, seed: int, day: int, episode: int) -> EpisodeResult:
    """One session: ``/next`` for every step (the first carries the start track), ``end`` at the end."""
    env.np_random, agent_rng = episode_generators(seed, day, episode)
    observation, info = env.reset()
    agent.begin(agent_rng)
    user, track, time = observation["user"], observation["track"], info["time"]
    total, steps, done, truncated = 0.0, 0, False, False
    while not done:
        track = agent.recommend_next(user, track, time)
        try:
            _, time, terminated, truncated, _ = env.step(track)
        except ValueError as error:  # a track outside this world (e.g. a service loaded with another one)
            where = f"{name} at {agent.url}" if isinstance(agent, RemoteAgent) else name
            raise AgentError(f"agent {where}: {error}") from None
        total += time
        steps += 1
        done = terminated or truncated
    agent.end(user, track, time)
    return EpisodeResult(name, day, episode, user, round(total, 2), steps, truncated)


@dataclass(frozen=True)
class Job:
    """What a worker process needs to build its own environment and agent."""

    data: Path
    agent: str
    url: str | None
    max_steps: int | None
    seed: int


@lru_cache(maxsize=2)
def load_world(data: Path) -> World:
    return read_world(data)


_worker: tuple[Job, RecEnv, Agent] | None = None
_worker_failure: str | None = None  # why this pool worker could not start (its first task reports it)


@contextlib.contextmanager
def ctrl_c_held() -> Iterator[None]:
    """Hold Ctrl-C for the block (main thread): processes started in it begin with SIGINT blocked (the signal mask
    survives exec) until they unblock it, and a Ctrl-C that came meanwhile is handled as the block ends."""
    pressed: list[int] = []
    handler = signal.signal(signal.SIGINT, lambda signum, frame: pressed.append(signum))  # another thread's
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        signal.signal(signal.SIGINT, handler)  # a Ctrl-C pending until the unblock is recorded first
        if pressed:
            signal.raise_signal(signal.SIGINT)  # to the handler the block found: KeyboardInterrupt, as a rule


@contextlib.contextmanager
def quiet_pool(processes: int, initializer: Callable[..., None] | None, initargs: tuple) -> Iterator[Pool]:
    """A spawn pool whose workers start with SIGINT blocked (`ctrl_c_held`): `initializer` unblocks it once it has
    ignored it. A Ctrl-C while the workers import (a second or so) printed each one's traceback."""
    # Started first: it blocks SIGINT while it starts and then unblocks it, which would end the hold early.
    multiprocessing.resource_tracker.ensure_running()
    with contextlib.ExitStack() as stack:
        with ctrl_c_held():
            pool = stack.enter_context(multiprocessing.get_context("spawn").Pool(processes, initializer, initargs))
        yield pool


def _start_worker(job: Job) -> None:
    global _worker
    env = RecEnv(load_world(job.data), max_steps=job.max_steps)
    _worker = (job, env, build_agent(job.agent, env, job.url))


def _start_pool_worker(job: Job) -> None:
    """A worker process is one core: one BLAS thread (more only slow the small products down).

    Ctrl-C reaches the workers too (the terminal signals the whole process group): they ignore it,
    and the parent, interrupted, terminates the pool, so the run ends with one line, not a traceback per worker.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # first: a Ctrl-C pending since the worker started is dropped
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # blocked from their start (`ctrl_c_held`)
    threadpool_limits(1, user_api="blas")
    global _worker_failure
    try:
        _start_worker(job)
    except Exception as error:  # noqa: BLE001 (raised here, the pool would restart the worker forever)
        reason = str(error) if isinstance(error, (SimError, OSError)) else f"{type(error).__name__}: {error}"
        _worker_failure = f"a simulator process could not start: {reason}"


def _run_episodes(task: tuple[int, list[int]]) -> list[EpisodeResult]:
    if _worker_failure is not None:
        raise SimError(_worker_failure)
    assert _worker is not None, "worker not started"
    job, env, agent = _worker
    day, episodes = task
    return [run_episode(env, agent, job.agent, job.seed, day, e) for e in episodes]


def user_lanes(job: Job, day: int, episodes: int, lanes: int) -> list[list[int]]:
    """The day's episodes in `lanes` groups, each in episode order, such that all sessions of one user fall in
    one group: a group runs in one process, one session at a time, so a user never has two sessions under way
    (a service keeps one session state per user, as botify does)."""
    listeners = len(load_world(job.data).listeners)
    groups: list[list[int]] = [[] for _ in range(lanes)]
    for episode in range(episodes):
        user = draw_listener(stream_generator(job.seed, day, episode, 0), listeners)  # the environment's stream
        groups[user % lanes].append(episode)
    return [group for group in groups if group]


class Progress(Protocol):
    def update(self, n: int) -> object: ...


def progress_interval() -> float:
    """Seconds between progress updates: a terminal redraws the bar in place; a log file (CI, the pipeline's output
    redirected) keeps every update, so there one every 10 s."""
    return 0.1 if sys.stderr is not None and sys.stderr.isatty() else 10.0


def run_day(job: Job, day: int, episodes: int, processes: int, progress: Progress) -> list[EpisodeResult]:
    """All episodes of one day for one agent, in episode order; ``progress.update(n)`` as sessions end."""
    if processes <= 1:
        with threadpool_limits(1, user_api="blas"):  # as in a pool worker
            _start_worker(job)
            results = []
            for episode in range(episodes):
                results.extend(_run_episodes((day, [episode])))
                progress.update(1)
        return results
    lanes = max(1, min(len(load_world(job.data).listeners), episodes // 50, processes * 64))  # ~50+ sessions each
    tasks = [(day, group) for group in user_lanes(job, day, episodes, lanes)]
    results = []
    with quiet_pool(processes, _start_pool_worker, (job,)) as pool:
        for task_results in pool.imap_unordered(_run_episodes, tasks):
            results.extend(task_results)
            progress.update(len(task_results))
    return sorted(results, key=lambda r: r.episode)


def between_days(command: str, day: int) -> None:
    """Run the hook (e.g. retrain and load a model); the day that just ended is in ``SIM_DAY``."""
    finished = subprocess.run(command, shell=True, env={**os.environ, "SIM_DAY": str(day)}, check=False)
    if finished.returncode != 0:
        raise SimError(f"--between-days command failed with exit code {finished.returncode} after day {day}")


def pause(day: int) -> None:
    """The course's end-of-day stop: time to retrain and reload by hand."""
    try:
        input(f"day {day} done: press Enter to start day {day + 1} (Ctrl-C to stop) ")
    except EOFError:
        raise SimError("--pause needs an interactive terminal (stdin closed)") from None


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = Parser(
        prog="python -m sim.run",
        description="Simulated listening sessions against a recommender (botify over HTTP, or in-process).",
        epilog="examples:\n"
        "  python -m sim.run --data data --agent remote --url http://127.0.0.1:5001 --episodes 1000 --processes 2\n"
        "  python -m sim.run --data data --agent random,toppop,sticky-artist,oracle --episodes 2000 --out s.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", type=path_argument, default=Path("data"), help="world folder (default: data)")
    parser.add_argument(
        "--agent",
        action="append",
        help=f"{', '.join(IN_PROCESS_AGENTS)}, remote, or module:factory; repeat or comma-separate "
        "to compare several on the same sessions (default: remote)",
    )
    parser.add_argument("--url", default=DEFAULT_URL, help=f"botify URL for --agent remote (default: {DEFAULT_URL})")
    parser.add_argument("--episodes", type=int, default=1000, help="sessions per agent and day (default: 1000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--processes", type=int, default=1, help="parallel workers (default: 1)")
    parser.add_argument("--days", type=int, default=1, help="days to simulate (default: 1)")
    parser.add_argument("--between-days", metavar="CMD", help="shell command run after each day but the last")
    parser.add_argument("--pause", action="store_true", help="also wait for Enter between days (interactive)")
    parser.add_argument(
        "--max-steps", type=int, default=1000, help="truncate longer sessions; 0: never (default: 1000)"
    )
    parser.add_argument("--out", type=path_argument, help="write the summary as JSON here")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    for name, most in LIMITS.items():
        if not 1 <= getattr(args, name) <= most:
            parser.error(f"--{name} must be between 1 and {most:,}")
    if args.seed < 0 or args.max_steps < 0:
        parser.error("--seed and --max-steps must not be negative")
    args.agent = [a for value in (args.agent or ["remote"]) for a in value.split(",") if a]
    if not args.agent:  # `--agent ""` or `--agent ,`: no session would run, and an empty table would say nothing
        parser.error("--agent names no agent")
    repeated = [name for name in dict.fromkeys(args.agent) if args.agent.count(name) > 1]
    if repeated:
        parser.error(f"--agent {', '.join(repeated)} given more than once (an agent's sessions make one row)")
    return args


def check_writable(path: Path) -> None:
    """OSError now, before any session, if the summary could not be written at `path` (a folder, no permission)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    existed = path.exists()
    with open(path, "a", encoding="utf-8"):
        pass
    if not existed:
        path.unlink()


def write_summary(path: Path, seed: int, episodes: int, rows: list[Summary]) -> None:
    """Replace the summary whole: a write that fails (a full disk, Ctrl-C) leaves the days written before."""
    summary = {"seed": seed, "episodes": episodes, "results": [row.to_dict() for row in rows]}
    write_text(path, json.dumps(summary, indent=2) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.out:
        check_writable(args.out)
    world = load_world(args.data)  # fail early on bad data, before any worker starts
    env = RecEnv(world)
    agents = [build_agent(name, env, args.url) for name in args.agent]  # fail early on bad agents
    for agent in agents:
        if isinstance(agent, RemoteAgent):
            agent.check()
            agent.close()
    results: list[EpisodeResult] = []
    for day in range(1, args.days + 1):
        for name in args.agent:
            job = Job(args.data, name, args.url, args.max_steps or None, args.seed)
            desc = f"{name} day {day}" if args.days > 1 else name  # one day: maybe not the first (the pipeline's)
            with tqdm(total=args.episodes, desc=desc, unit="session", disable=args.quiet,
                      mininterval=progress_interval()) as bar:  # fmt: skip
                results.extend(run_day(job, day, args.episodes, args.processes, bar))
        if args.out:  # after every day: a run that fails later keeps the days it finished
            write_summary(args.out, args.seed, args.episodes, summarize(results))
        if day < args.days:
            if args.between_days:
                between_days(args.between_days, day)
            if args.pause:
                pause(day)
            load_world.cache_clear()  # the hook or the pause may have changed the world: each day reads it anew
    print(format_table(summarize(results)))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli("sim.run", main))
