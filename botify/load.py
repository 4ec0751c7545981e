"""`python -m botify load`: publish the catalog and recommendation sets into Redis (atomically per set)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import redis

from botify import store
from botify.catalog import artist_indices
from botify.connection import open_redis, save_snapshot
from botify.data_files import DataError, read_json_lines, read_top_tracks, read_tracks
from botify.item_space import nearest_tracks
from botify.registry import RECOMMENDATION_SETS
from botify.settings import Settings


def vectors_path(recs_file: Path) -> Path:
    """Item vectors of a set live beside its list: `lightfm.jsonl` -> `lightfm.npy`."""
    return recs_file.with_suffix(".npy")


def read_recommendations(path: Path, catalog_size: int) -> Iterator[tuple[int, list[int]]]:
    """`{"user": int, "tracks": [int, ...]}` lines, every track id checked against the catalog."""
    if not path.exists():
        raise DataError(f"{path}: no such file")
    for number, record in enumerate(read_json_lines(path), start=1):
        user, tracks = record.get("user"), record.get("tracks")
        if type(user) is not int or user < 0 or not isinstance(tracks, list):
            raise DataError(f"{path}: record {number} needs a non-negative integer 'user' and a 'tracks' list")
        if not all(type(t) is int and 0 <= t < catalog_size for t in tracks):
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
    if vectors.ndim != 2 or vectors.shape[0] != catalog_size or not np.isfinite(vectors).all():
        raise DataError(f"{path}: expected finite item vectors of shape ({catalog_size}, d), got {vectors.shape}")
    return vectors


def catalog_size(client: redis.Redis) -> int:
    size = store.live_catalog_size(client)
    if size is None:
        raise DataError("no catalog in Redis yet: load one with --data DIR")
    return size


@dataclass(frozen=True)
class CatalogFiles:
    """A world's catalog, read and checked, ready to publish."""

    tracks: list[dict]
    top: list[int]

    @classmethod
    def read(cls, data_dir: Path) -> CatalogFiles:
        tracks = read_tracks(data_dir / "tracks.json")
        return cls(tracks, read_top_tracks(data_dir / "top_tracks.json", len(tracks)))

    def publish(self, client: redis.Redis) -> int:
        store.publish_catalog(client, self.tracks, artist_indices(self.tracks), self.top)
        return len(self.tracks)


@dataclass(frozen=True)
class RecommendationSet:
    """A set's lists and item vectors (with each track's nearest tracks), read and checked against a catalog."""

    lists: list[tuple[int, list[int]]]
    vectors: np.ndarray | None
    neighbours: np.ndarray | None

    @classmethod
    def read(cls, path: Path, catalog_size: int) -> RecommendationSet:
        vectors = read_vectors(vectors_path(path), catalog_size)
        lists = list(read_recommendations(path, catalog_size))
        if not lists:
            raise DataError(f"{path}: no recommendations (loaded, it would replace the live set with nothing)")
        return cls(lists, vectors, nearest_tracks(vectors) if vectors is not None else None)

    def publish(self, client: redis.Redis, name: str) -> tuple[int, bool]:
        """Returns (users, whether item vectors came with it)."""
        store.publish_recommendations(client, name, self.lists, self.vectors, self.neighbours)
        return len(self.lists), self.vectors is not None


def load_catalog(client: redis.Redis, data_dir: Path) -> int:
    return CatalogFiles.read(data_dir).publish(client)


def load_recommendations(client: redis.Redis, name: str, path: Path) -> tuple[int, bool]:
    """Publish one set against the live catalog; nothing live changes on error."""
    return RecommendationSet.read(path, catalog_size(client)).publish(client, name)


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
        type=Path,
        help="world folder with tracks.json and top_tracks.json (loaded into REDIS_URL, else BOTIFY_DATA_DIR's Redis)",
    )
    parser.add_argument(
        "--recs",
        type=parse_set,
        nargs="*",
        action="extend",
        default=[],
        metavar="NAME=FILE",
        help="recommendation set(s): JSON lines {user, tracks}; FILE.npy beside it holds the item vectors",
    )


def run(args: argparse.Namespace) -> None:
    settings = Settings.from_env()  # the Redis of BOTIFY_DATA_DIR (as `serve`), whichever world --data names
    if args.data is None and not args.recs:
        raise DataError("nothing to load: give --data DIR and/or --recs NAME=FILE")
    # Everything is read and checked before anything is published (a bad set leaves the live catalog as it was),
    # and what can be checked without Redis before it is started or touched.
    catalog = CatalogFiles.read(args.data) if args.data is not None else None
    missing = [path for _, path in args.recs if not path.is_file()]
    if missing:
        raise DataError(f"{missing[0]}: no such file")
    with open_redis(settings) as client:
        size = len(catalog.tracks) if catalog is not None else catalog_size(client)
        sets = []
        for name, path in args.recs:
            print(f"checking recommendations {name} from {path}", flush=True)
            sets.append((name, path, RecommendationSet.read(path, size)))
        if catalog is not None:
            print(f"catalog: {catalog.publish(client)} tracks from {args.data}")
        for name, path, recommendations in sets:
            users, with_vectors = recommendations.publish(client, name)
            print(f"recommendations {name}: {users} users from {path}" + (" with item vectors" if with_vectors else ""))
        print("saving Redis's snapshot ...", flush=True)  # on disk now: it survives a crash right after
        if not save_snapshot(client):
            print("note: this Redis takes no BGSAVE; what was loaded is saved by its own persistence")
