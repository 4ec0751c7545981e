"""Vectorized top-K: score = user vector . item vector + item bias, seen items excluded.

Users are scored in blocks with one matrix product each (BLAS, all cores); no Python loop runs over
items. The same function ranks for evaluation, for export and for the TopPop baseline (a rank-1
"model" whose item score is the popularity), so all of them rank the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from lightfm import LightFM


@dataclass(frozen=True)
class Scorer:
    """What ranking needs from a model: user vectors, item vectors and item biases."""

    user_vectors: np.ndarray  # [n_users, d] float32
    item_vectors: np.ndarray  # [n_items, d] float32
    item_bias: np.ndarray  # [n_items] float32

    @classmethod
    def from_lightfm(cls, model: LightFM, item_features: sp.csr_matrix) -> Scorer:
        """LightFM's own representations; items are the sum of their features' embeddings."""
        item_bias, item_vectors = model.get_item_representations(item_features)
        _, user_vectors = model.get_user_representations()
        return cls(
            user_vectors=np.ascontiguousarray(user_vectors, dtype=np.float32),
            item_vectors=np.ascontiguousarray(item_vectors, dtype=np.float32),
            item_bias=np.asarray(item_bias, dtype=np.float32),
        )

    @classmethod
    def popularity(cls, train: sp.csr_matrix) -> Scorer:
        """TopPop: every user gets the tracks with the most training positives."""
        counts = np.asarray(train.sum(axis=0), dtype=np.float32).ravel()
        return cls(
            user_vectors=np.ones((train.shape[0], 1), dtype=np.float32),
            item_vectors=counts[:, None],
            item_bias=np.zeros_like(counts),
        )

    def scores(self, rows: np.ndarray) -> np.ndarray:
        """Scores of the given user rows for every item (the user bias does not change a ranking)."""
        return self.user_vectors[rows] @ self.item_vectors.T + self.item_bias


def top_k_blocks(
    scorer: Scorer, rows: np.ndarray, k: int, exclude: sp.csr_matrix | None = None, block: int = 1024
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield (rows, top item ids [b, k] best first, their scores) block by block.

    Excluded items get score -inf; if a user has fewer than k allowed items the tail is -inf.
    Equal scores are ordered by item id, so a ranking is the same on every run.
    """
    k = min(k, scorer.item_vectors.shape[0])
    for start in range(0, len(rows), block):
        chunk = rows[start : start + block]
        scores = scorer.scores(chunk)
        if exclude is not None:
            seen = exclude[chunk]
            scores[np.repeat(np.arange(len(chunk)), np.diff(seen.indptr)), seen.indices] = -np.inf
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        top_scores = np.take_along_axis(scores, top, axis=1)
        order = np.lexsort((top, -top_scores), axis=1)
        top = np.take_along_axis(top, order, axis=1)
        yield chunk, top, np.take_along_axis(top_scores, order, axis=1)


def top_k(scorer: Scorer, rows: np.ndarray, k: int, exclude: sp.csr_matrix | None = None) -> np.ndarray:
    """Top-k item ids [len(rows), k] for the given user rows (see `top_k_blocks`)."""
    blocks = [top for _, top, _ in top_k_blocks(scorer, rows, k, exclude)]
    return np.concatenate(blocks) if blocks else np.empty((0, min(k, scorer.item_vectors.shape[0])), int)
