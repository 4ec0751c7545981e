"""Positives: threshold, de-duplication, the k-core filter and the validation splits."""

from __future__ import annotations

import numpy as np
import pytest

from models.errors import InputError
from models.logs import Listens
from models.positives import (
    DAY_MS,
    PositivesConfig,
    build_interactions,
    first_positives,
    k_core,
    random_holdout,
)


def listens(rows: list[tuple[int, int, float, int]]) -> Listens:
    user, track, time, ts = (np.array(col) for col in zip(*rows, strict=True))
    return Listens(
        user=user.astype(np.int64),
        track=track.astype(np.int64),
        time=time.astype(float),
        timestamp=ts.astype(np.int64),
        lines=len(rows),
        bad_lines=0,
        files=1,
    )


def test_positive_needs_min_time_and_counts_once_at_its_first_listen() -> None:
    data = listens([(1, 5, 0.9, 30), (1, 5, 1.0, 10), (1, 6, 0.69, 5), (2, 5, 0.7, 20)])
    user, track, ts = first_positives(data, 0.7)
    assert list(zip(user.tolist(), track.tolist(), ts.tolist(), strict=True)) == [(1, 5, 10), (2, 5, 20)]


def test_k_core_leaves_only_users_and_tracks_with_enough_positives() -> None:
    rng = np.random.default_rng(0)
    user, track = rng.integers(60, size=2000), rng.integers(300, size=2000)
    pairs = np.unique(np.stack([user, track], axis=1), axis=0)
    keep = k_core(pairs[:, 0], pairs[:, 1], 5, 4)
    assert 0 < keep.sum() < len(pairs)
    assert (np.unique(pairs[keep, 0], return_counts=True)[1] >= 5).all()
    assert (np.unique(pairs[keep, 1], return_counts=True)[1] >= 4).all()


def test_random_holdout_takes_a_share_of_every_user_but_never_all() -> None:
    user_code = np.repeat(np.arange(4), [10, 5, 2, 1])
    valid = random_holdout(user_code, 0.3, np.random.default_rng(1))
    assert np.bincount(user_code[valid], minlength=4).tolist() == [3, 2, 1, 0]
    again = random_holdout(user_code, 0.3, np.random.default_rng(1))
    assert (valid == again).all()


def test_last_day_split_holds_out_the_final_24_hours() -> None:
    rows = [(u, t, 1.0, 0) for u in range(3) for t in range(6)]
    rows += [(u, 6 + u, 1.0, 2 * DAY_MS) for u in range(3)]
    inter = build_interactions(
        listens(rows),
        10,
        PositivesConfig(min_user_positives=1, min_track_positives=1, split="last-day"),
        np.random.default_rng(0),
    )
    assert inter.valid.nnz == 3 and inter.train.nnz == 18
    assert [inter.valid[u].indices.tolist() for u in range(3)] == [[6], [7], [8]]
    assert inter.eval_users().tolist() == [0, 1, 2]


def test_last_day_split_of_a_short_log_is_an_input_error() -> None:
    rows = [(u, t, 1.0, 1000 * t) for u in range(2) for t in range(3)]
    config = PositivesConfig(min_user_positives=1, min_track_positives=1, split="last-day")
    with pytest.raises(InputError, match="less than a day"):
        build_interactions(listens(rows), 5, config, np.random.default_rng(0))


def test_matrices_cover_the_whole_catalog_and_keep_external_user_ids() -> None:
    rows = [(u, t, 1.0, t) for u in (100, 7) for t in range(5)]
    inter = build_interactions(listens(rows), 9, PositivesConfig(min_track_positives=1), np.random.default_rng(0))
    assert inter.users.tolist() == [7, 100]
    assert inter.train.shape == inter.valid.shape == (2, 9)
    assert (inter.all.toarray()[:, :5] == 1).all() and inter.all[:, 5:].nnz == 0
    assert not (inter.train.multiply(inter.valid)).nnz


def test_heard_keeps_the_positives_the_k_core_dropped_so_no_export_repeats_them() -> None:
    # users 1 and 2 share tracks 0..4; user 1 also loved track 8, which nobody else heard (dropped by the
    # 2-core); user 3 has too few positives to stay at all; track 6 was only skipped
    rows = [(u, t, 1.0, t) for u in (1, 2) for t in range(5)] + [(1, 8, 0.9, 9), (3, 0, 1.0, 1), (1, 6, 0.2, 10)]
    config = PositivesConfig(min_user_positives=2, min_track_positives=2)
    inter = build_interactions(listens(rows), 9, config, np.random.default_rng(0))
    assert inter.users.tolist() == [1, 2]
    assert inter.all[0].indices.tolist() == [0, 1, 2, 3, 4]
    assert sorted(inter.heard[0].indices.tolist()) == [0, 1, 2, 3, 4, 8]
    assert sorted(inter.heard[1].indices.tolist()) == [0, 1, 2, 3, 4]


def test_no_positives_and_catalog_mismatch_stop_with_a_reason() -> None:
    with pytest.raises(InputError, match="no positives"):
        build_interactions(listens([(1, 1, 0.2, 1)]), 5, PositivesConfig(), np.random.default_rng(0))
    with pytest.raises(InputError, match="catalog mismatch: the logs mention track 5"):
        build_interactions(listens([(1, 5, 1.0, 1)]), 5, PositivesConfig(), np.random.default_rng(0))
    with pytest.raises(InputError, match="no positives left"):
        build_interactions(listens([(1, 1, 1.0, 1)]), 5, PositivesConfig(), np.random.default_rng(0))


def test_k_core_repeats_until_the_thresholds_hold_after_a_cascade() -> None:
    # track 9 has one fan (user 0): without it user 0 has one pair left, so user 0 goes too, and with it track 0's
    # third fan
    keep = k_core(np.array([0, 0, 1, 1, 2, 2]), np.array([0, 9, 0, 1, 1, 0]), 2, 2)
    assert keep.tolist() == [False, False, True, True, True, True]


def test_the_last_day_split_holds_out_exactly_the_final_24_hours() -> None:
    end, hour = 10 * DAY_MS, 3_600_000
    rows = [(u, t, 1.0, 0) for u in range(2) for t in range(4)]
    rows += [(0, 4, 1.0, end - 23 * hour), (1, 5, 1.0, end - 25 * hour), (1, 6, 1.0, end)]
    config = PositivesConfig(min_user_positives=1, min_track_positives=1, split="last-day")
    inter = build_interactions(listens(rows), 8, config, np.random.default_rng(0))
    assert inter.valid[0].indices.tolist() == [4]  # 23 hours before the end: held out
    assert inter.valid[1].indices.tolist() == [6]  # 25 hours before: trained on
    assert 5 in inter.train[1].indices.tolist()


def test_a_random_holdout_never_takes_all_of_a_users_pairs_even_at_a_large_share() -> None:
    user_code = np.repeat(np.arange(3), [1, 2, 4])
    valid = random_holdout(user_code, 0.6, np.random.default_rng(0))
    assert np.bincount(user_code[valid], minlength=3).tolist() == [0, 1, 2]
