from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from botify.event_log import log_files
from sim.catalog import MAX_USER_ID, read_world, write_world
from sim.env import RecEnv
from sim.errors import AgentError
from sim.generate import WorldConfig, generate_world
from sim.remote import RemoteAgent
from sim.run import run_episode


@dataclass
class Recorder:
    """What a plain HTTP server received: the exact bytes the simulator sends."""

    requests: list[tuple[str, str, str, bytes, int]] = field(default_factory=list)
    n_tracks: int = 3000
    hang_up: bool = False  # close each connection after answering, as a server timing out idle clients
    answer: int | None = None  # always answer this track (else the one after the track sent)
    error_page: str | None = None  # answer every POST with this HTML page and status 500, as a failing proxy


def _recording_server(recorder: Recorder) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a real server

        def _answer(self, status: int, payload: dict | str) -> None:
            html = isinstance(payload, str)
            body = payload.encode() if html else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html" if html else "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._answer(200, {"status": "alive", "message": "recording"})

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            recorder.requests.append(
                (self.command, self.path, self.headers["Content-Type"], body, self.client_address[1])
            )
            endpoint, _, user = self.path.strip("/").partition("/")
            if recorder.error_page is not None:
                self._answer(500, recorder.error_page)
            elif endpoint not in ("next", "last"):
                self._answer(404, {"message": f"no such endpoint: {self.path}"})
            elif endpoint == "next":
                after = (json.loads(body)["track"] + 1) % recorder.n_tracks
                track = after if recorder.answer is None else recorder.answer
                self._answer(200, {"user": int(user), "track": track})
            else:
                self._answer(200, {"user": int(user)})
            self.close_connection = recorder.hang_up

        def log_message(self, *args: object) -> None:
            return None

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


@pytest.fixture
def recorder() -> Iterator[tuple[Recorder, str]]:
    recorder = Recorder()
    server = _recording_server(recorder)
    # shutdown() waits for the loop to look: every 0.05 s, not the default 0.5 s
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield recorder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_remote_agent_sends_the_course_requests(recorder, world_dir):
    record, url = recorder
    env = RecEnv(read_world(world_dir))
    agent = RemoteAgent(url)
    result = run_episode(env, agent, "remote", seed=0, day=1, episode=0)
    sent = record.requests
    assert len(sent) == result.steps + 1
    assert [s[1] for s in sent] == [f"/next/{result.user}"] * result.steps + [f"/last/{result.user}"]
    assert all(method == "POST" and ctype == "application/json" for method, _, ctype, _, _ in sent)
    first = json.loads(sent[0][3])
    assert sent[0][3] == json.dumps({"track": first["track"], "time": first["time"]}).encode()
    assert isinstance(first["track"], int) and isinstance(first["time"], float)
    # Each request carries the track the service answered to the one before, and its listen time.
    tracks = [json.loads(body)["track"] for _, _, _, body, _ in sent]
    assert tracks[1:] == [(t + 1) % 3000 for t in tracks[:-1]]
    assert json.loads(sent[-1][3]) == {"track": env.session.track, "time": env.session.time}
    assert len({port for *_, port in sent}) == 1, "one kept-alive connection for the whole session"


@pytest.mark.parametrize(("reconnect_after", "connections"), [(0.0, 4), (60.0, 1)])
def test_sessions_move_to_a_new_connection_once_it_is_old(recorder, world_dir, reconnect_after, connections):
    record, url = recorder
    env = RecEnv(read_world(world_dir))
    agent = RemoteAgent(url, reconnect_after=reconnect_after)
    ports_per_session = []
    for episode in range(4):
        before = len(record.requests)
        run_episode(env, agent, "remote", seed=0, day=1, episode=episode)
        ports_per_session.append({port for *_, port in record.requests[before:]})
    assert all(len(ports) == 1 for ports in ports_per_session), "a session never changes connection"
    assert len(set().union(*ports_per_session)) == connections


def test_remote_agent_reconnects_when_the_server_closed_an_idle_connection(recorder):
    record, url = recorder
    record.hang_up = True
    agent = RemoteAgent(url)
    answers = []
    for track in (10, 20, 30):
        answers.append(agent.recommend_next(1, track, 0.5))
        time.sleep(0.2)  # idle: the server's close has arrived before the next request
    assert answers == [11, 21, 31]
    assert len(record.requests) == 3, "every request answered once, none sent twice"
    assert len({port for *_, port in record.requests}) == 3, "a new connection after each close"


def test_remote_agent_fails_with_one_clear_line(recorder):
    _, url = recorder
    agent = RemoteAgent(f"{url}/nowhere")
    with pytest.raises(AgentError, match=r"^POST .*/nowhere/next/1 answered HTTP 404: .*no such endpoint"):
        agent.recommend_next(1, 2, 0.5)


def test_an_html_error_page_is_reported_on_one_line(recorder):
    record, url = recorder
    record.error_page = "<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>\n<h1>Oops</h1>\n"
    with pytest.raises(AgentError) as raised:
        RemoteAgent(url).recommend_next(1, 2, 0.5)
    assert str(raised.value).endswith("answered HTTP 500: <!doctype html> <html lang=en> <title>500 Internal Server "
                                      "Error</title> <h1>Oops</h1>")  # fmt: skip


