from __future__ import annotations

import math

import numpy as np
import pytest

from sim.listener import Listener, appeal, budget_cost, expit, listen_time, nearest_tracks, round_time

LISTENER = Listener(user=7, interests=(0,), consume_bias=0.3, consume_sharpness=10.0)


def test_listen_time_matches_the_formula_by_hand():
    # expit((0.5 - 0.3) * 10) = 1 / (1 + e^-2) = 0.8808 -> 0.88
    assert listen_time(0.5, LISTENER, artist_plays=0, repeated=False) == 0.88
    # expit((0.3 - 0.3) * 10) = 0.5 exactly
    assert listen_time(0.3, LISTENER, artist_plays=0, repeated=False) == 0.5
    # expit((0.0 - 0.3) * 10) = 1 / (1 + e^3) = 0.0474 -> 0.05
    assert listen_time(0.0, LISTENER, artist_plays=0, repeated=False) == 0.05


def test_artist_discount_multiplies_by_gamma_per_play():
    # 0.8808 * 0.8 = 0.7046 -> 0.70; * 0.8^2 = 0.5637 -> 0.56; * 0.8^5 = 0.2886 -> 0.29
    assert listen_time(0.5, LISTENER, artist_plays=1, repeated=False) == 0.70
    assert listen_time(0.5, LISTENER, artist_plays=2, repeated=False) == 0.56
    assert listen_time(0.5, LISTENER, artist_plays=5, repeated=False) == 0.29
    strict = Listener(user=1, interests=(0,), consume_bias=0.3, consume_sharpness=10.0, artist_discount_gamma=0.5)
    assert listen_time(0.5, strict, artist_plays=1, repeated=False) == 0.44


def test_repeated_track_listens_zero():
    assert listen_time(0.99, LISTENER, artist_plays=0, repeated=True) == 0.0


def test_round_time_is_numpys_around():
    values = np.random.default_rng(3).random(20000)
    values = np.concatenate([values, np.arange(0, 1.0005, 0.005)])  # the half-way cases
    assert [round_time(float(v)) for v in values] == [float(np.around(v, 2)) for v in values]


def test_expit_is_stable_and_symmetric():
    assert expit(0.0) == 0.5
    assert expit(-1000.0) == 0.0 and expit(1000.0) == 1.0
    assert math.isclose(expit(2.0) + expit(-2.0), 1.0)
    scores = np.array([-0.5, 0.1, 0.3, 0.9])
    expected = [expit((s - 0.3) * 10.0) for s in scores]
    assert np.allclose(appeal(scores, LISTENER), expected)


@pytest.mark.parametrize(("time", "draw", "cost"), [(0.3, 0.5, 1), (0.3, 0.2, 0), (0.0, 0.0, 0), (1.0, 0.999, 0)])
def test_budget_drops_when_the_draw_exceeds_the_listen_time(time, draw, cost):
    assert budget_cost(time, draw) == cost


def test_nearest_tracks_is_exact_top_k():
    rng = np.random.default_rng(0)
    embeddings = rng.standard_normal((5000, 16)).astype(np.float32)
    for q in range(50):
        query = embeddings[q]
        expected = np.sort(np.argsort(-(embeddings @ query), kind="stable")[:10])
        assert nearest_tracks(embeddings, query).tolist() == expected.tolist()
    assert nearest_tracks(embeddings[:4], embeddings[0]).tolist() == [0, 1, 2, 3]
