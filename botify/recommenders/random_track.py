"""Random: any track of the catalog (the course's floor)."""

from __future__ import annotations

from collections.abc import Callable, Collection

import numpy as np

from botify.catalog import Catalog

ATTEMPTS = 32


class RandomTrack:
    def __init__(self, catalog: Callable[[], Catalog], rng: np.random.Generator) -> None:
        self.catalog = catalog
        self.rng = rng

    def recommend_next(self, user: int, prev_track: int, prev_track_time: float) -> int:
        return int(self.rng.integers(self.catalog().size))

    def pick(self, catalog: Catalog, prev_track: int, exclude: Collection[int]) -> int | None:
        for _ in range(ATTEMPTS):
            track = int(self.rng.integers(catalog.size))
            if track not in exclude:
                return track
        return None