@pytest.mark.parametrize("processes", ["1", "2"])
def test_a_service_answering_a_track_outside_the_world_is_one_line(recorder, world_dir, processes):
    """As a botify loaded with a bigger world would: the run stops and says which service answered what."""
    record, url = recorder
    record.answer = 7000
    command = [sys.executable, "-m", "sim.run", "--data", str(world_dir), "--agent", "remote", "--url", url,
               "--episodes", "3", "--processes", processes, "--quiet"]  # fmt: skip
    finished = subprocess.run(command, capture_output=True, text=True)
    assert finished.returncode == 1
    assert finished.stderr == f"sim.run: error: agent remote at {url}: recommended track 7000 is not in 0..2999\n"


@pytest.fixture
def tiny_world(tmp_path):
    world = generate_world(WorldConfig(tracks=1000, users=100), np.random.default_rng(1))
    write_world(tmp_path / "data", world.tracks, world.embeddings, world.users, world.top_tracks)
    return tmp_path / "data"


def test_sessions_through_a_live_botify_land_in_its_log(start_botify, tiny_world, tmp_path):
    service = start_botify(tiny_world)
    out = tmp_path / "summary.json"
    command = [sys.executable, "-m", "sim.run", "--data", str(tiny_world), "--agent", "remote", "--url", service.url,
               "--episodes", "30", "--seed", "3", "--processes", "2", "--quiet", "--out", str(out)]  # fmt: skip
    finished = subprocess.run(command, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr
    row = json.loads(out.read_text())["results"][0]
    service.stop()
    events = service.events()
    kinds = Counter(event["message"] for event in events)
    assert kinds["last"] == row["sessions"] == 30
    assert kinds["next"] == round(row["mean_steps"] * 30)
    assert all(0.0 <= event["time"] <= 1.0 and 0 <= event["track"] < 1000 for event in events)


class TracingAgent(RemoteAgent):
    """The real remote agent, keeping what it sent and what the service answered."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.sent: list[tuple[str, int, int, float]] = []
        self.answered: list[int] = []

    def _post(self, endpoint: str, user: int, track: int, time: float) -> dict:
        answer = super()._post(endpoint, user, track, time)
        self.sent.append((endpoint, user, track, time))
        if endpoint == "next":
            self.answered.append(answer["track"])
        return answer


def test_a_run_served_by_one_worker_is_the_same_on_every_run(simulate_through_botify):
    """The service's random picks are seeded by `BOTIFY_SEED` and the worker's number, not its process id: one
    worker answering the same sequential client twice logs the same listens, and another seed other ones."""

    def listens(**variables: str) -> list[tuple]:
        logs = simulate_through_botify(seed=5, tracks=200, users=30, episodes=150, experiment="EXPLORE", **variables)
        records = [json.loads(line) for path in log_files([logs.logs]) for line in path.read_text().splitlines()]
        return [(r["user"], r["track"], r["time"], r["recommendation"]) for r in records if r["message"] == "next"]

    first, again, other_seed = listens(), listens(), listens(BOTIFY_SEED="1")
    assert len(first) > 500
    assert first == again
    assert first != other_seed
    assert listens(BOTIFY_SEED="random") != listens(BOTIFY_SEED="random")  # seeded from the OS: compose's replicas


def test_one_simulator_process_spreads_its_sessions_over_the_workers(start_botify, tiny_world):
    """Each gunicorn worker accepts on its own socket: only a new connection can land on the other one."""
    service = start_botify(tiny_world, workers=2)
    env = RecEnv(read_world(tiny_world))
    agent = RemoteAgent(service.url, reconnect_after=0.0)
    for episode in range(24):
        run_episode(env, agent, "remote", seed=5, day=1, episode=episode)
    service.stop()
    sessions_per_worker = sorted(path.read_text().count('"message":"last"') for path in service.log_dir.iterdir())
    assert len(sessions_per_worker) == 2 and sum(sessions_per_worker) == 24 and sessions_per_worker[0] >= 3


def test_remote_sessions_match_the_log_event_by_event(start_botify, tiny_world):
    service = start_botify(tiny_world)
    env = RecEnv(read_world(tiny_world))
    agent = TracingAgent(service.url)
    for episode in range(8):
        run_episode(env, agent, "remote", seed=5, day=1, episode=episode)
    agent.close()  # as sim.run does: a kept-alive connection would hold the graceful stop 2 s
    service.stop()
    events = service.events()
    assert Counter((e["message"], e["user"], e["track"], e["time"]) for e in events) == Counter(agent.sent)
    assert Counter(e["recommendation"] for e in events if e["message"] == "next") == Counter(agent.answered)


def test_the_largest_user_id_the_simulator_reads_is_one_botify_serves(start_botify, tiny_world):
    """sim reads user ids up to the service's own limit (int64): such a listener's sessions are served and logged."""
    first = json.loads((tiny_world / "users.json").read_text().splitlines()[0])
    (tiny_world / "users.json").write_text(json.dumps({**first, "user": MAX_USER_ID}) + "\n")
    service = start_botify(tiny_world)
    env = RecEnv(read_world(tiny_world))
    agent = TracingAgent(service.url)
    for episode in range(3):
        run_episode(env, agent, "remote", seed=5, day=1, episode=episode)
    agent.close()
    service.stop()
    assert Counter((e["message"], e["user"]) for e in service.events())[("last", 2**63 - 1)] == 3
