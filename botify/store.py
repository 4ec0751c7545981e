"""Everything botify keeps in Redis, and the only module that knows the key names.

Published data (the catalog, each recommendation set) is written under a new version and made
live by switching one pointer, so readers never see a half-loaded set; the old version expires
after a grace period. Values are plain bytes (JSON, packed int32/float32): nothing is unpickled.
Each catalog version keeps its fingerprint (`botify.data_files.catalog_fingerprint`), and each set version the
fingerprint of the catalog it was made for, so a set gone stale under a new catalog can be told.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import redis

from botify.catalog import Catalog
from botify.data_files import catalog_fingerprint
from botify.item_space import ItemSpace
from botify.session import LISTEN_STRUCT, MAX_LISTENS, Session, pack_listen
from botify.settings import Settings

CATALOG = "catalog"
CATALOG_POINTER = f"{CATALOG}:current"  # names the live catalog's version
OLD_VERSION_GRACE_SECONDS = 60
UNFINISHED_VERSION_SECONDS = 3600  # a version is written expiring and kept when it goes live: an interrupted load
# leaves nothing behind for long
CATALOG_CHECK_SECONDS = 1.0
NO_CATALOG = "no catalog loaded: run `python -m botify load --data DIR`"
WRITE_BATCH = 2000
REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError, OSError)
# Redis answered, but no (out of memory, a read-only replica, a wrong password: redis-py's AuthenticationError is a
# ConnectionError): served around as an outage, and logged, since waiting does not end it.
REDIS_REFUSED = (redis.ResponseError, redis.AuthenticationError)
REDIS_RETRY_SECONDS = 0.5  # after a Redis timeout, serve from memory this long before trying Redis again
MAX_UNENDED = 100_000  # ended sessions a process remembers to delete once Redis answers again
REFUSAL_LOG_SECONDS = 60.0  # a command Redis refuses is logged at most this often (it may refuse every request)
T = TypeVar("T")
logger = logging.getLogger(__name__)


class StoreUnavailable(Exception):
    """Redis did not answer, or is being left alone for a while after it timed out."""


class RedisGuard:
    """A hung Redis costs one timeout per window, not one per request: after a timeout, calls are refused
    (StoreUnavailable) for `retry_seconds` and callers serve from memory. A refused or reset connection costs
    nothing to retry (and a pooled connection from before a restart fails once), so it suspends nothing."""

    def __init__(self, retry_seconds: float = REDIS_RETRY_SECONDS) -> None:
        self.retry_seconds = retry_seconds
        self.down_until = 0.0
        self.refusal_logged_until = 0.0

    def failed(self, error: Exception) -> None:
        """Redis did not answer (after a timeout it is left alone a while) or refused (logged)."""
        if isinstance(error, redis.TimeoutError):
            self.down_until = time.monotonic() + self.retry_seconds
        elif isinstance(error, REDIS_REFUSED):
            self.refused(error)

    def suspended(self) -> bool:
        return time.monotonic() < self.down_until

    def resume(self) -> None:
        """Redis answered again: stop serving from memory."""
        self.down_until = 0.0

    def call(self, call: Callable[..., T], *args: object) -> T:
        """`call(*args)`, which talks to Redis; StoreUnavailable while Redis is unreachable or left alone, or refuses
        the command (out of memory under `maxmemory`, a read-only replica after a failover, a wrong password):
        callers serve from memory, and the refusal is logged (at most once a minute) for the operator."""
        if self.suspended():
            raise StoreUnavailable("Redis is left alone after a timeout")
        try:
            return call(*args)
        except (*REDIS_DOWN, redis.ResponseError) as error:
            self.failed(error)
            raise StoreUnavailable(str(error)) from error

    def refused(self, error: redis.RedisError) -> None:
        now = time.monotonic()
        if now >= self.refusal_logged_until:
            self.refusal_logged_until = now + REFUSAL_LOG_SECONDS
            logger.error("Redis refused a command: %s; serving from memory meanwhile", error)


def recs_prefix(name: str) -> str:
    return f"recs:{name}"


SESSION_PREFIX = "session:"  # a user's session is SESSION_PREFIX + their id


def session_key(user: int) -> str:
    return f"{SESSION_PREFIX}{user}"


def pack_ints(values: Iterable[int]) -> bytes:
    return np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype="<i4").tobytes()


def unpack_ints(raw: bytes | None) -> np.ndarray:
    return np.frombuffer(raw, dtype="<i4") if raw else np.empty(0, dtype="<i4")


# ---- publishing (the `load` command) ----------------------------------------------------------


def new_version(client: redis.Redis, prefix: str) -> str:
    """A version name never used before, even by a Redis that lost its data and counts from 1 again (workers
    cache what they read by version name)."""
    return f"{prefix}:v{client.incr(f'{prefix}:sequence')}-{secrets.token_hex(4)}"


# The keys a catalog version has, and those a set version may have: a replaced version's keys are expired by these
# names (it may have keys the version replacing it has not, e.g. a set's vectors; a name it lacks is an EXPIRE that
# does nothing).
CATALOG_KEYS = ("tracks", "artist_of", "top", "fingerprint")
# A set's optional item space, in the order it is written and read: its vectors (float32) and their width, each
# track's nearest tracks (int32) and how many.
ITEM_KEYS = ("vectors", "dim", "neighbours", "neighbour_count")
SET_KEYS = ("lists", "catalog", *ITEM_KEYS)
LEGACY_KEYS = ("ready",)  # written by the first loader into each set version; expired with its version all the same
VERSION_KEYS = (*CATALOG_KEYS, *SET_KEYS, *LEGACY_KEYS)  # every name a version's key can have

# Make versions live only if every key they were written with is still there, each hash with every field it was written
# with (under memory pressure Redis may evict a version's keys while they are written expiring, and a hash's next batch
# would write it again with the later batches only; a string is written whole): keep them, switch the pointers and put
# the grace period on the keys of the versions they replace, all in one step, so no interruption can leave a replaced
# version without expiry. Nor is a set made live beside another catalog than it was made for (a concurrent load may
# have switched one live since this load read it): the fingerprint stored with each set version must be the one of the
# catalog live after the switch (a version without one, or a live catalog without one, is not checked).
# A switch that publishes another world's catalog also checks the live sets it keeps (`kept_sets`: those a load
# without --allow-stale-sets found made for that world, which a concurrent load may have replaced since).
# KEYS: for each version, its pointer and then its keys. ARGV: the grace period in seconds, VERSION_KEYS joined by
# spaces, the catalog's pointer, the kept sets' pointers joined by spaces, then for each version its name, how many
# keys it has and each key's length (a hash's field count; 0: a string). Returns an error naming a lost key, or STALE
# (a set of the switch) or STALE-LIVE (a kept set) and the set made for another catalog.
# The replaced versions' keys are named in the script (which versions they are is only known there), not passed in
# KEYS: like botify's other scripts, it expects one Redis, not a Cluster.
SWITCH_SCRIPT = """
local versions, k, i = {}, 1, 5
while i <= #ARGV do
  local count = tonumber(ARGV[i + 1])
  for j = 1, count do
    local key, length = KEYS[k + j], tonumber(ARGV[i + 1 + j])
    if redis.call('EXISTS', key) == 0 then return redis.error_reply(ARGV[i] .. ' lost ' .. key) end
    local fields = length > 0 and redis.call('HLEN', key)
    if fields and fields ~= length then
      local left = ' (' .. fields .. ' of ' .. length .. ' fields left)'
      return redis.error_reply(ARGV[i] .. ' lost part of ' .. key .. left)
    end
  end
  versions[#versions + 1] = {KEYS[k], ARGV[i], k, count}
  k, i = k + 1 + count, i + 2 + count
end
local catalog = redis.call('GET', ARGV[3])
local before = catalog and redis.call('GET', catalog .. ':fingerprint')
for _, version in ipairs(versions) do
  if version[1] == ARGV[3] then catalog = version[2] end
end
local fingerprint = catalog and redis.call('GET', catalog .. ':fingerprint')
local function made_for_another(code, set)  -- an error reply if `set` was made for another catalog than `fingerprint`
  local made = fingerprint and set and redis.call('GET', set .. ':catalog')
  if made and made ~= fingerprint then
    local after = ', the catalog live after the switch is ' .. fingerprint
    return redis.error_reply(code .. ' ' .. set .. ' was made for catalog ' .. made .. after)
  end
end
local switched = {}
for _, version in ipairs(versions) do
  switched[version[1]] = true
  local stale = version[1] ~= ARGV[3] and made_for_another('STALE', version[2])
  if stale then return stale end
end
if fingerprint ~= before then
  for pointer in string.gmatch(ARGV[4], '%S+') do
    local stale = not switched[pointer] and made_for_another('STALE-LIVE', redis.call('GET', pointer))
    if stale then return stale end
  end
end
for _, version in ipairs(versions) do
  local pointer, name, first, count = unpack(version)
  for j = first + 1, first + count do redis.call('PERSIST', KEYS[j]) end
  local old = redis.call('SET', pointer, name, 'GET')
  if old and old ~= name then
    for key in string.gmatch(ARGV[2], '%S+') do redis.call('EXPIRE', old .. ':' .. key, ARGV[1]) end
  end
end
"""


@dataclass(frozen=True)
class Staged:
    """A version written (expiring) and not live yet: the pointer's prefix, the version, its keys' suffixes and the
    field count of each of them that is a hash (the others are strings)."""

    prefix: str
    version: str
    keys: tuple[str, ...]
    lengths: dict[str, int] = field(default_factory=dict)


# SWITCH_SCRIPT's refusals of a set made for another catalog: what happened meanwhile, what to do.
STALE_REFUSALS = {
    "STALE": ("the live catalog changed", "run the load again"),  # a set of the switch
    "STALE-LIVE": ("a set went live", "run the load again (or give --allow-stale-sets)"),  # a set the switch keeps
}


def switch_all(client: redis.Redis, staged: Iterable[Staged], kept_sets: Iterable[str] = ()) -> None:
    """Keep every staged version and make them all live in one step, in which the versions they replace are set to
    expire after a grace period. RuntimeError, and nothing switched, if any of their keys is gone (or some of a
    hash's fields), or a set was made for another catalog than the one live after the switch: one of the switch, or
    one of `kept_sets` left live beside a catalog the switch publishes."""
    kept = " ".join(f"{recs_prefix(name)}:current" for name in kept_sets)
    keys, args = [], [OLD_VERSION_GRACE_SECONDS, " ".join(VERSION_KEYS), CATALOG_POINTER, kept]
    for one in staged:
        if unnamed := set(one.keys) - {*CATALOG_KEYS, *SET_KEYS}:  # would never expire once replaced
            raise ValueError(f"{one.version}: keys {sorted(unnamed)} are not in CATALOG_KEYS or SET_KEYS")
        keys += [f"{one.prefix}:current", *(f"{one.version}:{key}" for key in one.keys)]
        args += [one.version, len(one.keys), *(one.lengths.get(key, 0) for key in one.keys)]
    try:
        client.eval(SWITCH_SCRIPT, len(keys), *keys, *args)
    except redis.ResponseError as error:
        code, _, stale = str(error).partition(" ")
        if code in STALE_REFUSALS:  # SWITCH_SCRIPT's refusal of a set made for another catalog
            what, advice = STALE_REFUSALS[code]
            raise RuntimeError(f"{what} while this load ran: {stale}; nothing was switched: {advice}") from None
        raise RuntimeError(
            f"{error} before going live (evicted by Redis under memory pressure? give it more maxmemory); the live "
            "versions are unchanged"
        ) from None


# A version's key by its name: the version (`catalog:v7-1a2b3c4d`, `recs:NAME:v7-...`; the first loader's had no random
# part) and a name of VERSION_KEYS. Other keys (sessions, pointers, sequences, another program's) never match.
VERSION_KEY = re.compile(
    rb"((?:catalog|recs:.+):v[0-9]+(?:-[0-9a-f]{8})?):(" + "|".join(VERSION_KEYS).encode() + rb")", re.DOTALL
)

# Put the grace period on the keys of one version that no expiry is set on, unless its pointer names it. In one step,
# so the pointer cannot move to it in between; a key with an expiry is a version still being staged (a concurrent
# load's too) or already replaced, and is left as it is. KEYS: the pointer, then the version's keys. ARGV: the
# version, the grace period in seconds. Returns how many keys it set to expire.
SWEEP_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return 0 end
local swept = 0
for k = 2, #KEYS do
  if redis.call('TTL', KEYS[k]) == -1 then
    redis.call('EXPIRE', KEYS[k], ARGV[2])
    swept = swept + 1
  end
end
return swept
"""


def sweep_unreferenced(client: redis.Redis) -> int:
    """Put the grace period on version keys that nothing expires and no pointer names, and return how many: versions
    older loaders leaked (killed between their switch and the SCAN that expired the replaced version, or while
    staging before staged keys expired), the `ready` keys the switch left before it named them. Safe beside a
    concurrent load: a staged version expires until the switch that points to it keeps it."""
    versions: dict[bytes, list[bytes]] = {}
    for key in client.scan_iter(match="*:v[0-9]*:*", count=1000):
        if match := VERSION_KEY.fullmatch(key):
            versions.setdefault(match[1], []).append(key)
    swept = 0
    for version, keys in versions.items():
        pointer = version.rpartition(b":")[0] + b":current"
        swept += client.eval(SWEEP_SCRIPT, 1 + len(keys), pointer, *keys, version, OLD_VERSION_GRACE_SECONDS)
    return swept


def live_catalog_version(client: redis.Redis) -> bytes | None:
    """The version name of the catalog being served, None before one is loaded."""
    return client.get(CATALOG_POINTER)


def live_catalog_size(client: redis.Redis) -> int | None:
    """How many tracks the catalog being served has, None before one is loaded."""
    version = live_catalog_version(client)
    return None if version is None else client.strlen(f"{version.decode()}:artist_of") // 4  # int32 per track


def live_catalog_fingerprint(client: redis.Redis) -> str | None:
    """The fingerprint of the catalog being served, None before one is loaded; a catalog loaded before
    fingerprints were kept is fingerprinted from its track records."""
    version = live_catalog_version(client)
    if version is None:
        return None
    stored = client.get(f"{version.decode()}:fingerprint")
    if stored is not None:
        return stored.decode()
    records = client.hgetall(f"{version.decode()}:tracks")
    return catalog_fingerprint([json.loads(records[track]) for track in sorted(records, key=int)])


def sets_made_for(client: redis.Redis, names: Iterable[str]) -> dict[str, tuple[str, str | None]]:
    """The live sets among `names` -> (live version, fingerprint of the catalog it was made for; None for a set
    loaded before fingerprints were kept)."""
    names = list(names)
    versions = client.mget([f"{recs_prefix(name)}:current" for name in names]) if names else []
    live = {name: version.decode() for name, version in zip(names, versions, strict=True) if version}
    made = client.mget([f"{version}:catalog" for version in live.values()]) if live else []
    return {
        name: (version, fingerprint.decode() if fingerprint else None)
        for (name, version), fingerprint in zip(live.items(), made, strict=True)
    }


def stale_sets(client: redis.Redis, names: Iterable[str], fingerprint: str, live: str | None) -> list[str]:
    """The live sets among `names` made for another catalog than `fingerprint`. A set without a fingerprint was
    made for the live catalog, `live` (`stamp_sets` records it before another catalog replaces that one)."""
    made_for = sets_made_for(client, names)
    return [name for name, (_, made) in made_for.items() if (made or live) not in (None, fingerprint)]


# Record a set version's catalog unless it has one, and only while it is still the live version (a load that replaced
# it meanwhile has put expiries on its keys: a key written now would outlive them). KEYS: the set's pointer, the
# version's catalog key. ARGV: the version, the fingerprint.
STAMP_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('SET', KEYS[2], ARGV[2], 'NX') end
"""


def stamp_sets(client: redis.Redis, names: Iterable[str], fingerprint: str) -> None:
    """Record `fingerprint` (the live catalog's, as a new catalog replaces it) as the catalog of the live sets
    loaded before fingerprints were kept."""
    for name, (version, made) in sets_made_for(client, names).items():
        if made is None:
            client.eval(STAMP_SCRIPT, 2, f"{recs_prefix(name)}:current", f"{version}:catalog", version, fingerprint)


def staging(client: redis.Redis) -> redis.client.Pipeline:
    """A pipeline whose every `execute` is one MULTI/EXEC: a hash's batch goes in with its expiry, or not at all if
    the load is killed before EXEC (a hash written without its expiry would outlive the abandoned version)."""
    return client.pipeline(transaction=True)


def stage_catalog(
    client: redis.Redis, tracks: list[dict], artist_of: np.ndarray, top: list[int], fingerprint: str
) -> Staged:
    """Write track metadata, the artist of each track, the top tracks and the catalog's fingerprint
    (`botify.data_files.catalog_fingerprint` of `tracks`) as a new catalog version, not live yet."""
    version = new_version(client, CATALOG)
    with staging(client) as pipe:
        for start in range(0, len(tracks), WRITE_BATCH):
            batch = tracks[start : start + WRITE_BATCH]
            pipe.hset(f"{version}:tracks", mapping={t["track"]: json.dumps(t, ensure_ascii=False) for t in batch})
            pipe.expire(f"{version}:tracks", UNFINISHED_VERSION_SECONDS)
            pipe.execute()
        pipe.set(f"{version}:artist_of", pack_ints(artist_of), ex=UNFINISHED_VERSION_SECONDS)
        pipe.set(f"{version}:top", pack_ints(top), ex=UNFINISHED_VERSION_SECONDS)
        pipe.set(f"{version}:fingerprint", fingerprint, ex=UNFINISHED_VERSION_SECONDS)
        pipe.execute()
    return Staged(CATALOG, version, CATALOG_KEYS, {"tracks": len(tracks)})


def stage_recommendations(
    client: redis.Redis,
    name: str,
    lists: Iterable[tuple[int, list[int]]],
    vectors: np.ndarray | None = None,
    neighbours: np.ndarray | None = None,
    *,
    catalog: str,
) -> Staged:
    """Write one recommendation set (per-user candidate lists, optional item vectors with each track's
    nearest tracks) with the fingerprint of the catalog it was made for as a new version, not live yet."""
    prefix = recs_prefix(name)
    version = new_version(client, prefix)
    batch: dict[int, bytes] = {}
    fields = 0  # the hash's, for the switch to check (`load` refuses a user listed twice)
    with staging(client) as pipe:
        for user, tracks in lists:
            batch[user] = pack_ints(tracks)
            if len(batch) >= WRITE_BATCH:
                fields += len(batch)
                pipe.hset(f"{version}:lists", mapping=batch)
                pipe.expire(f"{version}:lists", UNFINISHED_VERSION_SECONDS)
                pipe.execute()
                batch = {}
        if batch:
            fields += len(batch)
            pipe.hset(f"{version}:lists", mapping=batch)
            pipe.expire(f"{version}:lists", UNFINISHED_VERSION_SECONDS)
        values: dict[str, object] = {"catalog": catalog}
        if vectors is not None:
            vector_bytes = np.ascontiguousarray(vectors, dtype="<f4").tobytes()
            items = (vector_bytes, vectors.shape[1], pack_ints(neighbours), neighbours.shape[1])
            values.update(zip(ITEM_KEYS, items, strict=True))
        for key, value in values.items():
            pipe.set(f"{version}:{key}", value, ex=UNFINISHED_VERSION_SECONDS)
        pipe.execute()
    return Staged(prefix, version, (*(["lists"] if fields else []), *values), {"lists": fields})


# ---- serving -----------------------------------------------------------------------------------


# One call per listen: append it to the session (resetting a value the service did not write, keeping the
# latest listens only), renew the session's expiry, and read back the session, the set's live version and
# the user's list in the version the worker has cached. KEYS: session, set pointer, cached version's lists.
# ARGV: the packed listen, the expiry in seconds, the user, the session's maximum size in bytes.
LISTEN_SCRIPT = """
local kind = redis.call('TYPE', KEYS[1]).ok
if kind ~= 'string' and kind ~= 'none' then redis.call('DEL', KEYS[1]) end
local size = redis.call('APPEND', KEYS[1], ARGV[1])
if size % #ARGV[1] ~= 0 then
  redis.call('SET', KEYS[1], ARGV[1])
elseif size > tonumber(ARGV[4]) then
  redis.call('SET', KEYS[1], string.sub(redis.call('GET', KEYS[1]), -tonumber(ARGV[4])))
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return {redis.call('GET', KEYS[1]), redis.call('GET', KEYS[2]), redis.call('HGET', KEYS[3], ARGV[3]),
        redis.call('GET', KEYS[4])}
"""


# Delete the sessions of /lasts that could not reach Redis, unless written since the /last was answered. A listen sets
# its session's expiry to the TTL, so its time (by Redis's clock) is now + what is left of the expiry - the TTL; each
# /last's answer time is the worker's wall clock (the same clock on one host, NTP's apart): absolute times, so time the
# call waits in a slow Redis changes neither. KEYS: the sessions. ARGV: the session TTL in ms, then each /last's answer
# time in ms since the epoch. A key without an expiry (not written by a listen) is deleted.
END_UNENDED_SCRIPT = """
redis.replicate_commands()
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
for i, key in ipairs(KEYS) do
  local left = redis.call('PTTL', key)
  if left == -1 or (left >= 0 and now_ms + left - tonumber(ARGV[1]) <= tonumber(ARGV[i + 1])) then
    redis.call('DEL', key)
  end
end
"""


class ThreadConnection:
    """A connection checked out of `pool` for one thread, given back when the thread's locals are dropped (it ended)."""

    def __init__(self, pool: redis.ConnectionPool) -> None:
        self.connection = pool.get_connection()
        weakref.finalize(self, pool.release, self.connection)


@dataclass
class CandidateContext:
    """What one /next needs of a recommendation set, read in the same call that records the listen."""

    candidates: np.ndarray  # the user's list, best first (empty when the user has none)
    items: ItemSpace | None  # the set's item vectors, row = track id
    session: Session  # the session's listens, this one included
    catalog: Catalog  # the catalog live as the set was read (a world loaded with it a moment ago too)


class Store:
    """Reads for serving: the catalog and item vectors are cached per version in the process."""

    def __init__(self, client: redis.Redis, session_ttl: int = Settings.session_ttl) -> None:
        self.client = client
        self.session_ttl = session_ttl
        self._lock = threading.Lock()
        self._catalog: tuple[bytes, Catalog] | None = None
        self._catalog_checked = -CATALOG_CHECK_SECONDS  # never: the first call reads the pointer
        self._catalog_missing = False  # the pointer was read and no catalog was live
        self._items: dict[str, tuple[bytes, ItemSpace | None]] = {}
        self._listen_sha = hashlib.sha1(LISTEN_SCRIPT.encode()).hexdigest()
        self._thread = threading.local()
        self.guard = RedisGuard()
        self._unended: dict[int, float] = {}  # users whose /last could not delete their session yet: when
        # it was answered (time.time(), as Redis's TIME)
        self._unended_lock = threading.Lock()

    def ping(self) -> bool:
        """Whether Redis answers; raises what redis-py raises when it does not."""
        return bool(self.client.ping())

    def catalog_version(self) -> bytes | None:
        return live_catalog_version(self.client)

    def catalog(self, refresh: bool = False) -> Catalog:
        """The live catalog; its pointer is re-read at most once a second, whether one was live or not (at once
        with `refresh`). Raises LookupError if none."""
        now = time.monotonic()
        if not refresh and now - self._catalog_checked < CATALOG_CHECK_SECONDS:
            if self._catalog_missing:
                raise LookupError(NO_CATALOG)
            if self._catalog is not None:
                return self._catalog[1]
        with self._lock:
            version = self.catalog_version()
            self._catalog_checked, self._catalog_missing = now, version is None
            if version is None:
                raise LookupError(NO_CATALOG)
            if self._catalog is None or self._catalog[0] != version:
                artist_of, top = self.client.mget(f"{version.decode()}:artist_of", f"{version.decode()}:top")
                self._catalog = (version, Catalog.build(unpack_ints(artist_of), unpack_ints(top)))
            return self._catalog[1]

    def catalog_of(self, version: bytes | None) -> Catalog:
        """The catalog whose version the live pointer was just seen to name: the cached one, unless a load replaced
        it since this process last read the pointer. Raises LookupError if none is live."""
        cached = self._catalog
        if cached is not None and version is not None and cached[0] == version:
            return cached[1]
        return self.catalog(refresh=True)

    def cached_catalog(self) -> Catalog | None:
        """The catalog this process last saw, without asking Redis (for serving through an outage)."""
        return self._catalog[1] if self._catalog is not None else None

    def serving_catalog(self) -> Catalog:
        """The live catalog; while Redis is unreachable (or has lost it), the last one this process saw.
        StoreUnavailable when there is neither."""
        try:
            return self.guard.call(self.catalog)
        except (StoreUnavailable, LookupError):
            cached = self.cached_catalog()
            if cached is None:
                raise StoreUnavailable("no catalog seen yet") from None
            return cached

    def track(self, track: int) -> dict | None:
        """The track's metadata, None for a track the live catalog lacks; LookupError when none is live."""
        version = self.catalog_version()
        if version is None:
            raise LookupError(NO_CATALOG)
        raw = self.client.hget(f"{version.decode()}:tracks", track)
        return json.loads(raw) if raw else None

    def listen(self, user: int, track: int, time: float, name: str) -> CandidateContext:
        """Record a listen in the user's session and read what set `name` offers them, with the catalog live in the
        same moment (a set never meets the catalog of the world it replaced, as the once-a-second check allowed):
        one round trip (more after a load, or after a Redis outage ended sessions it could not delete)."""
        if self._unended:
            self.end_unended()
        cached_version, items = self._items.get(name, (b"", None))
        keys = (session_key(user), f"{recs_prefix(name)}:current", f"{cached_version.decode()}:lists", CATALOG_POINTER)
        args = (pack_listen(track, time), self.session_ttl, user, MAX_LISTENS * LISTEN_STRUCT.size)
        try:
            reply = self._call("EVALSHA", self._listen_sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:  # a Redis that has not seen the script yet (or restarted): EVAL keeps it
            reply = self._call("EVAL", LISTEN_SCRIPT, len(keys), *keys, *args)
        raw_session, version, raw_list, catalog_version = reply
        catalog = self.catalog_of(catalog_version)
        if version is None:  # no set `name` (deleted, or never loaded): its cached vectors dropped, nothing offered
            self._items.pop(name, None)
            items, raw_list = None, None
        elif version != cached_version:
            items = self._load_items(name, version)
            raw_list = self.client.hget(f"{version.decode()}:lists", user)
        return CandidateContext(unpack_ints(raw_list), items, Session.from_bytes(raw_session, catalog.size), catalog)

    def _call(self, *command: object) -> object:
        """One command on this thread's own connection: the hot path skips the pool's checkout and retry layers.
        A connection that failed is dropped (its replies may be out of step) and reopened by the next call.
        The connection goes back to the pool when its thread ends (servers that start a thread, or a greenlet, per
        connection or request would otherwise leave one open Redis connection behind each)."""
        held = getattr(self._thread, "held", None)
        if held is None:
            held = self._thread.held = ThreadConnection(self.client.connection_pool)
        connection = held.connection
        try:
            connection.send_command(*command)
            return connection.read_response()
        except REDIS_DOWN:
            connection.disconnect()
            raise

    def user_list(self, user: int, name: str) -> np.ndarray:
        """The user's live list in set `name`, best first (empty when the user has none); reads nothing else."""
        version = self.client.get(f"{recs_prefix(name)}:current")
        return unpack_ints(self.client.hget(f"{version.decode()}:lists", user) if version else None)

    def _load_items(self, name: str, version: bytes) -> ItemSpace | None:
        """Fetch a set's item vectors and nearest tracks once per version."""
        keys = [f"{version.decode()}:{key}" for key in ITEM_KEYS]
        with self._lock:
            cached = self._items.get(name)
            if cached is not None and cached[0] == version:  # another thread loaded it while this one waited
                return cached[1]
            raw, dim, neighbours, count = self.client.mget(keys)
            items = None
            if raw and dim and neighbours is not None and count:
                vectors = np.frombuffer(raw, dtype="<f4").reshape(-1, int(dim))
                items = ItemSpace(vectors, unpack_ints(neighbours).reshape(len(vectors), int(count)))
            self._items[name] = (version, items)
            return items

    def has_set(self, name: str) -> bool:
        return self.client.exists(f"{recs_prefix(name)}:current") == 1

    def stale_sets(self, names: Iterable[str]) -> list[str]:
        """The live sets among `names` made for another catalog than the live one (for readiness, not per request;
        a catalog loaded before fingerprints were kept has none to compare with)."""
        version = self.catalog_version()
        fingerprint = self.client.get(f"{version.decode()}:fingerprint") if version else None
        return stale_sets(self.client, names, fingerprint.decode(), fingerprint.decode()) if fingerprint else []

    def end_session(self, user: int) -> None:
        """Delete the user's session. While Redis cannot be reached or is left alone (StoreUnavailable), the session
        is remembered and deleted by this process's next call that reaches Redis (`end_unended`): a /last in that
        window would otherwise leave the ended session's listens to the user's next session."""
        try:
            self.end_unended()
            self.guard.call(self.client.delete, session_key(user))
        except StoreUnavailable:
            with self._unended_lock:
                if len(self._unended) < MAX_UNENDED:  # beyond, sessions end by expiring
                    self._unended[user] = time.time()  # its /last is answered now: later listens are the next
            raise

    def end_unended(self) -> None:
        """Delete the sessions whose end has not reached Redis yet, but one written since its /last was answered: the
        user's next session, begun on another worker (or replica) that reached Redis, whose listens deleting it lost
        (it keeps the ended one's instead). StoreUnavailable, and they wait, while Redis cannot be reached."""
        with self._unended_lock:
            ended, self._unended = self._unended, {}
        if not ended:
            return
        keys = [session_key(user) for user in ended]
        answered = [int(at * 1000) for at in ended.values()]
        try:
            self.guard.call(self.client.eval, END_UNENDED_SCRIPT, len(keys), *keys, self.session_ttl * 1000, *answered)
        except StoreUnavailable:
            with self._unended_lock:
                for user, at in ended.items():
                    self._unended[user] = max(at, self._unended.get(user, at))
            raise
