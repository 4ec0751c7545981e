"""StickyArtist, the course baseline: a random track by the artist of the previous track."""

from __future__ import annotations

from collections.abc import Callable, Collection

import numpy as np

from botify.catalog import Catalog


class StickyArtist:
    def __init__(self, catalog: Callable[[], Catalog], rng: np.random.Generator) -> None:
        self.catalog = catalog
        self.rng = rng

    def recommend_next(self, user: int, prev_track: int, prev_track_time: float) -> int:
        tracks = self.catalog().same_artist_tracks(prev_track)
        return int(tracks[self.rng.integers(len(tracks))])

    def pick(self, catalog: Catalog, prev_track: int, exclude: Collection[int]) -> int | None:
        options = [int(t) for t in catalog.same_artist_tracks(prev_track) if int(t) not in exclude]
        return int(self.rng.choice(options)) if options else None
