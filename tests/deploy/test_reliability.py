"""Reliability under load and faults, against the real service under gunicorn and a real Redis.

- load held: 20 s of listening sessions from several keep-alive clients: no 5xx, no failed connection,
  and the event log holds exactly one line per successful /next and /last;
- Redis killed mid-load: answers keep coming (popular tracks held in process) while /ready says 503;
  Redis restarted: the same botify serves recommendations again, nothing restarted;
- a worker SIGKILLed mid-load: gunicorn replaces it, and no answered request is missing from the event log
  (the other workers' lines, and the killed one's too: a line is written before its answer is sent);
- a graceful stop (SIGTERM): new connections are refused (nginx retries them elsewhere), never queued and reset.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import requests

from botify.registry import EXPERIMENTS

from .conftest import TOP, USERS, Client

HW_2 = EXPERIMENTS["HW_2"]


@dataclass(frozen=True)
class Answer:
    thread: int
    epoch: int  # the client connection it came over (one gunicorn worker per connection)
    message: str  # next | last
    user: int
    status: int  # 0: the connection failed
    track: int | None  # what /next recommended
    sent: float  # time.monotonic() when sent


Users = Callable[[int, int], int]  # (thread, session number) -> user


def listen(
    url: str, threads: int, seconds: float, users: Users, seed: int, stop: threading.Event | None = None,
    connection_per_session: bool = False,
) -> tuple[list[threading.Thread], list[list[Answer]]]:  # fmt: skip
    """`threads` clients play sessions (1-6 /next, then /last) until `seconds` pass or `stop` is set.

    Each /next sends the previously recommended track, as a listener following the service would.
    A client keeps its connection alive across sessions unless `connection_per_session`.
    Bounded in time and in count (at most 50,000 requests per client).
    """
    answers: list[list[Answer]] = [[] for _ in range(threads)]
    deadline = time.monotonic() + seconds
    stop = stop or threading.Event()

    def client(number: int) -> None:
        rng = np.random.default_rng([seed, number])
        connection = Client(url)
        sent = 0
        for session in range(50_000):
            user, track = users(number, session), int(rng.integers(100, 300))
            for message in ["next"] * int(rng.integers(1, 7)) + ["last"]:
                if stop.is_set() or time.monotonic() > deadline or sent >= 50_000:
                    connection.close()
                    return
                started = time.monotonic()
                status, body = connection.post(f"/{message}/{user}", {"track": track, "time": float(rng.random())})
                sent += 1
                epoch = connection.epoch - (status == 0)  # a failure closes the connection: it was the old one
                answers[number].append(Answer(number, epoch, message, user, status, body.get("track"), started))
                if status == 0:
                    break  # a new connection starts a new session: each session lives on one connection
                if message == "next":
                    track = body["track"]
            if connection_per_session:
                connection.close()

    workers = [threading.Thread(target=client, args=(number,)) for number in range(threads)]
    for worker in workers:
        worker.start()
    return workers, answers


def finish(workers: list[threading.Thread]) -> None:
    for worker in workers:
        worker.join(timeout=60)
    assert not any(worker.is_alive() for worker in workers)


def read_events_of(*paths: Path) -> list[dict]:
    return [json.loads(line) for path in paths for line in path.read_text(encoding="utf-8").splitlines() if line]


def logged(events: list[dict]) -> Counter:
    return Counter((event["message"], event["user"]) for event in events)


def answered(answers: list[Answer]) -> Counter:
    return Counter((answer.message, answer.user) for answer in answers if answer.status == 200)


def owned_by(threads: int) -> Users:
    """Users with recommendation lists, each owned by one client (no two clients share a session)."""
    return lambda number, session: (number + threads * session) % (USERS - USERS % threads)


def test_load_held_for_20_s_without_errors_or_lost_log_lines(start_botify, small_world):
    service = start_botify(small_world.data_dir, small_world.recs, workers=2)
    workers, per_client = listen(service.url, threads=6, seconds=20, users=owned_by(6), seed=1)
    finish(workers)
    service.stop()  # graceful: workers write out what they queued
    answers = [answer for client in per_client for answer in client]
    statuses = Counter(answer.status for answer in answers)
    assert statuses == {200: len(answers)}, statuses  # no 5xx, no 4xx, no failed connection
    assert len(answers) >= 1_000
    assert logged(service.events()) == answered(answers)  # one line per success, nothing lost, nothing extra
    treatment = [a for a in answers if a.message == "next" and HW_2.arm(a.user) == "T1"]
    # Served by the recommendation set, not the outage path; a Redis call slower than botify's 0.25 s timeout
    # counts as an outage by design, which a machine overloaded by other jobs can cause now and then.
    assert treatment and sum(a.track in TOP for a in treatment) <= 0.05 * len(treatment)


def wait_until(condition: Callable[[], bool], timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return time.monotonic()


def ready(url: str) -> tuple[int, dict]:
    answer = requests.get(f"{url}/ready", timeout=5)
    return answer.status_code, answer.json()


def test_redis_killed_then_restarted_during_load(start_botify, own_redis, small_world):
    service = start_botify(small_world.data_dir, small_world.recs, workers=2, redis_url=own_redis.url)
    stop = threading.Event()
    workers, per_client = listen(service.url, threads=4, seconds=30, users=owned_by(4), seed=2, stop=stop)
    time.sleep(1.5)
    own_redis.client().save()  # the snapshot a restarted Redis comes back with (compose: --save)
    own_redis.kill()
    killed = time.monotonic()
    outage_seen = wait_until(lambda: ready(service.url)[0] == 503, timeout=5)
    assert ready(service.url)[1]["redis"] is False
    time.sleep(2)
    restarting = time.monotonic()
    own_redis.start()
    recovered = wait_until(lambda: ready(service.url)[0] == 200, timeout=15)
    time.sleep(2)
    stop.set()
    finish(workers)
    service.stop()

    answers = [answer for client in per_client for answer in client]
    assert Counter(answer.status for answer in answers) == {200: len(answers)}  # answers kept coming
    # Requests sent in the last moment before the restart may be served after Redis is back: leave them out.
    outage = (killed, restarting - 0.25)
    during = [a for a in answers if outage[0] < a.sent < outage[1] and a.message == "next" and HW_2.arm(a.user) == "T1"]
    after = [a for a in answers if a.sent > recovered and a.message == "next" and HW_2.arm(a.user) == "T1"]
    assert len(during) >= 20 and all(a.track in TOP for a in during)  # popular tracks held in process
    assert len(after) >= 20 and sum(a.track in TOP for a in after) <= 0.05 * len(after)  # recommendations again
    assert outage_seen - killed < 5 and recovered - restarting < 15
    assert logged(service.events()) == answered(answers)  # the outage lost no event either


def unique_users(number: int, session: int) -> int:
    """A new user for every session (none has a list: the fallback path), so each event names its request."""
    return 1_000_000 * (number + 1) + session


def test_a_killed_worker_is_replaced_and_the_others_lose_no_log_line(start_botify, small_world):
    service = start_botify(small_world.data_dir, small_world.recs, workers=2)
    before = service.worker_pids()
    assert len(before) == 2
    workers, per_client = listen(
        service.url, threads=6, seconds=8, users=unique_users, seed=3, connection_per_session=True
    )
    time.sleep(2.5)
    victim = before[0]
    os.kill(victim, signal.SIGKILL)
    killed = time.monotonic()
    wait_until(lambda: len(set(service.worker_pids()) - set(before)) == 1, timeout=10)
    after = service.worker_pids()
    finish(workers)
    service.stop()

    assert victim not in after and len(after) == 2  # gunicorn replaced the killed worker
    answers = [answer for client in per_client for answer in client]
    assert not [a for a in answers if a.status not in (0, 200)]  # no 5xx, not even around the kill
    # Failures only around the kill: the request each client had on the victim, and a reconnection that reached the
    # victim's own listening socket (SO_REUSEPORT) while the kernel was tearing it down. Never later.
    failed = [a for a in answers if a.status == 0]
    assert all(abs(a.sent - killed) < 1.0 for a in failed), sorted(round(a.sent - killed, 3) for a in failed)
    assert len(failed) <= 2 * 6
    served_by = {}  # user -> pid of the worker whose file has the user's events (a session, one connection)
    for path in service.log_dir.iterdir():
        pid = int(re.search(r"-(\d+)\.jsonl", path.name).group(1))
        served_by |= {event["user"]: pid for event in read_events_of(path)}
    assert {served_by[a.user] for a in answers if a.status == 200 and a.sent < killed} == set(before)  # both served
    assert logged(read_events_of(*service.log_dir.iterdir())) >= answered(answers)  # no answered line lost, anywhere
    assert set(after) - set(before) <= set(served_by.values())  # the replacement took traffic


def test_a_stopping_server_refuses_new_connections_instead_of_resetting_them(start_botify, small_world):
    """`docker compose stop`, a scale-down, a rolling update: SIGTERM while clients keep connections open. A new
    connection must be refused (nginx retries it on another replica), not queued on a stopping worker's own
    listening socket and reset when the worker exits (nginx cannot resend a POST it has sent: a 502 for the client)."""
    service = start_botify(small_world.data_dir, small_world.recs, workers=2)
    kept = [Client(service.url) for _ in range(8)]  # idle keep-alive connections: both workers linger as they stop
    assert [client.post("/next/1", {"track": 1, "time": 0.5})[0] for client in kept] == [200] * 8
    host, port = service.url.removeprefix("http://").split(":")
    service.process.send_signal(signal.SIGTERM)
    outcomes: Counter = Counter()
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        connection = http.client.HTTPConnection(host, int(port), timeout=5)
        try:
            connection.request("POST", "/next/2", json.dumps({"track": 1, "time": 0.5}))
            outcomes[connection.getresponse().status] += 1
        except ConnectionRefusedError:
            outcomes["refused"] += 1
        except (OSError, http.client.HTTPException) as error:  # reset, closed unanswered, timed out
            outcomes[type(error).__name__] += 1
        finally:
            connection.close()
        time.sleep(0.01)
    assert set(outcomes) <= {200, "refused"}, outcomes
    assert outcomes["refused"] > 0, outcomes  # the stop was under way
    assert service.process.wait(timeout=30) == 0
