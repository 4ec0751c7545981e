"""The course's data files as the service reads them (JSON lines, tracks.json, top_tracks.json), checked:
a file that does not say what the service needs is a DataError naming the file, the line and what is wrong.

A catalog's fingerprint names its identity (track ids with their artists, in order: what a recommendation set's
lists and item vectors depend on); `NAME.catalog.json` beside a set records the fingerprint of the world it was
trained on, `{"catalog": "<fingerprint>"}`.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import orjson


class DataError(ValueError):
    """A data file does not say what the service needs; the message says what and where."""


SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")  # `\ud800`..`\udfff`: half of a pair, or a lone one


def require_file(path: Path) -> None:
    """DataError unless `path` is a file: "no such file", or "a folder, not a file"."""
    if not path.is_file():
        raise DataError(f"{path}: {'a folder, not a file' if path.is_dir() else 'no such file'}")


def parse_json(raw: bytes, where: str) -> object:
    """JSON from bytes (decoded by json, so text that is not UTF-8 is bad JSON like any other); a DataError
    naming `where` (a file, or a file and line) if it is not JSON, or holds a string that is no Unicode text (a
    lone surrogate escape, which json accepts and nothing can encode: Redis, a fingerprint, an answer)."""
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as error:
        reason = error.msg if isinstance(error, json.JSONDecodeError) else "not UTF-8 text or nested too deep"
        raise DataError(f"{where}: not JSON ({reason})") from None
    if SURROGATE_ESCAPE.search(raw):
        try:
            json.dumps(value, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            raise DataError(f"{where}: not JSON (a \\u escape of half a surrogate pair, alone)") from None
    return value


def read_json_lines(path: Path) -> list[dict]:
    """Objects of a JSON-lines file (blank lines passed over); a bad line is a DataError naming the file and line."""
    records = []
    with open(path, "rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            record = parse_json(line, f"{path}:{number}")
            if not isinstance(record, dict):
                raise DataError(f"{path}:{number}: expected a JSON object")
            records.append(record)
    return records


def read_catalog_records(path: Path, required: tuple[str, ...] = ()) -> list[dict]:
    """tracks.json (course format) in track order: every record has an integer `track`, the ids are exactly
    0..N-1 (each once), and each has the `required` fields. A DataError names what is wrong."""
    require_file(path)
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


def catalog_fingerprint(tracks: list[dict]) -> str:
    """16 hex digits of the SHA-256 of `[[track, artist], ...]` in track order as compact JSON (UTF-8, keys sorted,
    a missing artist as null): equal for two worlds only if every track id has the same artist."""
    identity = [[track["track"], track.get("artist")] for track in tracks]
    text = json.dumps(identity, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def fingerprint_path(recs_file: Path) -> Path:
    """Where a set records its world's fingerprint: `lightfm.jsonl` -> `lightfm.catalog.json`."""
    return recs_file.with_suffix(".catalog.json")


def fingerprint_json(fingerprint: str) -> str:
    """The text of a `NAME.catalog.json`."""
    return json.dumps({"catalog": fingerprint}) + "\n"


def read_fingerprint(recs_file: Path) -> str | None:
    """The fingerprint recorded beside a set; None when it has no `NAME.catalog.json` (hand-made or older files)."""
    path = fingerprint_path(recs_file)
    if not path.exists():
        return None
    recorded = parse_json(path.read_bytes(), str(path))
    if not isinstance(recorded, dict) or not isinstance(recorded.get("catalog"), str):
        raise DataError(f'{path}: expected {{"catalog": "<fingerprint>"}}')
    return recorded["catalog"]


def read_tracks(path: Path) -> list[dict]:
    """What the service needs of tracks.json: ids 0..N-1, an artist and a title for each, and metadata `/track` can
    answer in JSON (orjson, which the service answers with, takes no integer beyond 64 bits nor nesting deeper than
    255: such a track, loaded, got a 500 from /track)."""
    tracks = read_catalog_records(path, ("artist", "title"))
    for track in tracks:
        try:
            orjson.dumps(track)
        except TypeError as error:
            raise DataError(f"{path}: track {track['track']} cannot be answered by /track in JSON: {error}") from None
    return tracks


def read_top_tracks(path: Path, size: int) -> list[int]:
    """top_tracks.json: a JSON list of known track ids, most popular first."""
    require_file(path)
    top = parse_json(path.read_bytes(), str(path))
    if not isinstance(top, list) or not top or not all(type(t) is int and 0 <= t < size for t in top):
        raise DataError(f"{path}: expected a non-empty list of track ids in 0..{size - 1}")
    return top
