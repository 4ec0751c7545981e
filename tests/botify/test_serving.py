"""Serving under concurrency and through a Redis outage."""

from __future__ import annotations

import http.client
import logging
import os
import resource
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import requests

from botify.app import create_app
from botify.event_log import PATH_CHECK_SECONDS
from botify.load import load_catalog, load_recommendations
from botify.registry import EXPERIMENTS
from botify.session import Session
from botify.settings import Settings
from botify.store import CATALOG_CHECK_SECONDS, session_key

from .conftest import artist_of, post, write_recs, write_world


def test_event_log_has_one_line_per_successful_response(start_botify, tiny_world):
    service = start_botify(tiny_world, workers=2)

    def listener(user: int) -> int:
        ok, track = 0, 3
        with requests.Session() as http:
            for step in range(40):
                route = "last" if step % 10 == 9 else "next"
                answer = http.post(f"{service.url}/{route}/{user}", json={"track": track, "time": 0.5})
                ok += answer.status_code == 200
                track = answer.json().get("track", track)
        return ok

    with ThreadPoolExecutor(8) as pool:
        successes = sum(pool.map(listener, range(16)))
    service.stop()
    events = service.events()
    assert successes == 16 * 40
    assert len(events) == successes
    assert sum(event["message"] == "last" for event in events) == 16 * 4
    assert len({path.name for path in service.log_dir.iterdir()}) == 2  # one file per worker


