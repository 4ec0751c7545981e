"""Malformed requests, table-driven, sent byte for byte over a real socket to the service under gunicorn.

Every one must get a 4xx JSON answer with a message (never a 500), and none may reach the event log: those the
app answers, and those gunicorn answers itself (a request line or a header beyond its limits).
"""

from __future__ import annotations

import http.client
import json
import socket
from collections import Counter
from urllib.parse import urlsplit

import pytest

from botify.app import create_app
from botify.settings import Settings

from .conftest import TRACKS

VALID = {"track": 5, "time": 0.5}
# Nesting as deep as 4 KiB allows: deeper than the json parser goes up to Python 3.12 (~1,000 levels on 3.11,
# ~1,500 on 3.12), within it on 3.13 (~10,000). A body that is nothing but this nesting is no JSON object either way,
# so the answer is the same on every Python; the parser giving up is tested in-process below, at its own depth.
NESTED = "[" * 2000 + "]" * 2000


def parses(text: str) -> bool:
    """Whether this Python's json parses `text`, rather than giving up on its depth (RecursionError)."""
    try:
        json.loads(text)
    except RecursionError:
        return False
    return True


def body(**fields) -> bytes:
    return json.dumps({**VALID, **fields}).encode()


def raw(text: str) -> bytes:
    return text.encode()


