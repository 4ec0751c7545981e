"""`python -m botify load`: publish the catalog and recommendation sets into Redis (atomically per set).

A set is checked against the catalog it goes live with (the world of `--data`, else the live one): its track ids,
its item vectors' rows and, when `NAME.catalog.json` is beside it, the fingerprint of the world it was trained on.
A new world whose fingerprint differs from the one live sets were made for is refused unless those sets are loaded
in the same command (or `--allow-stale-sets`): they would go on serving another world's tracks.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import redis

from botify import store
from botify.arguments import path_argument
from botify.catalog import artist_indices
from botify.connection import check_answers, embedded_for, open_redis, redis_location, save_snapshot
from botify.data_files import (
    DataError,
    catalog_fingerprint,
    fingerprint_path,
    read_fingerprint,
    read_json_lines,
    read_top_tracks,
    read_tracks,
    require_file,
)
from botify.event_log import INT64_MAX
from botify.item_space import nearest_tracks
from botify.registry import RECOMMENDATION_SETS
from botify.settings import Settings


def vectors_path(recs_file: Path) -> Path:
    """Item vectors of a set live beside its list: `lightfm.jsonl` -> `lightfm.npy`."""
    return recs_file.with_suffix(".npy")


def read_recommendations(path: Path, catalog_size: int) -> Iterator[tuple[int, list[int]]]:
    """`{"user": int, "tracks": [int, ...]}` lines, every track id checked against the catalog."""
    require_file(path)
    seen: dict[int, int] = {}  # user -> record number
    for number, record in enumerate(read_json_lines(path), start=1):
        user, tracks = record.get("user"), record.get("tracks")
        if type(user) is not int or not 0 <= user <= INT64_MAX or not isinstance(tracks, list):
            raise DataError(
                f"{path}: record {number} needs a 'user' in 0..2^63-1 (the ids /next takes) and a 'tracks' list"
            )
        if user in seen:  # one list would silently replace the other
            raise DataError(f"{path}: record {number} lists user {user} again (record {seen[user]} did)")
        seen[user] = number
        if not all(type(t) is int for t in tracks):
            raise DataError(f'{path}: record {number} has track ids that are not integers (1.0, "1" are not)')
        if not all(0 <= t < catalog_size for t in tracks):
            raise DataError(f"{path}: record {number} has track ids outside the catalog (0..{catalog_size - 1})")
        yield user, tracks


def read_vectors(path: Path, catalog_size: int) -> np.ndarray | None:
    if not path.exists():
        return None
    try:
        vectors = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError):  # not .npy at all, cut short, or an array of Python objects
        raise DataError(f"{path}: not a .npy file of numbers") from None
    if not isinstance(vectors, np.ndarray) or vectors.dtype.kind not in "fiu":
        raise DataError(f"{path}: not a .npy array of numbers")
    if vectors.ndim != 2 or vectors.shape[0] != catalog_size or vectors.shape[1] == 0:
        raise DataError(f"{path}: expected item vectors of shape ({catalog_size}, d >= 1), got {vectors.shape}")
    with np.errstate(over="ignore"):  # a value beyond float32's range becomes inf: refused below
        stored = vectors.astype(np.float32)  # as Redis keeps them
    if not np.isfinite(stored).all():
        raise DataError(f"{path}: item vectors must be finite float32 numbers (NaN, inf or beyond ±3.4e38 found)")
    return stored


@dataclass(frozen=True)
class Target:
    """The catalog a set is checked against and published for."""

    size: int
    fingerprint: str
    name: str  # for messages: the --data folder, or the live catalog

    @classmethod
    def live(cls, client: redis.Redis) -> Target:
        size = store.live_catalog_size(client)
        if size is None:
            raise DataError("no catalog in Redis yet: load one with --data DIR")
        return cls(size, store.live_catalog_fingerprint(client), "the live catalog")


@dataclass(frozen=True)
class CatalogFiles:
    """A world's catalog, read and checked, ready to publish."""

    tracks: list[dict]
    top: list[int]
    target: Target  # the catalog these files make, for the sets loaded with it

    @classmethod
    def read(cls, data_dir: Path) -> CatalogFiles:
        tracks = read_tracks(data_dir / "tracks.json")
        top = read_top_tracks(data_dir / "top_tracks.json", len(tracks))
        return cls(tracks, top, Target(len(tracks), catalog_fingerprint(tracks), str(data_dir)))

    def stage(self, client: redis.Redis) -> store.Staged:
        """Written to Redis as a new catalog version, not live yet (`store.switch_all` makes it live)."""
        return store.stage_catalog(client, self.tracks, artist_indices(self.tracks), self.top, self.target.fingerprint)

    def publish(self, client: redis.Redis) -> int:
        store.switch_all(client, [self.stage(client)])
        return len(self.tracks)


