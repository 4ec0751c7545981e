"""Listens -> positive (user, track) pairs, filtered to active users/tracks and split for validation.

A positive is a listen of at least `min_time` of the track. Each (user, track) pair counts once, at
its first positive listen. Users and tracks with fewer than the minimum number of positives are
dropped repeatedly until every remaining one has enough (a k-core), so the thresholds hold exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp

from models.errors import InputError
from models.logs import Listens

DAY_MS = 86_400_000
Split = Literal["random", "last-day"]


@dataclass(frozen=True)
class PositivesConfig:
    """How listens become training and validation positives."""

    min_time: float = 0.7
    min_user_positives: int = 5
    min_track_positives: int = 5
    split: Split = "random"
    valid_share: float = 0.3


@dataclass(frozen=True)
class Interactions:
    """Binary user x track matrices; row i is user `users[i]`, column j is catalog track j."""

    users: np.ndarray
    train: sp.csr_matrix
    valid: sp.csr_matrix
    heard: sp.csr_matrix  # every positive of these users, the k-core's dropped tracks too: what no export repeats

    @property
    def all(self) -> sp.csr_matrix:
        """Train and validation positives together (what a model for serving learns from)."""
        return (self.train + self.valid).tocsr()

    def eval_users(self) -> np.ndarray:
        """Rows that can be evaluated: a validation positive and a training history."""
        has_valid = np.diff(self.valid.indptr) > 0
        has_train = np.diff(self.train.indptr) > 0
        return np.flatnonzero(has_valid & has_train)


def check_catalog(listens: Listens, n_tracks: int) -> None:
    """Stop when the logs mention tracks the catalog does not have (logs from another world)."""
    if len(listens) == 0:
        return
    low, high = int(listens.track.min()), int(listens.track.max())
    if low < 0 or high >= n_tracks:
        bad = low if low < 0 else high
        raise InputError(f"catalog mismatch: the logs mention track {bad} but the catalog has tracks 0..{n_tracks - 1}")


def smaller_world_note(listens: Listens, n_tracks: int) -> str | None:
    """A warning when the logs never reach the upper half of the catalog: logs of a smaller world, likely. (Logs carry
    track ids only: logs of another world of the catalog's size cannot be told from them.)"""
    high = int(listens.track.max()) if len(listens) else None
    if high is None or high >= n_tracks // 2:
        return None
    return (
        f"the logs mention tracks up to {high} only, and the catalog has tracks 0..{n_tracks - 1}: are they logs of "
        "another (smaller) world?"
    )


def first_positives(listens: Listens, min_time: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user, track, timestamp) of each pair's first listen with time >= min_time."""
    positive = listens.time >= min_time
    user, track, ts = listens.user[positive], listens.track[positive], listens.timestamp[positive]
    order = np.lexsort((ts, track, user))
    user, track, ts = user[order], track[order], ts[order]
    first = np.ones(len(user), dtype=bool)
    first[1:] = (user[1:] != user[:-1]) | (track[1:] != track[:-1])
    return user[first], track[first], ts[first]


def k_core(user: np.ndarray, track: np.ndarray, min_user: int, min_track: int) -> np.ndarray:
    """Mask of pairs kept once every kept user and track has enough kept pairs."""
    _, user_code = np.unique(user, return_inverse=True)
    keep = np.ones(len(user), dtype=bool)
    while True:
        user_count = np.bincount(user_code[keep], minlength=user_code.max(initial=0) + 1)
        track_count = np.bincount(track[keep], minlength=track.max(initial=0) + 1)
        kept = keep & (user_count[user_code] >= min_user) & (track_count[track] >= min_track)
        if kept.sum() == keep.sum():
            return kept
        keep = kept


def random_holdout(user_code: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """Mask of validation pairs: a random `share` of each user's pairs, never all of them."""
    n = len(user_code)
    order = np.lexsort((rng.random(n), user_code))
    sorted_users = user_code[order]
    starts = np.searchsorted(sorted_users, sorted_users)
    rank = np.arange(n) - starts
    counts = np.bincount(user_code)[sorted_users]
    quota = np.minimum(np.floor(share * counts + 0.5), counts - 1)
    valid = np.zeros(n, dtype=bool)
    valid[order] = rank < quota
    return valid


def last_day_holdout(timestamp: np.ndarray) -> np.ndarray:
    """Mask of validation pairs: first listened within the 24 hours up to the latest positive (`timestamp`: each
    pair's first positive listen; skips after it do not move the window)."""
    valid = timestamp > timestamp.max() - DAY_MS
    if valid.all():
        raise InputError("the logs span less than a day, so --split last-day leaves nothing to train on")
    return valid


def build_interactions(
    listens: Listens, n_tracks: int, config: PositivesConfig, rng: np.random.Generator
) -> Interactions:
    """Positives of the logs as train/validation matrices over the whole catalog."""
    check_catalog(listens, n_tracks)
    user, track, ts = first_positives(listens, config.min_time)
    if len(user) == 0:
        raise InputError(f"no positives: none of {len(listens)} listens has time >= {config.min_time}")
    keep = k_core(user, track, config.min_user_positives, config.min_track_positives)
    if not keep.any():
        raise InputError(
            f"no positives left: no users with >= {config.min_user_positives} and tracks with >= "
            f"{config.min_track_positives} positives among {len(user)} positives (lower --min-positives)"
        )
    users = np.unique(user[keep])
    shape = (len(users), n_tracks)

    def matrix(codes: np.ndarray, tracks: np.ndarray) -> sp.csr_matrix:
        return sp.csr_matrix((np.ones(len(codes), dtype=np.float32), (codes, tracks)), shape=shape)

    of_kept = np.isin(user, users)
    heard = matrix(np.searchsorted(users, user[of_kept]), track[of_kept])
    user_code, track, ts = np.searchsorted(users, user[keep]), track[keep], ts[keep]
    valid = random_holdout(user_code, config.valid_share, rng) if config.split == "random" else last_day_holdout(ts)
    train = matrix(user_code[~valid], track[~valid])
    return Interactions(users=users, train=train, valid=matrix(user_code[valid], track[valid]), heard=heard)