# (name, method, path, body bytes, extra headers, expected status, words the message must contain)
CASES = [
    ("GET /next", "GET", "/next/1", b"", {}, 405, "method"),
    ("PUT /next", "PUT", "/next/1", body(), {}, 405, "method"),
    ("PATCH /next", "PATCH", "/next/1", body(), {}, 405, "method"),
    ("DELETE /last", "DELETE", "/last/1", b"", {}, 405, "method"),
    ("POST /track", "POST", "/track/5", body(), {}, 405, "method"),
    ("POST /health", "POST", "/health", body(), {}, 405, "method"),
    ("user not a number", "POST", "/next/abc", body(), {}, 404, "user id is a whole number from 0 to"),
    ("negative user", "POST", "/next/-5", body(), {}, 404, "user id is a whole number from 0 to"),
    ("fractional user", "POST", "/last/1.5", body(), {}, 404, "user id is a whole number from 0 to"),
    ("no user", "POST", "/next/", body(), {}, 404, "user id is a whole number"),
    ("user beyond 64 bits", "POST", "/next/" + "9" * 30, body(), {}, 400, "user id"),
    ("user one past the largest 64-bit id", "POST", f"/next/{2**63}", body(), {}, 400, "user id"),
    ("user id longer than a request line", "POST", "/next/" + "9" * 5000, body(), {}, 414, "uri too long"),
    ("header beyond the size limit", "POST", "/next/1", body(), {"X-Pad": "x" * 9000}, 431, "header fields too large"),
    ("unicode user", "POST", "/next/%E2%99%AB", body(), {}, 404, "not found"),
    ("user in Arabic-Indic digits", "POST", "/next/%D9%A1%D9%A2", body(), {}, 404, "not found"),
    ("track in fullwidth digits", "GET", "/track/%EF%BC%95", b"", {}, 404, "track id is a whole number"),
    ("unknown route", "POST", "/admin/reload", body(), {}, 404, "not found"),
    ("Flask's static route, GET", "GET", "/static/x", b"", {}, 404, "not found"),
    ("Flask's static route, POST", "POST", "/static/x", body(), {}, 404, "not found"),
    ("doubled slash, another Host", "POST", "/next//1", body(), {"Host": "evil.example"}, 404, "not found"),
    ("doubled slash, a refused method", "DELETE", "/next//1", b"", {}, 404, "not found"),
    ("Host label over 63 characters", "GET", "/health", b"", {"Host": "a" * 64}, 400, "host header"),
    ("empty Host label", "POST", "/next/1", body(), {"Host": "a..b"}, 400, "host header"),
    ("unknown track metadata", "GET", f"/track/{TRACKS}", b"", {}, 404, "unknown track"),
    ("empty body", "POST", "/next/1", b"", {}, 400, "json object"),
    ("not JSON", "POST", "/next/1", raw("track=5&time=0.5"), {}, 400, "json object"),
    ("truncated JSON", "POST", "/next/1", raw('{"track": 5, "time": 0.5'), {}, 400, "json object"),
    ("JSON list", "POST", "/next/1", raw("[5, 0.5]"), {}, 400, "json object"),
    ("JSON null", "POST", "/next/1", raw("null"), {}, 400, "json object"),
    ("JSON string", "POST", "/next/1", raw('"5"'), {}, 400, "json object"),
    ("invalid UTF-8", "POST", "/next/1", b'{"track": 5, "time": 0.5, "x": "\xff\xfe"}', {}, 400, "json object"),
    ("nesting 2,000 levels deep", "POST", "/next/1", raw(NESTED), {}, 400, "json object"),
    ("missing track", "POST", "/next/1", raw('{"time": 0.5}'), {}, 400, "'track'"),
    ("track as string", "POST", "/next/1", body(track="5"), {}, 400, "'track'"),
    ("track as float", "POST", "/next/1", body(track=5.0), {}, 400, "'track'"),
    ("track as bool", "POST", "/next/1", body(track=True), {}, 400, "'track'"),
    ("track null", "POST", "/next/1", body(track=None), {}, 400, "'track'"),
    ("track as list", "POST", "/next/1", body(track=[5]), {}, 400, "'track'"),
    ("track unicode digit", "POST", "/next/1", body(track="\u0665"), {}, 400, "'track'"),
    ("key in Cyrillic", "POST", "/next/1", raw('{"tr\u0430ck": 5, "time": 0.5}'), {}, 400, "'track'"),
    ("unknown track", "POST", "/next/1", body(track=TRACKS), {}, 404, "unknown track"),
    ("negative track", "POST", "/next/1", body(track=-1), {}, 404, "unknown track"),
    ("huge track", "POST", "/next/1", body(track=10**30), {}, 404, "unknown track"),
    ("5000-digit track", "POST", "/next/1", raw('{"track": ' + "7" * 5000 + ', "time": 0.5}'), {}, 413, "too large"),
    (
        "4000-digit track",
        "POST",
        "/next/1",
        raw('{"track": ' + "7" * 4000 + ', "time": 0.5}'),
        {},
        404,
        "unknown track",
    ),
    ("4400-digit track", "POST", "/next/1", raw('{"track": ' + "7" * 4400 + ', "time": 0'), {}, 413, "too large"),
    ("missing time", "POST", "/next/1", raw('{"track": 5}'), {}, 400, "'time'"),
    ("time as string", "POST", "/next/1", body(time="0.5"), {}, 400, "'time'"),
    ("time as bool", "POST", "/next/1", body(time=True), {}, 400, "'time'"),
    ("time null", "POST", "/next/1", body(time=None), {}, 400, "'time'"),
    ("time NaN", "POST", "/next/1", raw('{"track": 5, "time": NaN}'), {}, 400, "'time'"),
    ("time Infinity", "POST", "/next/1", raw('{"track": 5, "time": Infinity}'), {}, 400, "'time'"),
    ("time -Infinity", "POST", "/next/1", raw('{"track": 5, "time": -Infinity}'), {}, 400, "'time'"),
    ("time overflowing to inf", "POST", "/next/1", raw('{"track": 5, "time": 1e999}'), {}, 400, "'time'"),
    ("time a 400-digit integer", "POST", "/next/1", raw('{"track": 5, "time": 1' + "0" * 400 + "}"), {}, 400, "'time'"),
    ("huge int time on /last", "POST", "/last/1", raw('{"track": 5, "time": ' + "9" * 400 + "}"), {}, 400, "'time'"),
    ("time above 1", "POST", "/next/1", body(time=1.0000001), {}, 400, "'time'"),
    ("time below 0", "POST", "/next/1", body(time=-0.01), {}, 400, "'time'"),
    ("oversized body", "POST", "/next/1", body(pad="x" * 5000), {}, 413, "too large"),
    ("oversized chunked body", "POST", "/next/1", body(pad="x" * 5000), {"Transfer-Encoding": "chunked"}, 413, "large"),
    ("bad JSON on /last", "POST", "/last/1", raw("{"), {}, 400, "json object"),
    ("unknown track on /last", "POST", "/last/1", body(track=TRACKS), {}, 404, "unknown track"),
]


@pytest.fixture(scope="module")
def service(start_module_botify, small_world):
    return start_module_botify(small_world.data_dir, small_world.recs)


