"""Vectorized top-k (exclusions, deterministic ties) and the offline metrics on hand-checked cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from models.metrics import ranking_metrics
from models.recommend import Scorer, top_k, top_k_blocks, top_k_rows


def scorer(scores: np.ndarray) -> Scorer:
    """A scorer whose user x item scores are exactly `scores` (users as one-hot rows)."""
    users = scores.shape[0]
    return Scorer(
        user_vectors=np.eye(users, dtype=np.float32),
        item_vectors=scores.T.astype(np.float32).copy(),
        item_bias=np.zeros(scores.shape[1], np.float32),
    )


def test_top_k_is_best_first_and_skips_excluded_items() -> None:
    scores = np.array([[0.1, 0.9, 0.5, 0.7], [0.4, 0.3, 0.2, 0.1]])
    exclude = sp.csr_matrix(np.array([[0, 1, 0, 0], [0, 0, 0, 0]], dtype=np.float32))
    assert top_k(scorer(scores), np.array([0, 1]), 2, exclude).tolist() == [[3, 2], [0, 1]]


def test_equal_scores_rank_by_item_id_and_small_blocks_agree() -> None:
    scores = np.zeros((5, 6))
    big = top_k(scorer(scores), np.arange(5), 6)
    assert big.tolist() == [list(range(6))] * 5
    blocks = [top for _, top, _ in top_k_blocks(scorer(scores), np.arange(5), 6, block=2)]
    assert np.concatenate(blocks).tolist() == big.tolist()


def test_exhausted_users_get_minus_infinity_in_the_tail() -> None:
    exclude = sp.csr_matrix(np.array([[1, 1, 0]], dtype=np.float32))
    ((_, top, scores),) = top_k_blocks(scorer(np.array([[3.0, 2.0, 1.0]])), np.array([0]), 3, exclude)
    assert top[0, 0] == 2 and np.isfinite(scores[0]).tolist() == [True, False, False]


def test_popularity_scorer_ranks_by_training_counts() -> None:
    train = sp.csr_matrix(np.array([[1, 0, 1, 0], [0, 0, 1, 1], [0, 0, 1, 0]], dtype=np.float32))
    # items 0 and 3 tie with one positive each: the lower id comes first
    assert top_k(Scorer.popularity(train), np.array([2]), 2, exclude=train).tolist() == [[0, 3]]


def test_metrics_match_hand_computation() -> None:
    top = np.array([[1, 2, 3], [4, 5, 6]])
    relevant = sp.csr_matrix((np.ones(3, np.float32), ([0, 0, 1], [2, 9, 6])), shape=(2, 10))
    m = ranking_metrics(top, relevant)
    assert m.precision == pytest.approx((1 / 3 + 1 / 3) / 2)
    assert m.recall == pytest.approx((1 / 2 + 1 / 1) / 2)
    ndcg_user0 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    ndcg_user1 = (1 / math.log2(4)) / 1
    assert m.ndcg == pytest.approx((ndcg_user0 + ndcg_user1) / 2)
    assert m.coverage == pytest.approx(6 / 10)
    assert m.users == 2


def test_thresholded_top_k_equals_a_full_sort_with_ties_and_exclusions() -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 50, size=(30, 2000)).astype(np.float32)  # many equal scores
    scores[0, :1995] = -np.inf  # a user with only 5 allowed items
    items = np.broadcast_to(np.arange(2000), scores.shape)
    for k in (1, 10, 100):
        top, top_scores = top_k_rows(scores, k)
        expected = np.lexsort((items, -scores), axis=1)[:, :k]
        assert (top == expected).all()
        assert (top_scores == np.take_along_axis(scores, expected, 1)).all()
