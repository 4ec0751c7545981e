"""The remote agent: asks a botify service over HTTP, exactly as the course's simulator does.

``POST {url}/next/{user}`` with ``{"track": int, "time": float}`` for every step (the first one
carries the session's start track), ``POST {url}/last/{user}`` when the session ends.
It talks through urllib3's keep-alive connection pool, the layer under ``requests`` (which the
course's agent also used): a step costs one round trip and ~3x less client CPU than a
``requests.Session``, so the simulator is not what limits the service's measured throughput.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import urllib3
from urllib3.util.retry import Retry

from sim.agents import Agent
from sim.errors import AgentError

JSON_HEADERS = {"Content-Type": "application/json"}
# Retry only failed connects: a POST that reached the service is never sent twice.
CONNECT_RETRIES = Retry(total=3, connect=3, read=0, status=0, other=0, redirect=0, backoff_factor=0.2)


class RemoteAgent(Agent):
    def __init__(self, url: str, timeout: float = 10.0, pool_size: int = 2) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise AgentError(f"bad service URL {url!r}: expected http://HOST[:PORT]")
        self.url = url.rstrip("/")
        self.prefix = parts.path.rstrip("/")
        self.pool = urllib3.connection_from_url(
            url, maxsize=pool_size, block=False, timeout=urllib3.Timeout(timeout), retries=CONNECT_RETRIES
        )

    def _request(self, method: str, path: str, body: bytes | None = None) -> urllib3.BaseHTTPResponse:
        try:
            return self.pool.urlopen(method, f"{self.prefix}{path}", body=body, headers=JSON_HEADERS)
        except urllib3.exceptions.HTTPError as error:
            reason = getattr(error, "reason", None) or error
            raise AgentError(f"{method} {self.url}{path} failed: {type(reason).__name__}: {reason}") from None

    def _post(self, endpoint: str, user: int, track: int, time: float) -> dict:
        path = f"/{endpoint}/{user}"
        response = self._request("POST", path, json.dumps({"track": int(track), "time": float(time)}).encode())
        text = response.data.decode("utf-8", errors="replace")
        if response.status != 200:
            raise AgentError(f"POST {self.url}{path} answered HTTP {response.status}: {text.strip()[:200]}")
        try:
            answer = json.loads(text)
        except ValueError:
            raise AgentError(f"POST {self.url}{path} answered non-JSON: {text.strip()[:200]}") from None
        if not isinstance(answer, dict):
            raise AgentError(f"POST {self.url}{path} answered {answer!r}, expected a JSON object")
        return answer

    def check(self) -> None:
        """Fail early, with one line, when nothing answers at the URL."""
        try:
            response = self.pool.urlopen("GET", f"{self.prefix}/", retries=Retry(total=2, backoff_factor=0.2))
        except urllib3.exceptions.HTTPError:
            raise AgentError(f"cannot reach botify at {self.url}") from None
        if response.status != 200:
            raise AgentError(f"botify at {self.url} answered HTTP {response.status} to GET /")

    def recommend_next(self, user: int, prev_track: int, prev_track_time: float) -> int:
        answer = self._post("next", user, prev_track, prev_track_time)
        track = answer.get("track")
        if not isinstance(track, int) or isinstance(track, bool):
            raise AgentError(f"POST {self.url}/next/{user} answered {answer!r}, expected an int 'track'")
        return track

    def end(self, user: int, last_track: int, last_time: float) -> None:
        self._post("last", user, last_track, last_time)

    def close(self) -> None:
        self.pool.close()