def send(url: str, method: str, path: str, payload: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        if headers.get("Transfer-Encoding") == "chunked":
            connection.putrequest(method, path)
            for name, value in headers.items():
                connection.putheader(name, value)
            connection.endheaders()
            for start in range(0, len(payload), 1000):
                chunk = payload[start : start + 1000]
                connection.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            connection.send(b"0\r\n\r\n")
        else:
            connection.request(method, path, payload, {"Content-Type": "application/json", **headers})
        answer = connection.getresponse()
        text = answer.read()
        try:
            return answer.status, json.loads(text)
        except ValueError:
            return answer.status, {"not JSON": text[:200].decode("latin-1")}
    finally:
        connection.close()


def test_the_table_is_large_enough():
    assert len(CASES) >= 30 and len({case[0] for case in CASES}) == len(CASES)


@pytest.mark.parametrize(
    ("method", "path", "payload", "headers", "status", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_malformed_request_gets_a_4xx_with_a_message(service, method, path, payload, headers, status, words):
    answer_status, answer = send(service.url, method, path, payload, headers)
    assert (answer_status, words in str(answer.get("message", "")).lower()) == (status, True), answer


LISTEN = b'{"track": 5, "time": 0.5}'


def chunked_listen(size: bytes = b"%x" % len(LISTEN), terminator: bytes = b"\r\n", last: bytes = b"0\r\n\r\n") -> bytes:
    head = b"POST /next/1 HTTP/1.1\r\nHost: botify\r\nTransfer-Encoding: chunked\r\n\r\n"
    return head + size + b"\r\n" + LISTEN + terminator + last


# Chunked framing gunicorn refuses only when the app reads the body (name, request bytes, status, words): sent byte
# for byte, as no HTTP client library would frame them.
RAW_CASES = [
    ("chunk size not hex", chunked_listen(size=b"zz"), 400, "invalid chunk size"),
    ("negative chunk size", chunked_listen(size=b"-1a"), 400, "invalid chunk size"),
    ("chunk without its CRLF", chunked_listen(terminator=b"XX"), 400, "chunk terminator"),
    ("control byte in a chunk extension", chunked_listen(size=b"%x;x=\x01" % len(LISTEN)), 400, "chunk extension"),
    ("malformed trailer", chunked_listen(last=b"0\r\nnot a header\r\n\r\n"), 400, "not a header"),
]


def send_raw(url: str, request: bytes) -> tuple[int, dict]:
    """The first answer to `request`, sent as it is (gunicorn may answer the rest of the bytes again, then close)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(request)
        answer = http.client.HTTPResponse(sock)
        answer.begin()
        text = answer.read()
    try:
        return answer.status, json.loads(text)
    except ValueError:
        return answer.status, {"not JSON": text[:200].decode("latin-1")}


@pytest.mark.parametrize(
    ("request_bytes", "status", "words"), [c[1:] for c in RAW_CASES], ids=[c[0] for c in RAW_CASES]
)
def test_a_chunked_body_that_cannot_be_read_gets_a_400_with_a_message(service, request_bytes, status, words):
    """Those were 500s with a traceback in the service's log (sometimes an HTML page): gunicorn's parser raised
    its own exceptions out of `request.get_data()`."""
    answer_status, answer = send_raw(service.url, request_bytes)
    assert (answer_status, words in str(answer.get("message", "")).lower()) == (status, True), answer


def test_no_malformed_request_is_logged_as_a_listen(service):
    """Every malformed request of both tables again, then a control listen, which proves logging works: it is the
    only line they add to the log (whatever other tests logged before)."""
    before = Counter(json.dumps(event, sort_keys=True) for event in service.events())
    for _, method, path, payload, headers, status, _ in CASES:
        assert send(service.url, method, path, payload, headers)[0] == status
    for _, request_bytes, status, _ in RAW_CASES:
        assert send_raw(service.url, request_bytes)[0] == status
    assert send(service.url, "POST", "/last/777", body(), {}) == (200, {"user": 777})
    [control] = service.wait_for_events(777, 1)
    added = Counter(json.dumps(event, sort_keys=True) for event in service.events()) - before
    assert list(added) == [json.dumps(control, sort_keys=True)] and control["message"] == "last"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_of_exactly_the_limit_is_accepted_and_one_byte_more_is_not(service, chunked):
    limit = Settings().max_body_bytes
    listen = body(pad="")
    exact = listen[:-2] + b"x" * (limit - len(listen)) + b'"}'
    headers = {"Transfer-Encoding": "chunked"} if chunked else {}
    assert len(exact) == limit
    assert send(service.url, "POST", "/last/778", exact, headers) == (200, {"user": 778})
    assert send(service.url, "POST", "/last/778", exact[:-2] + b'x"}', headers)[0] == 413


def test_nesting_deeper_than_the_parser_goes_gets_a_400_not_a_500(redis_server, tmp_path):
    """In-process, with the body limit raised above the first depth this Python's json gives up at."""
    depth = 1000
    while parses("[" * depth + "]" * depth):
        depth *= 2
    payload = f'{{"track": 5, "time": 0.5, "x": {"[" * depth + "]" * depth}}}'.encode()
    settings = Settings(redis_url=redis_server.url, log_dir=tmp_path / "log", max_body_bytes=len(payload))
    answer = create_app(settings).test_client().post("/next/1", data=payload, content_type="application/json")
    assert (answer.status_code, "JSON object" in answer.json["message"]) == (400, True)
    assert [path.read_bytes() for path in (tmp_path / "log").iterdir()] == [b""]
