"""The remote agent: asks a botify service over HTTP, exactly as the course's simulator does.

``POST {url}/next/{user}`` with ``{"track": int, "time": float}`` for every step (the first one
carries the session's start track), ``POST {url}/last/{user}`` when the session ends; the body's
bytes are the course agent's (``json.dumps`` of that dict). One kept-alive connection per agent
(``sim.wire``): a step is one round trip at a client cost on par with wrk's.

A session never changes connection; after a session ends, a connection older than ``reconnect_after``
seconds is closed and the next session opens a new one. A server whose workers each accept on their own
socket (botify's gunicorn, SO_REUSEPORT) keeps a connection on the worker the kernel's hash chose, so a
handful of simulator processes holding theirs for a whole day could leave a worker idle; reconnecting now
and then spreads them again, at one handshake a second per process.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from sim.agents import Agent
from sim.errors import AgentError
from sim.wire import Connection, WireError

RECONNECT_AFTER = 1.0  # seconds a connection serves sessions before the next session opens a new one


def excerpt(text: str, limit: int = 200) -> str:
    """The start of a server's answer on one line (an HTML error page has many)."""
    return " ".join(text.split())[:limit]


class RemoteAgent(Agent):
    def __init__(self, url: str, timeout: float = 10.0, reconnect_after: float = RECONNECT_AFTER) -> None:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as error:  # a port out of range or not a number, a broken [IPv6] host
            raise AgentError(f"bad service URL {url!r}: {error}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise AgentError(f"bad service URL {url!r}: expected http://HOST[:PORT]")
        https = parts.scheme == "https"
        self.url = url.rstrip("/")
        self._prefix = parts.path.rstrip("/")
        port = port if port is not None else 443 if https else 80
        self._connection = Connection(parts.hostname, port, https, timeout)
        self.reconnect_after = reconnect_after

    def _request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, str]:
        try:
            status, content = self._connection.request(method, f"{self._prefix}{path}", body)
        except WireError as error:
            raise AgentError(f"{method} {self.url}{path} failed: {error}") from None
        return status, content.decode("utf-8", errors="replace")

    def _post(self, endpoint: str, user: int, track: int, time: float) -> dict:
        path = f"/{endpoint}/{user}"
        status, text = self._request("POST", path, json.dumps({"track": int(track), "time": float(time)}).encode())
        if status != 200:
            raise AgentError(f"POST {self.url}{path} answered HTTP {status}: {excerpt(text)}")
        try:
            answer = json.loads(text)
        except ValueError:
            raise AgentError(f"POST {self.url}{path} answered non-JSON: {excerpt(text)}") from None
        if not isinstance(answer, dict):
            raise AgentError(f"POST {self.url}{path} answered {answer!r}, expected a JSON object")
        return answer

    def check(self) -> None:
        """Fail early, with one line, when nothing (or not a service) answers at the URL."""
        try:
            status, _ = self._connection.request("GET", f"{self._prefix}/")
        except WireError as error:
            raise AgentError(f"cannot reach botify at {self.url} ({error})") from None
        if status != 200:
            raise AgentError(f"botify at {self.url} answered HTTP {status} to GET /")

    def recommend_next(self, user: int, prev_track: int, prev_track_time: float) -> int:
        answer = self._post("next", user, prev_track, prev_track_time)
        track = answer.get("track")
        if not isinstance(track, int) or isinstance(track, bool):
            raise AgentError(f"POST {self.url}/next/{user} answered {answer!r}, expected an int 'track'")
        return track

    def end(self, user: int, last_track: int, last_time: float) -> None:
        self._post("last", user, last_track, last_time)
        if self._connection.age() >= self.reconnect_after:
            self._connection.close()

    def close(self) -> None:
        self._connection.close()
