"""A small world for the reliability tests: 300 tracks by 30 artists, LightFM-shaped lists for 400 users.

The lists hold only tracks 100..299 and the top tracks are 0..99, whose item vectors are zero (the
others point into one orthant): with Redis up, LightFM's arm answers from the list or the context's
nearest tracks, never a top track; through a Redis outage it answers popular tracks held in process,
always a top track. So an answer tells which path served it.
"""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest

TRACKS, ARTISTS, USERS, CANDIDATES = 300, 30, 400, 50
TOP = set(range(100))


@dataclass(frozen=True)
class SmallWorld:
    data_dir: Path
    recs: dict[str, Path]
    lists: dict[int, list[int]]


@pytest.fixture(scope="session")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> SmallWorld:
    rng = np.random.default_rng(6)
    data = tmp_path_factory.mktemp("deploy-world")
    with open(data / "tracks.json", "w", encoding="utf-8") as tracks:
        for track in range(TRACKS):
            tracks.write(json.dumps({"track": track, "artist": f"Artist {track % ARTISTS}", "title": f"Song {track}"}))
            tracks.write("\n")
    (data / "top_tracks.json").write_text(json.dumps(sorted(TOP)))
    lists = {user: rng.choice(np.arange(100, TRACKS), size=CANDIDATES, replace=False).tolist() for user in range(USERS)}
    recs = data / "lightfm.jsonl"
    recs.write_text("".join(json.dumps({"user": user, "tracks": tracks}) + "\n" for user, tracks in lists.items()))
    vectors = 0.1 + rng.random(size=(TRACKS, 8))
    vectors[sorted(TOP)] = 0.0
    np.save(recs.with_suffix(".npy"), vectors.astype(np.float32))
    return SmallWorld(data, {"lightfm": recs}, lists)


@dataclass
class Client:
    """One keep-alive connection (as the simulator keeps them), reopened after a failure.

    Every connection's life is an `epoch`: requests on one epoch were all served by the same gunicorn
    worker, which lets a test tell whose event-log lines a response should have produced.
    """

    url: str
    timeout: float = 5.0
    epoch: int = 0
    connection: http.client.HTTPConnection | None = field(default=None, repr=False)

    def post(self, path: str, body: dict) -> tuple[int, dict]:
        """(status, JSON answer); status 0 when the connection failed (a new one is opened next time)."""
        if self.connection is None:
            parts = urlsplit(self.url)
            self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=self.timeout)
        try:
            self.connection.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
            answer = self.connection.getresponse()
            return answer.status, json.loads(answer.read() or b"{}")
        except (OSError, http.client.HTTPException):
            self.close()
            return 0, {}

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None
            self.epoch += 1
