"""A tiny course-format catalog: 30 artists x 10 tracks, with item vectors that group by artist."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import requests

ARTISTS, TRACKS_PER_ARTIST = 30, 10


def artist_of(track: int) -> int:
    return track // TRACKS_PER_ARTIST


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("tiny-world")
    size = ARTISTS * TRACKS_PER_ARTIST
    with open(data / "tracks.json", "w", encoding="utf-8") as tracks:
        for track in range(size):
            tracks.write(json.dumps({"track": track, "artist": f"Artist {artist_of(track)}", "title": f"Song {track}"}))
            tracks.write("\n")
    (data / "top_tracks.json").write_text(json.dumps(list(range(size - 1, -1, -1))))
    return data


def write_world(path: Path, artists: list[str]) -> Path:
    """A world of `len(artists)` tracks, track i by artists[i]."""
    path.mkdir()
    rows = [{"track": track, "artist": artist, "title": f"Song {track}"} for track, artist in enumerate(artists)]
    (path / "tracks.json").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (path / "top_tracks.json").write_text(json.dumps(list(range(len(artists)))))
    return path


def write_recs(path: Path, lists: dict[int, list[int]], vectors: np.ndarray | None = None) -> Path:
    with open(path, "w", encoding="utf-8") as out:
        for user, tracks in lists.items():
            out.write(json.dumps({"user": user, "tracks": tracks}) + "\n")
    if vectors is not None:
        np.save(path.with_suffix(".npy"), vectors.astype(np.float32))
    return path


def artist_vectors(seed: int = 0) -> np.ndarray:
    """Item vectors where tracks of one artist point the same way (plus a little noise)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(ARTISTS, 8))
    tracks = np.arange(ARTISTS * TRACKS_PER_ARTIST)
    return centers[artist_of(tracks)] + 0.05 * rng.normal(size=(len(tracks), 8))


def post(url: str, body: dict) -> tuple[int, dict]:
    """A POST's status and JSON answer, not its `requests.Response`: one kept keeps its connection open, and a
    service stopped meanwhile (gunicorn's graceful stop) lingers 2 s for that kept-alive connection."""
    answer = requests.post(url, json=body, timeout=10)
    return answer.status_code, answer.json()
