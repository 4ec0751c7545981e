"""The world as the course's data files hold it: tracks.json, tracks.npy, users.json, top_tracks.json.

Reading accepts the course's own files unchanged (only ``track`` and ``artist`` are needed in
tracks.json); writing produces the same formats, byte-identical for identical inputs.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.atomic import atomic_files
from sim.errors import DataError
from sim.listener import DEFAULT_ARTIST_DISCOUNT_GAMMA, DEFAULT_SESSION_BUDGET, Listener

TRACKS_FILE = "tracks.json"
EMBEDDINGS_FILE = "tracks.npy"
USERS_FILE = "users.json"
TOP_TRACKS_FILE = "top_tracks.json"
MAX_USER_ID = 2**63 - 1  # the service's limit: its event log's readers hold ids as int64


@dataclass(frozen=True)
class World:
    """What the simulator needs: the hidden taste space, artists, listeners and the popularity order."""

    embeddings: np.ndarray  # float32 [n_tracks, dim], row i = track i
    artists: np.ndarray  # int32 [n_tracks], an artist code per track
    artist_names: tuple[str, ...]  # code -> name
    listeners: tuple[Listener, ...]
    top_tracks: np.ndarray  # int64 track ids, most popular first

    @property
    def n_tracks(self) -> int:
        return int(self.embeddings.shape[0])

    def artist_tracks(self) -> list[np.ndarray]:
        """Track ids of each artist code, ascending."""
        order, bounds = group_by_artist(self.artists, len(self.artist_names))
        return [order[bounds[a] : bounds[a + 1]] for a in range(len(self.artist_names))]


def group_by_artist(artist_of: np.ndarray, artists: int) -> tuple[np.ndarray, np.ndarray]:
    """Track ids ordered by artist code (ascending ids within one), and where each artist's run starts and ends:
    artist a's tracks are `order[bounds[a]:bounds[a + 1]]`."""
    order = np.argsort(artist_of, kind="stable")
    return order, np.searchsorted(artist_of[order], np.arange(artists + 1))


def _text(path: Path) -> str:
    if not path.is_file():
        raise DataError(f"missing data file: {path}")
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 text (byte {error.start})") from None


def _json_lines(path: Path) -> list[dict[str, Any]]:
    records = []
    for number, line in enumerate(_text(path).split("\n"), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{path}:{number}: not JSON ({error.msg})") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}:{number}: expected a JSON object")
        records.append(record)
    return records


def _field(record: dict[str, Any], name: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = record.get(name)
    if value is None or isinstance(value, bool) or not isinstance(value, kind):
        raise DataError(f"{where}: field '{name}' missing or not {getattr(kind, '__name__', 'a number')}")
    return value


def read_tracks(path: Path) -> tuple[np.ndarray, tuple[str, ...], np.ndarray | None]:
    """Artist code per track, artist names, and popularity (None when the file has none)."""
    records = _json_lines(path)
    n = len(records)
    if n == 0:
        raise DataError(f"{path}: no tracks")
    artist_of = [""] * n
    seen = np.zeros(n, dtype=bool)
    popularity = np.zeros(n, dtype=np.float64)
    has_popularity = all("popularity" in r for r in records)
    for number, record in enumerate(records, 1):
        where = f"{path}:{number}"
        track = _field(record, "track", int, where)
        if not 0 <= track < n or seen[track]:
            raise DataError(f"{where}: track ids must be 0..{n - 1}, each once (got {track})")
        seen[track] = True
        artist_of[track] = str(_field(record, "artist", (str, int), where))
        if has_popularity:
            popularity[track] = float(_field(record, "popularity", (int, float), where))
    names = tuple(sorted(set(artist_of)))
    code = {name: i for i, name in enumerate(names)}
    artists = np.fromiter((code[a] for a in artist_of), dtype=np.int32, count=n)
    return artists, names, popularity if has_popularity else None


def read_embeddings(path: Path) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"missing data file: {path}")
    try:
        embeddings = np.load(path, allow_pickle=False)
    except (ValueError, EOFError) as error:  # EOFError: an empty file
        raise DataError(f"{path}: not a numeric .npy array ({error})") from None
    if embeddings.ndim != 2 or not np.issubdtype(embeddings.dtype, np.number):
        raise DataError(f"{path}: expected a 2-d numeric array, got shape {embeddings.shape}")
    if not np.isfinite(embeddings).all():
        raise DataError(f"{path}: embeddings contain NaN or inf")
    return np.ascontiguousarray(embeddings, dtype=np.float32)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _user_id(record: dict[str, Any], where: str) -> int:
    user = record.get("user")
    if type(user) is not int or not 0 <= user <= MAX_USER_ID:
        raise DataError(f"{where}: field 'user' must be a whole number in 0..{MAX_USER_ID} (got {user!r})")
    return user


def _session_budget(record: dict[str, Any], where: str) -> int:
    budget = record.get("session_budget", DEFAULT_SESSION_BUDGET)
    if not _is_number(budget) or budget < 1 or not float(budget).is_integer():
        raise DataError(f"{where}: field 'session_budget' must be a whole number >= 1 (got {budget!r})")
    return int(budget)


