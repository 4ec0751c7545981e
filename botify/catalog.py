"""The catalog as the service needs it in memory: track -> artist, artist -> tracks, top tracks."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class DataError(ValueError):
    """A data file does not say what the service needs; the message says what and where."""


@dataclass(frozen=True)
class Catalog:
    """Track ids are 0..size-1; artists are numbered in order of first appearance."""

    artist_of: np.ndarray  # int32 [size]: artist index of each track
    artist_tracks: np.ndarray  # int32 [size]: track ids grouped by artist
    artist_offsets: np.ndarray  # int64 [artists + 1]: artist a's tracks are artist_tracks[off[a]:off[a+1]]
    top_tracks: np.ndarray  # int32: most popular first

    @classmethod
    def build(cls, artist_of: np.ndarray, top_tracks: np.ndarray) -> Catalog:
        artist_of = np.asarray(artist_of, dtype=np.int32)
        order = np.argsort(artist_of, kind="stable").astype(np.int32)
        counts = np.bincount(artist_of, minlength=int(artist_of.max(initial=-1)) + 1)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return cls(artist_of, order, offsets, np.asarray(top_tracks, dtype=np.int32))

    @property
    def size(self) -> int:
        return len(self.artist_of)

    def __contains__(self, track: int) -> bool:
        return 0 <= track < self.size

    def tracks_of_artist(self, artist: int) -> np.ndarray:
        return self.artist_tracks[self.artist_offsets[artist] : self.artist_offsets[artist + 1]]

    def same_artist_tracks(self, track: int) -> np.ndarray:
        return self.tracks_of_artist(int(self.artist_of[track]))


def read_json_lines(path: Path) -> list[dict]:
    """Objects of a JSON-lines file (blank lines passed over); a bad line is a DataError naming the file and line."""
    records = []
    with open(path, "rb") as lines:  # bytes: json.loads decodes them, so bad UTF-8 is a bad line like any other
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except (ValueError, RecursionError) as error:
                reason = error.msg if isinstance(error, json.JSONDecodeError) else "not UTF-8 text or nested too deep"
                raise DataError(f"{path}:{number}: not JSON ({reason})") from None
            if not isinstance(record, dict):
                raise DataError(f"{path}:{number}: expected a JSON object")
            records.append(record)
    return records


def read_catalog_records(path: Path, required: tuple[str, ...] = ()) -> list[dict]:
    """tracks.json (course format) in track order: every record has an integer `track`, the ids are exactly
    0..N-1 (each once), and each has the `required` fields. A DataError names what is wrong."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    tracks = read_json_lines(path)
    if not tracks:
        raise DataError(f"{path}: no tracks")
    by_id: dict[int, dict] = {}
    for track in tracks:
        track_id = track.get("track")
        if type(track_id) is not int or any(name not in track for name in required):
            needs = ", ".join(["an integer 'track'", *(f"{name!r}" for name in required)])
            raise DataError(f"{path}: every track needs {needs}: {str(track):.200}")
        by_id[track_id] = track
    if sorted(by_id) != list(range(len(tracks))):
        raise DataError(f"{path}: track ids must be exactly 0..{len(tracks) - 1}, each once")
    return [by_id[i] for i in range(len(tracks))]


def read_tracks(path: Path) -> list[dict]:
    """What the service needs of tracks.json: ids 0..N-1 and an artist and a title for each."""
    return read_catalog_records(path, ("artist", "title"))


def read_top_tracks(path: Path, size: int) -> list[int]:
    """top_tracks.json: a JSON list of known track ids, most popular first."""
    if not path.exists():
        raise DataError(f"{path}: no such file")
    try:
        top = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: not JSON ({error.msg})") from None
    if not isinstance(top, list) or not top or not all(type(t) is int and 0 <= t < size for t in top):
        raise DataError(f"{path}: expected a non-empty list of track ids in 0..{size - 1}")
    return top


def artist_indices(tracks: list[dict]) -> np.ndarray:
    """Artist index per track, artists numbered by first appearance."""
    numbering: dict[str, int] = {}
    return np.array([numbering.setdefault(str(t["artist"]), len(numbering)) for t in tracks], dtype=np.int32)
