"""The HTTP contract of every route, against the real service under gunicorn and a real Redis."""

from __future__ import annotations

import pytest
import requests

from botify.registry import EXPERIMENTS

from .conftest import artist_of


@pytest.fixture(scope="module")
def service(start_module_botify, tiny_world):
    return start_module_botify(tiny_world)


def test_hello_health_ready(service):
    assert requests.get(f"{service.url}/").json()["status"] == "alive"
    assert requests.get(f"{service.url}/health").json() == {"status": "ok"}
    ready = requests.get(f"{service.url}/ready")
    assert ready.status_code == 200
    assert ready.json()["ready"] is True and ready.json()["catalog"] is True


def test_track_metadata_and_unknown_track(service):
    assert requests.get(f"{service.url}/track/12").json() == {"track": 12, "artist": "Artist 1", "title": "Song 12"}
    missing = requests.get(f"{service.url}/track/300")
    assert missing.status_code == 404
    assert "unknown track 300" in missing.json()["message"]


@pytest.mark.parametrize("track", ["-1", str(2**63), "9" * 40])
def test_a_track_id_outside_64_bits_is_told_the_range_as_a_negative_one_is(service, track):
    """2**63 and beyond answered "unknown track N", where -1 says which ids there are."""
    answer = requests.get(f"{service.url}/track/{track}")
    assert (answer.status_code, answer.json()) == (
        404,
        {"message": "not found: a track id is a whole number from 0 to 9223372036854775807"},
    )
    assert requests.get(f"{service.url}/track/{2**63 - 1}").json()["message"] == f"unknown track {2**63 - 1}"


def test_next_answers_a_catalog_track_and_logs_the_event(service):
    control_user = next(u for u in range(100, 200) if EXPERIMENTS["HW_2"].arm(u) == "C")
    answer = requests.post(f"{service.url}/next/{control_user}", json={"track": 42, "time": 0.75})
    assert answer.status_code == 200
    body = answer.json()
    assert body["user"] == control_user
    assert artist_of(body["track"]) == artist_of(42)  # StickyArtist serves the control arm
    [event] = service.wait_for_events(control_user, 1)
    assert event["message"] == "next"
    assert (event["user"], event["track"], event["time"]) == (control_user, 42, 0.75)
    assert event["recommendation"] == body["track"]
    assert event["experiments"]["HW_2"] == "C" and event["experiment"] == "HW_2"  # the experiment that routed it
    assert set(event["experiments"]) == set(EXPERIMENTS)
    assert 0 < event["latency"] < 5 and event["timestamp"] > 1_600_000_000_000


def test_last_answers_user_and_logs_the_end_of_session(service):
    answer = requests.post(f"{service.url}/last/205", json={"track": 7, "time": 1})
    assert answer.status_code == 200 and answer.json() == {"user": 205}
    [event] = service.wait_for_events(205, 1)
    assert event["message"] == "last" and "recommendation" not in event
    assert (event["user"], event["track"], event["time"]) == (205, 7, 1.0)


def test_user_ids_are_served_up_to_the_largest_64_bit_one(service):
    """The event log's readers take 64-bit ids: the largest is served and logged, the next one is refused."""
    listen = {"track": 5, "time": 0.5}
    assert requests.post(f"{service.url}/last/{2**63 - 1}", json=listen).json() == {"user": 2**63 - 1}
    assert [event["user"] for event in service.wait_for_events(2**63 - 1, 1)] == [2**63 - 1]
    refused = requests.post(f"{service.url}/next/{2**63}", json=listen)
    assert refused.status_code == 400 and "user id must be at most" in refused.json()["message"]


@pytest.mark.parametrize("accept", [None, "text/html", "text/plain", "application/xml;q=0.9, */*;q=0.1"])
def test_listen_answers_are_json_whatever_the_client_accepts(service, accept):
    headers = {"Accept": accept} if accept else {}
    for route in ("next", "last"):
        answer = requests.post(f"{service.url}/{route}/206", json={"track": 3, "time": 0.5}, headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.headers["Content-Type"] == "application/json"
        assert answer.json()["user"] == 206


BAD_REQUESTS = [
    ("post", "/next/{u}", {"data": "not json"}, 400, "JSON object"),
    ("post", "/next/{u}", {"json": [1, 2]}, 400, "JSON object"),
    ("post", "/next/{u}", {"json": {"time": 0.5}}, 400, "'track'"),
    ("post", "/next/{u}", {"json": {"track": "5", "time": 0.5}}, 400, "'track'"),
    ("post", "/next/{u}", {"json": {"track": 5.0, "time": 0.5}}, 400, "'track'"),
    ("post", "/next/{u}", {"json": {"track": True, "time": 0.5}}, 400, "'track'"),
    ("post", "/next/{u}", {"json": {"track": 5}}, 400, "'time'"),
    ("post", "/next/{u}", {"data": '{"track": 5, "time": NaN}'}, 400, "'time'"),
    ("post", "/next/{u}", {"data": '{"track": 5, "time": Infinity}'}, 400, "'time'"),
    ("post", "/next/{u}", {"json": {"track": 5, "time": 1.5}}, 400, "'time'"),
    ("post", "/next/{u}", {"json": {"track": 5, "time": -0.1}}, 400, "'time'"),
    ("post", "/next/{u}", {"json": {"track": 5, "time": "0.5"}}, 400, "'time'"),
    ("post", "/next/{u}", {"json": {"track": 300, "time": 0.5}}, 404, "unknown track"),
    ("post", "/next/{u}", {"json": {"track": -1, "time": 0.5}}, 404, "unknown track"),
    ("post", "/next/-{u}", {"json": {"track": 5, "time": 0.5}}, 404, "not found"),
    ("post", "/next/x{u}", {"json": {"track": 5, "time": 0.5}}, 404, "not found"),
    ("post", "/next/{u}000000000000000000000", {"json": {"track": 5, "time": 0.5}}, 400, "user id"),
    ("post", "/next/{u}", {"json": {"track": 5, "time": 0.5, "pad": "x" * 10_000}}, 413, "too large"),
    ("get", "/next/{u}", {}, 405, "not allowed"),
    ("post", "/last/{u}", {"json": {"track": 5}}, 400, "'time'"),
    ("post", "/last/{u}", {"json": {"track": 999, "time": 0.1}}, 404, "unknown track"),
]


@pytest.mark.parametrize(
    ("case", "method", "path", "kwargs", "status", "reason"), [(i, *r) for i, r in enumerate(BAD_REQUESTS)]
)
def test_bad_input_gets_a_4xx_with_a_message_and_is_not_logged(service, case, method, path, kwargs, status, reason):
    user = 1000 + case
    answer = getattr(requests, method)(f"{service.url}{path.format(u=user)}", **kwargs)
    assert answer.status_code == status
    assert reason.lower() in answer.json()["message"].lower()
    marker = requests.post(f"{service.url}/last/{user}", json={"track": 0, "time": 0.0})
    assert marker.status_code == 200
    events = service.wait_for_events(user, 1)
    assert [event["message"] for event in events] == ["last"]  # only the marker: the bad request left no trace
