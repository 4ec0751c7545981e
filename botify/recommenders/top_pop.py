"""TopPop: a random track among the most popular ones; as a fallback, the most popular unplayed one."""

from __future__ import annotations

from collections.abc import Callable, Collection

import numpy as np

from botify.catalog import Catalog
from botify.recommenders.base import first_not_in

TOP_K = 100


class TopPop:
    def __init__(self, catalog: Callable[[], Catalog], rng: np.random.Generator) -> None:
        self.catalog = catalog
        self.rng = rng

    def recommend_next(self, user: int, prev_track: int, prev_track_time: float) -> int:
        top = self.catalog().top_tracks[:TOP_K]
        return int(top[self.rng.integers(len(top))])

    def pick(self, catalog: Catalog, prev_track: int, exclude: Collection[int]) -> int | None:
        return first_not_in(catalog.top_tracks, exclude)
