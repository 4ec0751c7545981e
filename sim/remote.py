"""The remote agent: asks a botify service over HTTP, exactly as the course's simulator does.

``POST {url}/next/{user}`` with ``{"track": int, "time": float}`` for every step (the first one
carries the session's start track), ``POST {url}/last/{user}`` when the session ends.

One kept-alive ``http.client`` connection per agent: a request is one ``send`` of headers and body
and one round trip. That costs ~1.7x less client CPU than urllib3's pool and ~4x less than a
``requests.Session`` (see bench/sim_remote.py), so the simulator is not what limits the service.
Like urllib3, a connection the server has closed is noticed before it is reused, and a request
that reached the service is never sent twice.
"""

from __future__ import annotations

import http.client
import json
import select
import time
from urllib.parse import urlsplit

from sim.agents import Agent
from sim.errors import AgentError

JSON_HEADERS = {"Content-Type": "application/json"}


class RemoteAgent(Agent):
    def __init__(self, url: str, timeout: float = 10.0, connect_attempts: int = 4) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise AgentError(f"bad service URL {url!r}: expected http://HOST[:PORT]")
        self.url = url.rstrip("/")
        self._prefix = parts.path.rstrip("/")
        self._address = (parts.hostname, parts.port)
        self._connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        self._timeout = timeout
        self._connect_attempts = connect_attempts
        self._connection: http.client.HTTPConnection | None = None
        self._poll: select.poll | None = None

    def _connect(self) -> http.client.HTTPConnection:
        """A new connection; a refused or failed connect is retried with backoff (nothing was sent yet)."""
        failures = 0
        while True:
            connection = self._connection_class(*self._address, timeout=self._timeout)
            try:
                connection.connect()
            except OSError as error:
                failures += 1
                if failures == self._connect_attempts:
                    raise AgentError(f"cannot reach botify at {self.url}: {error.strerror or error}") from None
                time.sleep(0.2 * 2 ** (failures - 1))
                continue
            self._poll = select.poll()
            self._poll.register(connection.sock, select.POLLIN)
            return connection

    def _usable(self) -> http.client.HTTPConnection:
        """The kept-alive connection, unless the server closed it while idle (readable before a request)."""
        if self._connection is not None and self._poll is not None and self._poll.poll(0):
            self.close()
        if self._connection is None:
            self._connection = self._connect()
        return self._connection

    def _request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, str]:
        connection = self._usable()
        try:
            connection.request(method, f"{self._prefix}{path}", body=body, headers=JSON_HEADERS)
            response = connection.getresponse()
            text = response.read().decode("utf-8", errors="replace")
        except (OSError, http.client.HTTPException) as error:
            self.close()
            raise AgentError(f"{method} {self.url}{path} failed: {type(error).__name__}: {error}") from None
        if response.will_close:
            self.close()
        return response.status, text

    def _post(self, endpoint: str, user: int, track: int, time: float) -> dict:
        path = f"/{endpoint}/{user}"
        status, text = self._request("POST", path, json.dumps({"track": int(track), "time": float(time)}).encode())
        if status != 200:
            raise AgentError(f"POST {self.url}{path} answered HTTP {status}: {text.strip()[:200]}")
        try:
            answer = json.loads(text)
        except ValueError:
            raise AgentError(f"POST {self.url}{path} answered non-JSON: {text.strip()[:200]}") from None
        if not isinstance(answer, dict):
            raise AgentError(f"POST {self.url}{path} answered {answer!r}, expected a JSON object")
        return answer

    def check(self) -> None:
        """Fail early, with one line, when nothing (or not a service) answers at the URL."""
        status, _ = self._request("GET", "/")
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

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
        self._connection = self._poll = None
