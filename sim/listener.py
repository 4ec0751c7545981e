"""The course's listener model as pure functions, so results compare with the course's simulator.

A session keeps one interest embedding ``e``. A recommended track ``r`` is listened for
``round(expit((dot(emb[r], e) - consume_bias) * consume_sharpness) * gamma ** artist_plays, 2)``;
a track already played in the session gets 0. After each step the budget drops by one
when a uniform draw exceeds the listen time; the session ends when the budget reaches 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

DEFAULT_SESSION_BUDGET = 5
DEFAULT_ARTIST_DISCOUNT_GAMMA = 0.8
INTEREST_NEIGHBOURS = 10


@dataclass(frozen=True)
class Listener:
    """One simulated user, as a line of ``users.json``."""

    user: int
    interests: tuple[int, ...]
    consume_bias: float
    consume_sharpness: float
    session_budget: int = DEFAULT_SESSION_BUDGET
    artist_discount_gamma: float = DEFAULT_ARTIST_DISCOUNT_GAMMA


def expit(z: float) -> float:
    """The logistic function, without overflow for large ``|z|``."""
    if z >= 0.0:
        return 1.0 / (1.0 + math.exp(-z))
    ez = math.exp(z)
    return ez / (1.0 + ez)


def appeal(scores: np.ndarray, listener: Listener) -> np.ndarray:
    """Undiscounted, unrounded listen fraction of many tracks at once (what an oracle ranks by)."""
    z = (np.asarray(scores, dtype=np.float64) - listener.consume_bias) * listener.consume_sharpness
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def round_time(value: float) -> float:
    """Round to 2 decimals exactly as ``np.around(value, 2)`` does (scale, round half to even, unscale)."""
    return round(value * 100.0) / 100.0


def listen_time(
    score: float,
    listener: Listener,
    artist_plays: int,
    repeated: bool,
) -> float:
    """Fraction of a recommended track the listener plays.

    ``score`` is the inner product of the track with the session's interest embedding,
    ``artist_plays`` how many times the track's artist was already played in the session.
    """
    if repeated:
        return 0.0
    raw = expit((score - listener.consume_bias) * listener.consume_sharpness)
    return round_time(raw * listener.artist_discount_gamma**artist_plays)


def budget_cost(time: float, draw: float) -> int:
    """Budget the step costs: 1 when the uniform ``draw`` exceeds the listen time, else 0."""
    return 1 if draw > time else 0


def nearest_tracks(embeddings: np.ndarray, query: np.ndarray, k: int = INTEREST_NEIGHBOURS) -> np.ndarray:
    """Ids of the ``k`` tracks with the largest inner product with ``query``, in ascending id order.

    A cheap threshold from a strided sample keeps a short candidate list, then an exact
    partition runs on it; falls back to a full partition when the threshold is too high.
    Exact either way: every track outside the candidates scores below all of them.
    """
    scores = embeddings @ query
    n = scores.shape[0]
    if n <= k:
        return np.arange(n)
    sample = scores[:: max(1, n // 2000)]
    if sample.shape[0] > k:
        threshold = np.partition(sample, -k)[-k]
        candidates = np.flatnonzero(scores >= threshold)
        if candidates.shape[0] >= k:
            return np.sort(candidates[np.argpartition(scores[candidates], -k)[-k:]])
    return np.sort(np.argpartition(scores, -k)[-k:])
