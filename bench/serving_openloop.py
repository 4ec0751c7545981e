"""A fixed-rate (open-loop) HTTP load generator that measures latency from the scheduled send time.

Closed-loop generators (wrk, a thread per connection) send the next request only after the previous
answer, so a server that stalls simply gets fewer requests and its slow periods barely show in the
percentiles (coordinated omission). Here request i is due at `start + i / rate` whatever happened
before; keep-alive connections take the due requests in order, and a request's latency runs from its
due time to its answer, so time spent waiting behind a stall counts, as wrk2 does.

The loop uses `select()` (microsecond timeouts) rather than epoll (millisecond ones), so requests go out
on time; how late they went anyway is reported as `send_lag` so the generator's own share is visible.
"""

from __future__ import annotations

import asyncio
import selectors
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import numpy as np

REQUEST_TIMEOUT = 5.0  # seconds without an answer: counted as a failed request, the connection is dropped
Request = Callable[[int], bytes]  # slot number -> the raw HTTP/1.1 request to send


@dataclass
class RateResult:
    rate: float  # requests per second asked for
    duration: float  # seconds of scheduled sends
    connections: int
    elapsed: float = 0.0  # seconds from the first due time to the last answer (longer than `duration` if behind)
    statuses: dict[int, int] = field(default_factory=dict)
    failures: int = 0  # requests without an HTTP answer (connection refused, reset, closed)
    latency: list[float] = field(default_factory=list)  # seconds, due time -> answer read
    send_lag: list[float] = field(default_factory=list)  # seconds, due time -> actually sent

    @property
    def answered(self) -> int:
        return sum(self.statuses.values())

    @property
    def errors(self) -> int:
        return self.failures + sum(n for status, n in self.statuses.items() if status >= 400)

    def summary(self) -> dict:
        latency_ms = np.asarray(self.latency) * 1e3
        lag_ms = np.asarray(self.send_lag) * 1e3
        percentiles = (
            {f"p{q:g}": float(np.percentile(latency_ms, q)) for q in (50, 90, 99, 99.9)} if len(latency_ms) else {}
        )
        return {
            "rate_asked": self.rate,
            "rate_achieved": self.answered / max(self.duration, self.elapsed),  # a run that fell behind took longer
            "elapsed_s": self.elapsed,
            "connections": self.connections,
            "requests": self.answered,
            "errors": self.errors,
            "statuses": {str(status): n for status, n in sorted(self.statuses.items())},
            "latency_ms": {**percentiles, "max": float(latency_ms.max()) if len(latency_ms) else None},
            "send_lag_ms": {"p50": float(np.percentile(lag_ms, 50)), "p99": float(np.percentile(lag_ms, 99))}
            if len(lag_ms)
            else {},
        }


def post_request(host: str, path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


async def read_status(reader: asyncio.StreamReader) -> int:
    """Read one HTTP/1.1 response with a Content-Length body; return its status code."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


class Schedule:
    """Hands out due slots in order until the scheduled duration is over."""

    def __init__(self, rate: float, duration: float, start: float) -> None:
        self.rate, self.start, self.end = rate, start, start + duration
        self.next_slot = 0

    def take(self) -> tuple[int, float] | None:
        due = self.start + self.next_slot / self.rate
        if due >= self.end:
            return None
        self.next_slot += 1
        return self.next_slot - 1, due


async def open_connection(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(host, port)
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return reader, writer


async def connection(host: str, port: int, schedule: Schedule, request: Request, result: RateResult) -> None:
    """One keep-alive connection taking due slots. It connects before the first one is due (in the schedule's head
    start), so no request's latency holds a TCP handshake but after a failure's reconnect. A request that times out
    is a failure and keeps its latency so far (a lower bound) in the percentiles; one refused or reset has none."""
    loop = asyncio.get_running_loop()
    try:
        reader, writer = await open_connection(host, port)
    except OSError:
        reader = writer = None
    while (slot := schedule.take()) is not None:
        number, due = slot
        if due > loop.time():
            await asyncio.sleep(due - loop.time())
        try:
            if writer is None:
                reader, writer = await open_connection(host, port)
            result.send_lag.append(loop.time() - due)
            writer.write(request(number))
            async with asyncio.timeout(REQUEST_TIMEOUT):
                status = await read_status(reader)
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as error:  # TimeoutError: an OSError
            result.failures += 1
            if isinstance(error, TimeoutError):
                result.latency.append(loop.time() - due)
            if writer is not None:
                writer.close()
            reader = writer = None
            continue
        result.latency.append(loop.time() - due)
        result.statuses[status] = result.statuses.get(status, 0) + 1
    if writer is not None:
        writer.close()


async def drive(url: str, rate: float, duration: float, connections: int, request: Request) -> RateResult:
    parts = urlsplit(url)
    result = RateResult(rate, duration, connections)
    schedule = Schedule(rate, duration, asyncio.get_running_loop().time() + 0.2)  # time to connect first
    tasks = [connection(parts.hostname, parts.port, schedule, request, result) for _ in range(connections)]
    await asyncio.gather(*tasks)
    result.elapsed = asyncio.get_running_loop().time() - schedule.start
    return result


def run_fixed_rate(url: str, rate: float, duration: float, connections: int, request: Request) -> RateResult:
    """Send `rate` requests/s for `duration` s over `connections` keep-alive connections."""
    loop = asyncio.SelectorEventLoop(selectors.SelectSelector())
    try:
        return loop.run_until_complete(drive(url, rate, duration, connections, request))
    finally:
        loop.close()
