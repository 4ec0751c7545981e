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
        """TopPop: no personal part (zero-width vectors), the item bias is the training positives count."""
        counts = np.asarray(train.sum(axis=0), dtype=np.float32).ravel()
        return cls(
            user_vectors=np.zeros((train.shape[0], 0), dtype=np.float32),
            item_vectors=np.zeros((len(counts), 0), dtype=np.float32),
            item_bias=counts,
        )

    def scores(self, rows: np.ndarray) -> np.ndarray:
        """Scores of the given user rows for every item (the user bias does not change a ranking)."""
        return self.user_vectors[rows] @ self.item_vectors.T + self.item_bias


def top_k_rows(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k (item ids, scores) of each row, best first, equal scores by lower item id.

    Sorting or arg-partitioning whole rows is the slow part at 50k items. Instead the k-th best
    score of a strided sample of the columns gives a threshold that at least k items of the row
    reach (so it is never above the true k-th best); only the few items above it are sorted.
    """
    rows_n, items = scores.shape
    k = min(k, items)
    stride = int(np.clip(items // (4 * k), 1, 16))
    sample = scores[:, ::stride]
    threshold = np.partition(sample, sample.shape[1] - k, axis=1)[:, -k]
    rows, cols = np.nonzero(scores >= threshold[:, None])
    counts = np.bincount(rows, minlength=rows_n)
    slot = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
    width = int(counts.max(initial=k))
    candidate_scores = np.full((rows_n, width), -np.inf, dtype=scores.dtype)
    candidate_items = np.full((rows_n, width), items, dtype=np.int64)  # padding sorts after real items
    candidate_scores[rows, slot] = scores[rows, cols]
    candidate_items[rows, slot] = cols
    order = np.lexsort((candidate_items, -candidate_scores), axis=1)[:, :k]
    return np.take_along_axis(candidate_items, order, 1), np.take_along_axis(candidate_scores, order, 1)


def top_k_blocks(
    scorer: Scorer, rows: np.ndarray, k: int, exclude: sp.csr_matrix | None = None, block: int = 1024
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield (rows, top item ids [b, k] best first, their scores) block by block.

    Excluded items get score -inf; if a user has fewer than k allowed items the tail is -inf.
    """
    for start in range(0, len(rows), block):
        chunk = rows[start : start + block]
        scores = scorer.scores(chunk)
        if exclude is not None:
            seen = exclude[chunk]
            scores[np.repeat(np.arange(len(chunk)), np.diff(seen.indptr)), seen.indices] = -np.inf
        top, top_scores = top_k_rows(scores, k)
        yield chunk, top, top_scores


def top_k(scorer: Scorer, rows: np.ndarray, k: int, exclude: sp.csr_matrix | None = None) -> np.ndarray:
    """Top-k item ids [len(rows), k] for the given user rows (see `top_k_blocks`)."""
    blocks = [top for _, top, _ in top_k_blocks(scorer, rows, k, exclude)]
    return np.concatenate(blocks) if blocks else np.empty((0, min(k, scorer.item_vectors.shape[0])), int)