def wait_until(condition, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_serves_through_a_redis_outage_and_recovers(start_botify, own_redis, tiny_world, tmp_path):
    treated = next(u for u in range(1000) if EXPERIMENTS["HW_2"].arm(u) == "T1")
    recs = write_recs(tmp_path / "lightfm.jsonl", {treated: [11, 12, 13]})
    service = start_botify(tiny_world, {"lightfm": recs}, redis_url=own_redis.url, workers=1)
    assert requests.post(f"{service.url}/next/{treated}", json={"track": 5, "time": 1}).json()["track"] == 11
    own_redis.client().save()  # the data survives the crash as a snapshot, like a persisted Redis
    own_redis.kill()

    during = [post(f"{service.url}/next/{treated}", {"track": 5, "time": 1}) for _ in range(20)]
    assert [status for status, _ in during] == [200] * 20
    assert all(0 <= answer["track"] < 300 for _, answer in during)
    control = next(u for u in range(1000) if EXPERIMENTS["HW_2"].arm(u) == "C")  # StickyArtist needs no Redis
    sticky = [post(f"{service.url}/next/{control}", {"track": 45, "time": 1}) for _ in range(10)]
    assert {artist_of(answer["track"]) for _, answer in sticky} == {artist_of(45)}
    assert requests.get(f"{service.url}/ready").status_code == 503
    assert requests.get(f"{service.url}/health").status_code == 200

    own_redis.start()
    assert wait_until(lambda: requests.get(f"{service.url}/ready").status_code == 200)
    requests.post(f"{service.url}/last/{treated}", json={"track": 5, "time": 1})
    assert requests.post(f"{service.url}/next/{treated}", json={"track": 5, "time": 1}).json()["track"] == 11
    service.stop()
    assert len([e for e in service.events() if e["message"] == "next"]) == 32  # outage answers are logged too


def test_a_hung_redis_costs_one_timeout_per_retry_window_not_one_per_request(start_botify, own_redis, tiny_world):
    service = start_botify(tiny_world, redis_url=own_redis.url, workers=1)
    treated = next(u for u in range(1000) if EXPERIMENTS["HW_2"].arm(u) == "T1")
    os.kill(own_redis.process.pid, signal.SIGSTOP)  # Redis hangs: connections open, no answers
    try:
        answers = [post(f"{service.url}/next/{treated}", {"track": 5, "time": 1}) for _ in range(30)]
        answers += [post(f"{service.url}/last/{treated}", {"track": 5, "time": 1}) for _ in range(10)]
        metadata = [requests.get(f"{service.url}/track/5").status_code for _ in range(5)]
    finally:
        os.kill(own_redis.process.pid, signal.SIGCONT)
    assert [status for status, _ in answers] == [200] * 40
    assert metadata == [503] * 5
    service.stop()
    waited = [event for event in service.events() if event["latency"] >= 0.2]  # one Redis timeout or more
    assert 1 <= len(waited) <= 8  # without the retry window, all 40 would wait


def test_a_redis_that_lost_the_catalog_is_served_from_the_catalog_in_memory(start_botify, own_redis, tiny_world):
    service = start_botify(tiny_world, redis_url=own_redis.url, workers=1)
    assert requests.post(f"{service.url}/next/1", json={"track": 5, "time": 1}).status_code == 200
    own_redis.client().flushdb()  # e.g. restarted without its snapshot
    time.sleep(CATALOG_CHECK_SECONDS + 0.1)  # past the interval at which a worker re-reads the catalog pointer
    answers = [requests.post(f"{service.url}/next/{user}", json={"track": 5, "time": 1}) for user in range(10)]
    assert [answer.status_code for answer in answers] == [200] * 10
    assert all(0 <= answer.json()["track"] < 300 for answer in answers)
    assert requests.post(f"{service.url}/next/1", json={"track": 300, "time": 1}).status_code == 404
    assert requests.get(f"{service.url}/ready").json()["catalog"] is False
    metadata = requests.get(f"{service.url}/track/5")  # not "unknown track": the catalog is what is missing
    assert (metadata.status_code, metadata.json()["message"].startswith("no catalog loaded")) == (503, True)


def test_while_no_catalog_is_live_a_worker_asks_redis_for_one_at_most_once_a_second(
    start_botify, own_redis, tiny_world
):
    service = start_botify(tiny_world, redis_url=own_redis.url, workers=1)
    control = next(u for u in range(1000) if EXPERIMENTS["HW_2"].arm(u) == "C")  # StickyArtist: no Redis call
    assert requests.post(f"{service.url}/next/{control}", json={"track": 5, "time": 1}).status_code == 200
    client = own_redis.client()
    client.flushdb()
    time.sleep(CATALOG_CHECK_SECONDS + 0.1)
    before = client.info("stats")["total_commands_processed"]
    started = time.monotonic()
    answers = [requests.post(f"{service.url}/next/{control}", json={"track": 5, "time": 1}) for _ in range(40)]
    seconds = time.monotonic() - started
    commands = client.info("stats")["total_commands_processed"] - before - 1  # the INFO above
    assert [answer.status_code for answer in answers] == [200] * 40  # from the catalog in memory
    assert 1 <= commands <= 2 * (seconds / CATALOG_CHECK_SECONDS + 1)  # a GET of the pointer per second, not 40+


def test_a_catalog_loaded_while_serving_is_served_within_the_check_interval(
    start_botify, own_redis, tiny_world, tmp_path
):
    service = start_botify(tiny_world, redis_url=own_redis.url, workers=1)
    assert requests.post(f"{service.url}/next/1", json={"track": 305, "time": 1}).status_code == 404
    grown = write_world(tmp_path / "grown", [f"Artist {artist_of(track)}" for track in range(300)] + ["New"] * 10)
    load_catalog(own_redis.client(), grown)
    time.sleep(CATALOG_CHECK_SECONDS + 0.1)  # past the interval at which a worker re-reads the catalog pointer
    answer = requests.post(f"{service.url}/next/1", json={"track": 305, "time": 1})
    assert answer.status_code == 200 and 0 <= answer.json()["track"] < 310


def test_without_any_catalog_listens_get_a_503_and_are_not_logged(own_redis, tmp_path, caplog):
    app = create_app(Settings(redis_url=own_redis.url, log_dir=tmp_path / "log")).test_client()
    for route in ("next", "last"):
        answer = app.post(f"/{route}/1", json={"track": 5, "time": 0.5})
        assert (answer.status_code, "no catalog" in answer.json["message"]) == (503, True)
        assert answer.headers["Retry-After"] == "1"
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR] == []  # no stacks
    assert app.get("/ready").json["catalog"] is False
    assert [path.read_bytes() for path in (tmp_path / "log").iterdir()] == [b""]


def test_without_redis_url_the_app_needs_the_embedded_redis_running(tmp_path):
    with pytest.raises(RuntimeError, match="REDIS_URL is not set"):
        create_app(Settings(data_dir=tmp_path / "world", log_dir=tmp_path / "log"))


def test_keep_alive_connections_are_spread_over_the_workers(start_botify, tiny_world):
    """Each worker accepts on its own socket: a burst of connections does not all land on the first one awake."""
    service = start_botify(tiny_world, workers=2)
    host, port = service.url.removeprefix("http://").split(":")
    connections = [http.client.HTTPConnection(host, int(port), timeout=10) for _ in range(16)]
    for connection in connections:
        connection.connect()
    for user, connection in enumerate(connections):
        connection.request("POST", f"/next/{user}", body=b'{"track": 3, "time": 0.5}')
        assert connection.getresponse().status == 200
    for connection in connections:
        connection.close()
    service.stop()
    lines_per_worker = sorted(len(path.read_text().splitlines()) for path in service.log_dir.iterdir())
    assert len(lines_per_worker) == 2 and sum(lines_per_worker) == 16 and lines_per_worker[0] >= 2


