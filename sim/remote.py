"""The remote agent: asks a botify service over HTTP, exactly as the course's simulator does.

``POST {url}/next/{user}`` with ``{"track": int, "time": float}`` for every step (the first one
carries the session's start track), ``POST {url}/last/{user}`` when the session ends.
A ``requests.Session`` keeps the connections alive, so a step costs one round trip.
"""

from __future__ import annotations

import json

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from sim.agents import Agent
from sim.errors import AgentError

JSON_HEADERS = {"Content-Type": "application/json"}


class RemoteAgent(Agent):
    def __init__(self, url: str, timeout: float = 10.0, pool_size: int = 4) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.http = requests.Session()
        # Retry only failed connects: a POST that reached the service is never sent twice.
        retry = Retry(total=3, connect=3, read=0, status=0, other=0, backoff_factor=0.2)
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=retry)
        self.http.mount("http://", adapter)
        self.http.mount("https://", adapter)

    def _post(self, endpoint: str, user: int, track: int, time: float) -> dict:
        url = f"{self.url}/{endpoint}/{user}"
        body = json.dumps({"track": int(track), "time": float(time)})
        try:
            response = self.http.post(url, data=body, headers=JSON_HEADERS, timeout=self.timeout)
        except requests.RequestException as error:
            raise AgentError(f"POST {url} failed: {type(error).__name__}: {error}") from None
        if response.status_code != 200:
            raise AgentError(f"POST {url} answered HTTP {response.status_code}: {response.text.strip()[:200]}")
        try:
            answer = response.json()
        except ValueError:
            raise AgentError(f"POST {url} answered non-JSON: {response.text.strip()[:200]}") from None
        if not isinstance(answer, dict):
            raise AgentError(f"POST {url} answered {answer!r}, expected a JSON object")
        return answer

    def check(self) -> None:
        """Fail early, with one line, when nothing answers at the URL."""
        try:
            response = self.http.get(f"{self.url}/", timeout=self.timeout)
        except requests.RequestException as error:
            raise AgentError(f"cannot reach botify at {self.url}: {type(error).__name__}") from None
        if response.status_code != 200:
            raise AgentError(f"botify at {self.url} answered HTTP {response.status_code} to GET /")

    def recommend_next(self, user: int, prev_track: int, prev_track_time: float) -> int:
        answer = self._post("next", user, prev_track, prev_track_time)
        track = answer.get("track")
        if not isinstance(track, int) or isinstance(track, bool):
            raise AgentError(f"POST {self.url}/next/{user} answered {answer!r}, expected an int 'track'")
        return track

    def end(self, user: int, last_track: int, last_time: float) -> None:
        self._post("last", user, last_track, last_time)

    def close(self) -> None:
        self.http.close()