def check_made_for(path: Path, target: Target) -> bool:
    """DataError if the set's `NAME.catalog.json` names another world than `target`; False when it has none."""
    made_for = read_fingerprint(path)
    if made_for is not None and made_for != target.fingerprint:
        raise DataError(
            f"{path} was trained on another catalog (fingerprint {made_for}) than {target.name} "
            f"({target.fingerprint}): load it with the world it was trained on, or train it on this one"
        )
    return made_for is not None


def progress_lines(what: str, every: float = 2.0) -> Callable[[int, int], None]:
    """A progress callback printing `what: N% (done of total)` at most every `every` seconds, the first after
    `every` seconds: lines, which a loader's log keeps as a terminal does; silent for shorter work."""
    last = time.monotonic()

    def show(done: int, total: int) -> None:
        nonlocal last
        if (now := time.monotonic()) - last >= every:
            last = now
            print(f"  {what}: {done * 100 // total}% ({done:,} of {total:,})", flush=True)

    return show


@dataclass(frozen=True)
class RecommendationSet:
    """A set's lists and item vectors (with each track's nearest tracks), read and checked against a catalog."""

    lists: list[tuple[int, list[int]]]
    vectors: np.ndarray | None
    neighbours: np.ndarray | None
    catalog: str  # the fingerprint of the catalog it was checked against
    fingerprinted: bool  # whether its NAME.catalog.json said so (else only its ids and vectors' rows were checked)

    @classmethod
    def read(cls, path: Path, target: Target) -> RecommendationSet:
        fingerprinted = check_made_for(path, target)
        vectors = read_vectors(vectors_path(path), target.size)
        lists = list(read_recommendations(path, target.size))
        if not lists:
            raise DataError(f"{path}: no recommendations (loaded, it would replace the live set with nothing)")
        neighbours = None if vectors is None else nearest_tracks(vectors, progress=progress_lines("nearest tracks"))
        return cls(lists, vectors, neighbours, target.fingerprint, fingerprinted)

    def stage(self, client: redis.Redis, name: str) -> store.Staged:
        """Written to Redis as a new version of set `name`, not live yet (`store.switch_all` makes it live)."""
        return store.stage_recommendations(
            client, name, self.lists, self.vectors, self.neighbours, catalog=self.catalog
        )

    def publish(self, client: redis.Redis, name: str) -> None:
        store.switch_all(client, [self.stage(client, name)])


def load_catalog(client: redis.Redis, data_dir: Path) -> int:
    return CatalogFiles.read(data_dir).publish(client)


def load_recommendations(client: redis.Redis, name: str, path: Path) -> None:
    """Publish one set against the live catalog; nothing live changes on error."""
    RecommendationSet.read(path, Target.live(client)).publish(client, name)


def sets_left_stale(client: redis.Redis, live: str, target: Target, reloaded: set[str]) -> list[str]:
    """The live sets, other than `reloaded`, that replacing the live catalog (fingerprint `live`) by `target`
    would leave made for another catalog."""
    stale = store.stale_sets(client, RECOMMENDATION_SETS, target.fingerprint, live)
    return [name for name in stale if name not in reloaded]


def parse_set(text: str) -> tuple[str, Path]:
    """NAME=FILE, NAME one of the sets a recommender reads (a set under another name would be published and
    never served, the live one left as it was)."""
    name, sep, file = text.partition("=")
    if not sep or not name or not file:
        raise argparse.ArgumentTypeError(f"expected NAME=FILE, got {text!r}")
    if name not in RECOMMENDATION_SETS:
        raise argparse.ArgumentTypeError(
            f"no recommender serves a set named {name!r}: one of {', '.join(RECOMMENDATION_SETS)} (botify/registry.py)"
        )
    return name, Path(file)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        type=path_argument,
        help="world folder with tracks.json and top_tracks.json (loaded into REDIS_URL, else BOTIFY_DATA_DIR's Redis)",
    )
    parser.add_argument(
        "--recs",
        type=parse_set,
        nargs="*",
        action="extend",
        default=[],
        metavar="NAME=FILE",
        help="recommendation set(s): JSON lines {user, tracks}; beside it FILE.npy holds the item vectors and "
        "FILE.catalog.json the fingerprint of the world it was trained on",
    )
    parser.add_argument(
        "--allow-stale-sets",
        action="store_true",
        help="load --data even though live sets not loaded with it were made for another catalog",
    )