def test_while_redis_refuses_writes_the_lightfm_arm_is_served_from_memory_and_recovers(
    start_botify, own_redis, tiny_world, tmp_path, capfd
):
    treated = next(u for u in range(1000) if EXPERIMENTS["HW_2"].arm(u) == "T1")
    recs = write_recs(tmp_path / "lightfm.jsonl", {treated: [11, 12, 13]})
    service = start_botify(tiny_world, {"lightfm": recs}, redis_url=own_redis.url, workers=1)
    client = own_redis.client()
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", 1)  # every write is refused (OOM)
    try:
        with pytest.raises(redis.ResponseError, match="maxmemory"):
            client.set("probe", 1)
        answers = [post(f"{service.url}/next/{treated}", {"track": 5, "time": 1}) for _ in range(5)]
    finally:
        client.config_set("maxmemory", 0)
    assert [status for status, _ in answers] == [200] * 5  # not a 500 with a traceback
    assert all(answer["track"] in range(200, 300) for _, answer in answers)  # TopPop's top 100, from memory
    requests.post(f"{service.url}/last/{treated}", json={"track": 5, "time": 1})
    assert requests.post(f"{service.url}/next/{treated}", json={"track": 5, "time": 1}).json()["track"] == 11
    service.stop()
    logged = capfd.readouterr().err
    assert logged.count("Redis refused a command") == 1 and "OOM command not allowed" in logged  # not per request


def test_a_replica_that_refuses_even_a_ping_is_unready_not_a_500_and_ready_again_when_it_answers(
    own_redis, tiny_world, tmp_path, caplog
):
    """A replica cut off from its master with `replica-serve-stale-data no` answers MASTERDOWN to every command,
    PING included (and a REDIS_URL naming a database Redis lacks fails the same way): /ready answered a 500."""
    client = own_redis.client()
    load_catalog(client, tiny_world)
    app = create_app(Settings(redis_url=own_redis.url, log_dir=tmp_path / "log")).test_client()
    assert app.get("/ready").status_code == 200
    client.config_set("replica-serve-stale-data", "no")
    client.replicaof("127.0.0.1", "1")  # a master that never answers
    try:
        refused = app.get("/ready")
        listen = app.post("/next/1", json={"track": 5, "time": 1})
    finally:
        client.replicaof("NO", "ONE")
    assert (refused.status_code, refused.json["redis"], refused.json["catalog"]) == (503, False, False)
    assert listen.status_code == 200 and 0 <= listen.json["track"] < 300  # served from the catalog in memory
    assert "Link with MASTER is down" in caplog.text  # why Redis counts as down, for the operator
    assert app.get("/ready").status_code == 200


def test_a_wrong_redis_password_is_logged_not_served_as_a_silent_outage(own_redis, tiny_world, tmp_path, caplog):
    """A REDIS_URL with a wrong password looked like Redis down: /ready 503, fallbacks served, and nothing said why."""
    client = own_redis.client()
    load_catalog(client, tiny_world)
    wrong = own_redis.url.replace("redis://", "redis://:not-the-password@")
    client.config_set("requirepass", "the-password")
    try:
        app = create_app(Settings(redis_url=wrong, log_dir=tmp_path / "log")).test_client()
        ready = app.get("/ready")
        listens = [app.post("/next/1", json={"track": 5, "time": 1}) for _ in range(3)]
    finally:
        client.config_set("requirepass", "")
    assert (ready.status_code, ready.json["redis"]) == (503, False)
    assert [listen.status_code for listen in listens] == [503] * 3  # no catalog seen yet: not a guess
    logged = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert logged == [
        "Redis refused a command: invalid username-password pair or user is disabled.; serving from memory meanwhile"
    ]  # once a minute, not once per request
    assert "not-the-password" not in caplog.text


def test_a_listen_the_event_log_cannot_take_gets_a_503_and_serving_resumes_when_it_can(start_botify, tiny_world):
    service = start_botify(tiny_world, workers=1)
    assert requests.post(f"{service.url}/next/1", json={"track": 5, "time": 1}).status_code == 200
    [path] = service.log_dir.iterdir()
    path.unlink()
    path.mkdir()  # the worker's log path cannot be opened as a file: as unwritable as a full disk
    time.sleep(PATH_CHECK_SECONDS + 0.1)  # a worker looks at its log path once a second
    answers = [requests.post(f"{service.url}/next/{user}", json={"track": 5, "time": 1}) for user in (2, 3, 4)]
    assert [answer.status_code for answer in answers] == [503] * 3  # every listen, not only the first
    assert answers[-1].json()["message"].startswith("the event log cannot take the listen")
    assert requests.get(f"{service.url}/ready").json()["event_log"] is False
    path.rmdir()
    assert requests.get(f"{service.url}/ready").json()["ready"] is True
    assert requests.post(f"{service.url}/last/3", json={"track": 5, "time": 1}).status_code == 200
    assert [(event["message"], event["user"]) for event in service.events()] == [("last", 3)]


