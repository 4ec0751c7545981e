"""Offline ranking metrics at k on held-out positives: precision, recall, NDCG and catalog coverage."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class Metrics:
    """Means over evaluated users; coverage is the share of the catalog in anyone's top-k."""

    precision: float
    recall: float
    ndcg: float
    coverage: float
    users: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def hits(top: np.ndarray, relevant: sp.csr_matrix) -> np.ndarray:
    """Boolean [u, k]: is top[i, j] among the relevant items of row i of `relevant`."""
    relevant = relevant.tocsr()
    n_items = relevant.shape[1]
    row_of = np.repeat(np.arange(relevant.shape[0], dtype=np.int64), np.diff(relevant.indptr))
    keys = np.sort(row_of * n_items + relevant.indices)
    wanted = np.arange(top.shape[0], dtype=np.int64)[:, None] * n_items + top
    found = np.searchsorted(keys, wanted)
    return keys[np.minimum(found, len(keys) - 1)] == wanted if len(keys) else np.zeros(top.shape, bool)


def ranking_metrics(top: np.ndarray, relevant: sp.csr_matrix) -> Metrics:
    """Metrics of top-k lists (row i for the user of row i of `relevant`, who has >= 1 relevant item)."""
    users, k = top.shape
    if users == 0:
        return Metrics(precision=0.0, recall=0.0, ndcg=0.0, coverage=0.0, users=0)
    hit = hits(top, relevant)
    n_relevant = np.diff(relevant.tocsr().indptr)
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(discount)[np.minimum(n_relevant, k) - 1]
    return Metrics(
        precision=float(hit.sum(axis=1).mean() / k),
        recall=float((hit.sum(axis=1) / n_relevant).mean()),
        ndcg=float(((hit * discount).sum(axis=1) / ideal).mean()),
        coverage=float(len(np.unique(top)) / relevant.shape[1]),
        users=users,
    )
