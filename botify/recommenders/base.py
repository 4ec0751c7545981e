"""The recommender interface (the course's) and the picks the fallback chain is made of."""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

import numpy as np

from botify.catalog import Catalog


class Recommender(Protocol):
    def recommend_next(self, user: int, prev_track: int, prev_track_time: float) -> int:
        """The next track for `user`, who listened to `prev_track` for a `prev_track_time` fraction."""
        ...


class Pick(Protocol):
    """A fallback step: a track not in `exclude`, or None when it has nothing left to offer."""

    def pick(self, catalog: Catalog, prev_track: int, exclude: Collection[int]) -> int | None: ...


def first_not_in(tracks: np.ndarray, exclude: Collection[int]) -> int | None:
    for track in tracks:
        if int(track) not in exclude:
            return int(track)
    return None
