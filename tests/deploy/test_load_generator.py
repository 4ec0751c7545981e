"""The serving benchmark's fixed-rate generator (bench/serving_openloop.py) sees what it must see.

Against tiny raw-socket HTTP servers on loopback: a server whose small writes Nagle's algorithm holds
back on a keep-alive connection must show its stalls, and one pause of the server must count for every
request that was due during it (no coordinated omission), not for the one request that met it.
"""

from __future__ import annotations

import importlib.util
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "serving_openloop.py"
BODY = b'{"user": 1, "track": 2}'


@pytest.fixture(scope="module")
def openloop():
    spec = importlib.util.spec_from_file_location("serving_openloop", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


@contextmanager
def server(nodelay: bool, pause_at: int | None = None, pause: float = 0.0, each: float = 0.0) -> Iterator[str]:
    """Answers every request with headers and body as two writes (as gunicorn does), `each` seconds after it came;
    may pause once more."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    answered = 0

    def handle(connection: socket.socket) -> None:
        nonlocal answered
        if nodelay:
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pending = b""
        with connection:
            while data := connection.recv(65536):
                pending += data
                while b"\r\n\r\n" in pending:
                    head, _, rest = pending.partition(b"\r\n\r\n")
                    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                    if len(rest) < length:
                        break
                    pending = rest[length:]
                    answered += 1
                    if answered == pause_at:
                        time.sleep(pause)
                    time.sleep(each)
                    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(BODY))
                    connection.sendall(BODY)

    def accept() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(connection,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()


def drive(openloop, url: str, rate: float, seconds: float, connections: int):
    host = url.removeprefix("http://")
    return openloop.run_fixed_rate(
        url, rate, seconds, connections, lambda n: openloop.post_request(host, "/next/1", BODY)
    )


def test_small_writes_held_back_by_nagle_show_up(openloop):
    # A request every 20 ms per connection: the client sends within the delayed-ACK timeout (40 ms) of its last
    # answer, so Linux keeps delaying its ACKs, and Nagle's algorithm holds each answer's body back until the ACK
    # comes. (One every 40 ms, right at the timeout, let the kernel fall back to quick ACKs in some runs.)
    with server(nodelay=False) as stalling, server(nodelay=True) as prompt:
        held = drive(openloop, stalling, rate=100, seconds=2, connections=2).summary()
        sent = drive(openloop, prompt, rate=100, seconds=2, connections=2).summary()
    assert held["errors"] == sent["errors"] == 0 and held["requests"] == sent["requests"] == 200
    assert held["latency_ms"]["p50"] > 30  # ~40 ms of stall per answer, and the requests queued behind them
    assert sent["latency_ms"]["p50"] < 10


def test_a_pause_counts_for_every_request_due_during_it(openloop):
    with server(nodelay=True, pause_at=100, pause=0.3) as pausing:
        result = drive(openloop, pausing, rate=200, seconds=2, connections=1)
    latency = np.asarray(result.latency)
    assert result.errors == 0 and len(latency) == 400
    assert (latency > 0.1).sum() >= 30  # ~40 requests were due within the pause's first 200 ms
    assert latency.max() > 0.28


def test_a_server_that_falls_behind_the_rate_shows_its_own_rate(openloop):
    """Every slot due is still sent, so a lagging run only takes longer: its rate divided the answers by the
    scheduled second and always came out as the rate asked for."""
    with server(nodelay=True, each=0.02) as slow:  # at most 50 answers a second on one connection
        summary = drive(openloop, slow, rate=200, seconds=1, connections=1).summary()
    assert summary["requests"] == 200 and summary["errors"] == 0
    assert summary["elapsed_s"] > 3.5 and 40 < summary["rate_achieved"] < 55
    assert summary["latency_ms"]["p99"] > 3000  # the last request waited behind all the others