def treated_user_served_once(start_botify, tiny_world, tmp_path):
    """botify (one worker) with a LightFM list for a user of HW_2's treatment, who has listened to track 5."""
    treated = next(u for u in range(1000) if EXPERIMENTS["HW_2"].arm(u) == "T1")
    recs = write_recs(tmp_path / "r.jsonl", {treated: [11, 12, 13]})
    service = start_botify(tiny_world, {"lightfm": recs}, workers=1)
    assert requests.post(f"{service.url}/next/{treated}", json={"track": 5, "time": 1}).status_code == 200
    return service, treated


def retries_refused_before_the_session(service, redis_server, treated: int) -> list[requests.Response]:
    """Four listens of track 6 while the log fails: all 503, and only the first recorded in the session (it found
    the log failing after recording its listen; the retries were refused before that)."""
    retries = [requests.post(f"{service.url}/next/{treated}", json={"track": 6, "time": 1}) for _ in range(4)]
    assert [answer.status_code for answer in retries] == [503] * 4
    session = Session.from_bytes(redis.Redis.from_url(redis_server.url).get(session_key(treated)), 300)
    assert session.played.tolist() == [5, 6]
    return retries


def test_listens_refused_while_the_event_log_fails_are_not_recorded_in_the_session(
    start_botify, redis_server, tiny_world, tmp_path
):
    service, treated = treated_user_served_once(start_botify, tiny_world, tmp_path)
    [path] = service.log_dir.iterdir()
    path.unlink()
    path.mkdir()
    time.sleep(PATH_CHECK_SECONDS + 0.1)
    retries_refused_before_the_session(service, redis_server, treated)
    path.rmdir()
    assert requests.post(f"{service.url}/next/{treated}", json={"track": 6, "time": 1}).status_code == 200


def test_a_log_that_cannot_take_a_line_though_the_disk_has_room_is_unready_and_refuses_listens_until_it_can(
    start_botify, redis_server, tiny_world, tmp_path
):
    # `ulimit -f` on the running worker: its log fails with EFBIG (Python ignores SIGXFSZ), the disk keeps its room,
    # as under a disk quota or an I/O error.
    service, treated = treated_user_served_once(start_botify, tiny_world, tmp_path)
    [worker] = service.worker_pids()
    [path] = service.log_dir.iterdir()
    resource.prlimit(worker, resource.RLIMIT_FSIZE, (path.stat().st_size, resource.RLIM_INFINITY))
    retries = retries_refused_before_the_session(service, redis_server, treated)
    assert "File too large" in retries[-1].json()["message"]
    ready = requests.get(f"{service.url}/ready")
    assert (ready.status_code, ready.json()["event_log"]) == (503, False)
    resource.prlimit(worker, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    assert requests.get(f"{service.url}/ready").json()["ready"] is True
    assert requests.post(f"{service.url}/next/{treated}", json={"track": 6, "time": 1}).status_code == 200
    assert [event["track"] for event in service.events()] == [5, 6]


def test_ready_reports_a_set_made_for_another_catalog_as_stale(own_redis, tiny_world, tmp_path):
    client = own_redis.client()
    load_catalog(client, tiny_world)
    load_recommendations(client, "lightfm", write_recs(tmp_path / "r.jsonl", {1: [5, 6]}))
    app = create_app(Settings(redis_url=own_redis.url, log_dir=tmp_path / "log")).test_client()
    ready = app.get("/ready").json
    assert (ready["recommendation_sets"], ready["stale_sets"]) == ({"lightfm": True, "lightfm_nofeat": False}, [])
    other = write_world(tmp_path / "other", [f"Artist {track % 30}" for track in range(300)])  # same size
    load_catalog(client, other)  # as `botify load --data OTHER --allow-stale-sets` does
    ready = app.get("/ready")
    assert ready.status_code == 200  # serving goes on: StickyArtist and the fallbacks need only the catalog
    assert (ready.json["recommendation_sets"]["lightfm"], ready.json["stale_sets"]) == (False, ["lightfm"])
    load_recommendations(client, "lightfm", write_recs(tmp_path / "r.jsonl", {1: [5, 6]}))
    assert (app.get("/ready").json["recommendation_sets"]["lightfm"], app.get("/ready").json["stale_sets"]) == (
        True,
        [],
    )
