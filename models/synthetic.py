"""A seeded toy world + event logs in botify's formats, for benchmarks at the seed's scale.

The real simulator (`sim`) drives the real service over HTTP (a full-scale day takes ~25 minutes); this
generator writes millions of log lines in seconds from a simple taste model (genre-centred track and user
vectors, listen time = logistic of their cosine), so the training pipeline can be measured at the scale of the
course's seed data (3.3M listens, 10k users, 50k tracks; `bench/models_scale.py`), and the CLI tests get small
logs fast.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.special import expit

from models.atomic import atomic_path
from models.positives import DAY_MS


@dataclass(frozen=True)
class SyntheticSpec:
    """Size of the generated world and logs."""

    tracks: int = 5_000
    users: int = 1_000
    listens: int = 100_000
    genres: int = 20
    dim: int = 16
    days: int = 7
    session_length: int = 8
    taste_share: float = 0.5  # share of listens drawn from the user's genres (the rest by popularity)


@dataclass(frozen=True)
class SyntheticWorld:
    """The hidden truth behind the generated logs (kept for checks)."""

    track_genre: np.ndarray
    track_artist: np.ndarray
    track_vectors: np.ndarray
    popularity: np.ndarray
    user_vectors: np.ndarray
    user_genres: np.ndarray  # [users, 2]


def make_world(spec: SyntheticSpec, rng: np.random.Generator) -> SyntheticWorld:
    """Genres are clusters in a taste space; artists sit near a genre; tracks near their artist."""
    centres = rng.normal(size=(spec.genres, spec.dim))
    n_artists = max(1, spec.tracks // 10)
    artist_genre = rng.integers(spec.genres, size=n_artists)
    artist_vectors = centres[artist_genre] + 0.5 * rng.normal(size=(n_artists, spec.dim))
    track_artist = rng.integers(n_artists, size=spec.tracks)
    track_vectors = artist_vectors[track_artist] + 0.5 * rng.normal(size=(spec.tracks, spec.dim))
    track_vectors /= np.linalg.norm(track_vectors, axis=1, keepdims=True)
    popularity = 1.0 / (1.0 + rng.permutation(spec.tracks)) ** 0.8
    popularity /= popularity.sum()
    user_genres = rng.integers(spec.genres, size=(spec.users, 2))
    user_vectors = centres[user_genres].mean(axis=1) + 0.3 * rng.normal(size=(spec.users, spec.dim))
    user_vectors /= np.linalg.norm(user_vectors, axis=1, keepdims=True)
    return SyntheticWorld(
        track_genre=artist_genre[track_artist],
        track_artist=track_artist,
        track_vectors=track_vectors,
        popularity=popularity,
        user_vectors=user_vectors,
        user_genres=user_genres,
    )


def write_catalog(world: SyntheticWorld, out: Path, rng: np.random.Generator) -> None:
    """tracks.json (JSON lines, course format + feature fields) and top_tracks.json."""
    n = len(world.track_genre)
    durations = np.clip(rng.lognormal(np.log(210), 0.35, size=n), 30, 1200).astype(int)
    years = rng.integers(1960, 2024, size=n)
    with atomic_path(out / "tracks.json") as tmp, tmp.open("w", encoding="utf-8") as f:
        for t in range(n):
            record = {
                "track": t,
                "artist": f"Artist {world.track_artist[t]}",
                "title": f"Song {t}",
                "genre": f"genre{world.track_genre[t]}",
                "duration": int(durations[t]),
                "popularity": round(float(world.popularity[t] * n), 6),
                "year": int(years[t]),
                "mood": "calm",
                "country": "XX",
            }
            f.write(json.dumps(record) + "\n")
    top = np.argsort(-world.popularity, kind="stable")[:100]
    with atomic_path(out / "top_tracks.json") as tmp:
        tmp.write_text(json.dumps(top.tolist()))


def write_logs(world: SyntheticWorld, spec: SyntheticSpec, out: Path, rng: np.random.Generator, files: int = 1) -> int:
    """Write `spec.listens` listen events as botify log lines (split over `files` rotated files)."""
    n_users, n_tracks = len(world.user_vectors), len(world.track_genre)
    user = np.sort(rng.integers(n_users, size=spec.listens))
    from_taste = rng.random(spec.listens) < spec.taste_share
    track = rng.choice(n_tracks, size=spec.listens, p=world.popularity)
    by_genre = np.argsort(world.track_genre, kind="stable")
    counts = np.bincount(world.track_genre, minlength=spec.genres)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    genre = world.user_genres[user, rng.integers(2, size=spec.listens)]
    pick = from_taste & (counts[genre] > 0)
    offset = np.floor(rng.random(pick.sum()) * counts[genre[pick]]).astype(int)
    track[pick] = by_genre[starts[genre[pick]] + offset]
    cosine = np.einsum("ij,ij->i", world.user_vectors[user], world.track_vectors[track])
    time = np.round(np.clip(expit((cosine - 0.4) * 8) + 0.1 * rng.normal(size=spec.listens), 0, 1), 2)
    start_ms = 1_700_000_000_000
    span_ms = spec.days * DAY_MS
    timestamp = start_ms + np.sort(rng.integers(span_ms, size=spec.listens))
    timestamp = timestamp[rng.permutation(spec.listens)]
    order = np.lexsort((timestamp, user))
    user, track, time, timestamp = user[order], track[order], time[order], timestamp[order]
    position = np.arange(spec.listens) - np.searchsorted(user, user)
    last = ((position + 1) % spec.session_length == 0) | np.r_[user[1:] != user[:-1], True]
    recommendation = rng.integers(n_tracks, size=spec.listens)
    chunks = np.array_split(np.argsort(timestamp, kind="stable"), files)
    out.mkdir(parents=True, exist_ok=True)
    for i, rows in enumerate(chunks):
        name = "events.jsonl" if i == len(chunks) - 1 else f"events.jsonl.{len(chunks) - 1 - i}"
        with atomic_path(out / name) as tmp, tmp.open("w", encoding="utf-8") as f:
            for u, t, x, ts, end, rec in zip(
                user[rows].tolist(),
                track[rows].tolist(),
                time[rows].tolist(),
                timestamp[rows].tolist(),
                last[rows].tolist(),
                recommendation[rows].tolist(),
                strict=True,
            ):
                if end:
                    f.write(
                        f'{{"message": "last", "timestamp": {ts}, "user": {u}, "track": {t}, '
                        f'"time": {x}, "latency": 0.001, "experiments": {{"HW_2": "C"}}}}\n'
                    )
                else:
                    f.write(
                        f'{{"message": "next", "timestamp": {ts}, "user": {u}, "track": {t}, '
                        f'"time": {x}, "latency": 0.001, "recommendation": {rec}, '
                        f'"experiments": {{"HW_2": "C"}}}}\n'
                    )
    return spec.listens


def generate(out_data: Path, out_logs: Path, spec: SyntheticSpec, seed: int, files: int = 1) -> SyntheticWorld:
    """Write a catalog into `out_data` and logs into `out_logs`; everything from one seed."""
    rng = np.random.default_rng(seed)
    world = make_world(spec, rng)
    write_catalog(world, out_data, rng)
    write_logs(world, spec, out_logs, rng, files=files)
    return world
