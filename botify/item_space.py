"""A recommendation set's item vectors: cosine similarity and each track's nearest tracks."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

NEIGHBOURS = 100
CACHED_TRACKS = 20_000  # nearest-track lists kept per worker (100 ids each: ~8 MB)


class ItemSpace:
    def __init__(self, vectors: np.ndarray) -> None:
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        self.vectors = (vectors / np.where(norms > 0, norms, 1.0)).astype(np.float32)
        self.nearest = lru_cache(maxsize=CACHED_TRACKS)(self._nearest)

    def __len__(self) -> int:
        return len(self.vectors)

    def similarity(self, tracks: np.ndarray, to: int) -> np.ndarray:
        """Cosine similarity of `tracks` to track `to`, in [-1, 1]."""
        return self.vectors[tracks] @ self.vectors[to]

    def _nearest(self, track: int, k: int = NEIGHBOURS) -> np.ndarray:
        """The `k` tracks most similar to `track` (itself excluded), most similar first."""
        scores = self.vectors @ self.vectors[track]
        scores[track] = -np.inf
        k = min(k, len(scores) - 1)
        top = np.argpartition(-scores, k)[:k]
        return top[np.argsort(-scores[top], kind="stable")].astype(np.int32)