def run(args: argparse.Namespace) -> None:
    settings = Settings.from_env()  # the Redis of BOTIFY_DATA_DIR (as `serve`), whichever world --data names
    if args.data is None and not args.recs:
        raise DataError("nothing to load: give --data DIR and/or --recs NAME=FILE")
    # Everything is read and checked before anything is published (a bad set leaves the live catalog as it was),
    # and what can be checked without Redis before it is started or touched.
    catalog = CatalogFiles.read(args.data) if args.data is not None else None
    names = [name for name, _ in args.recs]
    twice = [name for name in dict.fromkeys(names) if names.count(name) > 1]
    if twice:  # the last would win, the others published for nothing
        raise DataError(f"--recs names {', '.join(twice)} more than once: give each set one file")
    for _, path in args.recs:
        require_file(path)
    where = redis_location(settings)
    if settings.redis_url:
        check_answers(settings.redis_url)  # one line saying which Redis, not Redis's words alone
    elif not embedded_for(settings).is_up():  # a service of another folder would not see it
        print(
            f"note: nothing serves {where} now: it runs for this load only; a `botify serve` with the same "
            "BOTIFY_DATA_DIR serves what is loaded",
            flush=True,
        )
    with open_redis(settings) as client:
        target = catalog.target if catalog is not None else Target.live(client)
        live = store.live_catalog_fingerprint(client) if catalog is not None else None
        replaced = live is not None and live != target.fingerprint  # a new world takes the live one's place
        stale = sets_left_stale(client, live, target, {name for name, _ in args.recs}) if replaced else []
        if stale and not args.allow_stale_sets:
            names = ", ".join(stale)
            raise DataError(
                f"{args.data} is another catalog than the live set(s) {names} were made for: load them in the same "
                f"command (--recs {' '.join(f'{name}=FILE' for name in stale)}, trained on this world), "
                "or give --allow-stale-sets to leave them stale"
            )
        sets = []
        for name, path in args.recs:
            print(f"checking recommendations {name} from {path}", flush=True)
            recommendations = RecommendationSet.read(path, target)
            if not recommendations.fingerprinted:
                print(f"warning: {path} has no {fingerprint_path(path).name}: its world is not checked, only its ids")
            if recommendations.vectors is None:
                print(
                    f"warning: {path} has no {vectors_path(path).name}: its lists are served in their stored order, "
                    "not re-ranked by the session"
                )
            sets.append((name, path, recommendations))
        # Every version is written first and all go live in one step: a load that fails half-way (Redis lost,
        # Ctrl-C) leaves the live catalog and sets as they were, never a new catalog beside the old one's sets.
        staged = []
        try:
            if swept := store.sweep_unreferenced(client):
                print(
                    f"{swept} key{'s' * (swept != 1)} of versions no pointer names (left by older loads) expire in "
                    f"{store.OLD_VERSION_GRACE_SECONDS} s"
                )
            if catalog is not None:
                if replaced:  # sets without a fingerprint were made for the catalog going out
                    store.stamp_sets(client, RECOMMENDATION_SETS, live)
                staged.append(catalog.stage(client))
            staged += [recommendations.stage(client, name) for name, _, recommendations in sets]
        except redis.ResponseError as error:  # a pipeline's error quotes its (binary) command: keep Redis's reason
            reason = str(error).rpartition("caused error: ")[2]
            if isinstance(error, redis.ReadOnlyError):  # REDIS_URL names a replica (a failover moved the primary)
                hint = "a read-only replica: give REDIS_URL its primary"
            else:
                hint = "maxmemory reached? give it more"
            raise RuntimeError(
                f"Redis refused a write: {reason} ({hint}); the live catalog and sets are unchanged"
            ) from None
        store.switch_all(client, staged, kept_sets=() if args.allow_stale_sets else RECOMMENDATION_SETS)
        print(f"published to {where}:")
        if catalog is not None:
            print(f"catalog: {len(catalog.tracks)} tracks from {args.data}")
            if stale:
                one = len(stale) == 1
                which = f"set {stale[0]} stays" if one else f"sets {', '.join(stale)} stay"
                print(f"warning: {which} live for another catalog: /ready reports {'it' if one else 'them'} as stale")
        for name, path, recommendations in sets:
            vectors = " with item vectors" if recommendations.vectors is not None else ""
            print(f"recommendations {name}: {len(recommendations.lists)} users from {path}{vectors}")
        print("saving Redis's snapshot ...", flush=True)  # on disk now: it survives a crash right after
        if not save_snapshot(client):
            print("note: this Redis takes no BGSAVE; what was loaded is saved by its own persistence")
