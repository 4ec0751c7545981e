"""A course-sized synthetic catalog and LightFM-shaped recommendation set for the serving benchmarks.

The serving path does not care where recommendations come from, only about their shape:
tens of thousands of tracks, a few thousand artists, a 100-track candidate list per user and
item vectors beside it. Everything comes from one seeded generator, so every run serves the same data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class WorldSize:
    tracks: int = 50_000
    artists: int = 5_000
    users: int = 10_000
    candidates: int = 100
    dim: int = 32

    @property
    def requesting_users(self) -> int:
        """The ids requests are drawn from: a sixth are users without a list (the fallback path), every benchmark."""
        return int(self.users * 1.2)


@dataclass(frozen=True)
class World:
    data_dir: Path  # tracks.json, top_tracks.json (the loader's --data)
    recs: Path  # recs/lightfm.jsonl with lightfm.npy beside it (the loader's --recs lightfm=...)
    size: WorldSize


def write_world(out: Path, seed: int, size: WorldSize = WorldSize()) -> World:
    """Write the world once; an existing one of the same size and seed is reused (it is deterministic by seed)."""
    import numpy as np

    recs = out / "recs" / "lightfm.jsonl"
    stamp = out / "size.json"
    made = {**size.__dict__, "seed": seed}
    if stamp.exists() and json.loads(stamp.read_text()) == made:
        return World(out, recs, size)
    rng = np.random.default_rng(seed)
    recs.parent.mkdir(parents=True, exist_ok=True)
    artist_of = rng.integers(size.artists, size=size.tracks)
    with open(out / "tracks.json", "w", encoding="utf-8") as tracks:
        for track, artist in enumerate(artist_of.tolist()):
            tracks.write(json.dumps({"track": track, "artist": f"Artist {artist}", "title": f"Track {track}"}) + "\n")
    (out / "top_tracks.json").write_text(json.dumps(rng.permutation(size.tracks).tolist()))
    with open(recs, "w", encoding="utf-8") as lists:
        for user in range(size.users):
            tracks = rng.choice(size.tracks, size=size.candidates, replace=False).tolist()
            lists.write(json.dumps({"user": user, "tracks": tracks}) + "\n")
    np.save(recs.with_suffix(".npy"), rng.normal(size=(size.tracks, size.dim)).astype(np.float32))
    stamp.write_text(json.dumps(made))
    return World(out, recs, size)
