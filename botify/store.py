"""Everything botify keeps in Redis, and the only module that knows the key names.

Published data (the catalog, each recommendation set) is written under a new version and made
live by switching one pointer, so readers never see a half-loaded set; the old version expires
after a grace period. Values are plain bytes (JSON, packed int32/float32): nothing is unpickled.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import redis

from botify.catalog import Catalog
from botify.item_space import ItemSpace
from botify.session import Session

CATALOG = "catalog"
OLD_VERSION_GRACE_SECONDS = 60
CATALOG_CHECK_SECONDS = 1.0
WRITE_BATCH = 2000
REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError, OSError)


def recs_prefix(name: str) -> str:
    return f"recs:{name}"


def session_key(user: int) -> str:
    return f"session:{user}"


def pack_ints(values: Iterable[int]) -> bytes:
    return np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype="<i4").tobytes()


def unpack_ints(raw: bytes | None) -> np.ndarray:
    return np.frombuffer(raw, dtype="<i4") if raw else np.empty(0, dtype="<i4")


# ---- publishing (the `load` command) ----------------------------------------------------------


def new_version(client: redis.Redis, prefix: str) -> str:
    return f"{prefix}:v{client.incr(f'{prefix}:sequence')}"


def switch_to(client: redis.Redis, prefix: str, version: str) -> None:
    """Make `version` live in one command; let the previous version expire after a grace period."""
    old = client.set(f"{prefix}:current", version, get=True)
    if old and old.decode() != version:
        with client.pipeline(transaction=False) as pipe:
            for key in client.scan_iter(match=f"{old.decode()}:*", count=1000):
                pipe.expire(key, OLD_VERSION_GRACE_SECONDS)
            pipe.execute()


def publish_catalog(client: redis.Redis, tracks: list[dict], artist_of: np.ndarray, top: list[int]) -> str:
    """Write track metadata, the artist of each track and the top tracks; switch the catalog pointer."""
    version = new_version(client, CATALOG)
    with client.pipeline(transaction=False) as pipe:
        for start in range(0, len(tracks), WRITE_BATCH):
            batch = tracks[start : start + WRITE_BATCH]
            pipe.hset(f"{version}:tracks", mapping={t["track"]: json.dumps(t, ensure_ascii=False) for t in batch})
            pipe.execute()
        pipe.set(f"{version}:artist_of", pack_ints(artist_of))
        pipe.set(f"{version}:top", pack_ints(top))
        pipe.execute()
    switch_to(client, CATALOG, version)
    return version


def publish_recommendations(
    client: redis.Redis,
    name: str,
    lists: Iterable[tuple[int, list[int]]],
    vectors: np.ndarray | None = None,
    neighbours: np.ndarray | None = None,
) -> str:
    """Write one recommendation set (per-user candidate lists, optional item vectors with each track's
    nearest tracks); switch its pointer."""
    prefix = recs_prefix(name)
    version = new_version(client, prefix)
    batch: dict[int, bytes] = {}
    with client.pipeline(transaction=False) as pipe:
        for user, tracks in lists:
            batch[user] = pack_ints(tracks)
            if len(batch) >= WRITE_BATCH:
                pipe.hset(f"{version}:lists", mapping=batch)
                pipe.execute()
                batch = {}
        if batch:
            pipe.hset(f"{version}:lists", mapping=batch)
        if vectors is not None:
            pipe.set(f"{version}:vectors", np.ascontiguousarray(vectors, dtype="<f4").tobytes())
            pipe.set(f"{version}:dim", vectors.shape[1])
            pipe.set(f"{version}:neighbours", np.ascontiguousarray(neighbours, dtype="<i4").tobytes())
            pipe.set(f"{version}:neighbour_count", neighbours.shape[1])
        pipe.set(f"{version}:ready", 1)
        pipe.execute()
    switch_to(client, prefix, version)
    return version


# ---- serving -----------------------------------------------------------------------------------


@dataclass
class CandidateContext:
    """What one /next needs of a recommendation set, read in one round trip."""

    candidates: np.ndarray  # the user's list, best first (empty when the user has none)
    items: ItemSpace | None  # the set's item vectors, row = track id
    session: Session


class Store:
    """Reads for serving: the catalog and item vectors are cached per version in the process."""

    def __init__(self, client: redis.Redis, session_ttl: int = 6 * 3600) -> None:
        self.client = client
        self.session_ttl = session_ttl
        self._lock = threading.Lock()
        self._catalog: tuple[bytes, Catalog] | None = None
        self._catalog_checked = 0.0
        self._items: dict[str, tuple[bytes, ItemSpace | None]] = {}

    def ping(self) -> bool:
        try:
            return bool(self.client.ping())
        except REDIS_DOWN:
            return False

    def catalog_version(self) -> bytes | None:
        return self.client.get(f"{CATALOG}:current")

    def catalog(self) -> Catalog:
        """The live catalog; its pointer is re-read at most once a second. Raises LookupError if none."""
        now = time.monotonic()
        if self._catalog is not None and now - self._catalog_checked < CATALOG_CHECK_SECONDS:
            return self._catalog[1]
        with self._lock:
            version = self.catalog_version()
            if version is None:
                raise LookupError("no catalog loaded: run `python -m botify load --data DIR`")
            if self._catalog is None or self._catalog[0] != version:
                artist_of, top = self.client.mget(f"{version.decode()}:artist_of", f"{version.decode()}:top")
                self._catalog = (version, Catalog.build(unpack_ints(artist_of), unpack_ints(top)))
            self._catalog_checked = now
            return self._catalog[1]

    def cached_catalog(self) -> Catalog | None:
        """The catalog this process last saw, without asking Redis (for serving through an outage)."""
        return self._catalog[1] if self._catalog is not None else None

    def track(self, track: int) -> dict | None:
        version = self.catalog_version()
        raw = self.client.hget(f"{version.decode()}:tracks", track) if version else None
        return json.loads(raw) if raw else None

    def candidate_context(self, user: int, name: str) -> CandidateContext:
        """The user's candidates from set `name`, the set's vectors and the session: one round trip."""
        prefix = recs_prefix(name)
        cached_version, items = self._items.get(name, (b"", None))
        with self.client.pipeline(transaction=False) as pipe:
            pipe.get(f"{prefix}:current")
            pipe.hget(f"{cached_version.decode()}:lists", user)
            pipe.get(session_key(user))
            version, raw_list, raw_session = pipe.execute()
        if version is not None and version != cached_version:
            items = self._load_items(name, version)
            raw_list = self.client.hget(f"{version.decode()}:lists", user)
        return CandidateContext(unpack_ints(raw_list), items, Session.from_json(raw_session))

    def _load_items(self, name: str, version: bytes) -> ItemSpace | None:
        """Fetch a set's item vectors and nearest tracks once per version."""
        keys = [f"{version.decode()}:{key}" for key in ("vectors", "dim", "neighbours", "neighbour_count")]
        with self._lock:
            raw, dim, neighbours, count = self.client.mget(keys)
            items = None
            if raw and dim and neighbours is not None and count:
                vectors = np.frombuffer(raw, dtype="<f4").reshape(-1, int(dim))
                items = ItemSpace(vectors, unpack_ints(neighbours).reshape(len(vectors), int(count)))
            self._items[name] = (version, items)
            return items

    def has_set(self, name: str) -> bool:
        return self.client.exists(f"{recs_prefix(name)}:current") == 1

    def save_session(self, user: int, session: Session) -> None:
        self.client.set(session_key(user), session.to_json(), ex=self.session_ttl)

    def end_session(self, user: int) -> None:
        self.client.delete(session_key(user))