def _artist_discount_gamma(record: dict[str, Any], where: str) -> float:
    gamma = record.get("artist_discount_gamma", DEFAULT_ARTIST_DISCOUNT_GAMMA)
    if not _is_number(gamma) or not 0 < gamma <= 1:
        raise DataError(f"{where}: field 'artist_discount_gamma' must be in (0, 1] (got {gamma!r})")
    return float(gamma)


def _finite(record: dict[str, Any], name: str, where: str, positive: bool = False) -> float:
    value = float(_field(record, name, (int, float), where))
    if not math.isfinite(value) or (positive and value <= 0):
        raise DataError(f"{where}: field '{name}' must be a finite number{' > 0' if positive else ''} (got {value!r})")
    return value


def read_listeners(path: Path, n_tracks: int) -> tuple[Listener, ...]:
    listeners = []
    first_line: dict[int, int] = {}  # user id -> the line that defined it
    for number, record in enumerate(_json_lines(path), 1):
        where = f"{path}:{number}"
        user = _user_id(record, where)
        if first_line.setdefault(user, number) != number:  # two listeners would share one service-side session
            raise DataError(f"{where}: user {user} is already defined on line {first_line[user]}")
        interests = record.get("interests")
        if not isinstance(interests, list) or not interests:
            raise DataError(f"{where}: field 'interests' must be a non-empty list of track ids")
        if not all(type(t) is int and 0 <= t < n_tracks for t in interests):  # not a bool: `true` is no track
            raise DataError(f"{where}: interests must be track ids in 0..{n_tracks - 1}")
        listeners.append(
            Listener(
                user=user,
                interests=tuple(interests),
                consume_bias=_finite(record, "consume_bias", where),
                consume_sharpness=_finite(record, "consume_sharpness", where, positive=True),
                session_budget=_session_budget(record, where),
                artist_discount_gamma=_artist_discount_gamma(record, where),
            )
        )
    if not listeners:
        raise DataError(f"{path}: no users")
    return tuple(listeners)


def popularity_order(popularity: np.ndarray) -> np.ndarray:
    """Track ids by decreasing popularity; ties keep the smaller id first."""
    return np.lexsort((np.arange(popularity.shape[0]), -popularity)).astype(np.int64)


def read_top_tracks(path: Path, n_tracks: int) -> np.ndarray:
    try:
        top = json.loads(_text(path))
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: not JSON ({error.msg})") from None
    if not isinstance(top, list) or not top or not all(type(t) is int and 0 <= t < n_tracks for t in top):
        raise DataError(f"{path}: expected a non-empty JSON list of track ids in 0..{n_tracks - 1}")
    return np.asarray(top, dtype=np.int64)


def read_world(data_dir: Path) -> World:
    """Load and cross-check a world directory (course formats)."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"{data_dir}: {'a file, not a folder' if data_dir.exists() else 'no such folder'}")
    artists, names, popularity = read_tracks(data_dir / TRACKS_FILE)
    embeddings = read_embeddings(data_dir / EMBEDDINGS_FILE)
    if embeddings.shape[0] != artists.shape[0]:
        raise DataError(
            f"{data_dir / EMBEDDINGS_FILE} has {embeddings.shape[0]} rows but "
            f"{data_dir / TRACKS_FILE} has {artists.shape[0]} tracks"
        )
    n = artists.shape[0]
    listeners = read_listeners(data_dir / USERS_FILE, n)
    top_path = data_dir / TOP_TRACKS_FILE
    if top_path.is_file():
        top = read_top_tracks(top_path, n)
    elif popularity is not None:
        top = popularity_order(popularity)
    else:
        # A course catalog without popularity: how many users hold each track as an interest.
        counts = Counter(t for listener in listeners for t in set(listener.interests))
        top = popularity_order(np.bincount(np.fromiter(counts.elements(), dtype=np.int64), minlength=n))
    return World(embeddings, artists, names, listeners, top)


def _write_json_lines(path: Path, records: Iterable[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as f:
        for record in records:
            f.write(json.dumps(record))
            f.write("\n")


def write_world(
    out_dir: Path,
    tracks: Sequence[dict[str, Any]],
    embeddings: np.ndarray,
    users: Sequence[dict[str, Any]],
    top_tracks: Sequence[int],
) -> None:
    """Write the four files; records are written with their keys in the given order. They replace an earlier
    world's files together, or (writing failed) none of them: a world never mixes two worlds' files."""
    out_dir = Path(out_dir)
    with atomic_files() as files:
        _write_json_lines(files.path(out_dir / TRACKS_FILE), tracks)
        with files.path(out_dir / EMBEDDINGS_FILE).open("wb") as f:  # a file: np.save would add .npy to a name
            np.save(f, np.ascontiguousarray(embeddings, dtype=np.float32))
        _write_json_lines(files.path(out_dir / USERS_FILE), users)
        files.write_text(out_dir / TOP_TRACKS_FILE, json.dumps([int(t) for t in top_tracks]))
