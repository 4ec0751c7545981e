"""Nearest tracks are worked out at load time, block by block: the same as a brute-force ranking."""

from __future__ import annotations

import numpy as np

from botify import item_space
from botify.item_space import ItemSpace, nearest_tracks


def test_nearest_tracks_match_brute_force_across_blocks(monkeypatch):
    monkeypatch.setattr(item_space, "BLOCK", 64)  # several blocks for 300 tracks
    vectors = np.random.default_rng(0).normal(size=(300, 8))
    nearest = nearest_tracks(vectors, k=10)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    for track in (0, 63, 64, 200, 299):
        scores = unit @ unit[track]
        scores[track] = -np.inf
        assert nearest[track].tolist() == np.argsort(-scores, kind="stable")[:10].tolist()
    assert nearest.shape == (300, 10) and not (nearest == np.arange(300)[:, None]).any()


def test_small_catalogs_and_zero_vectors_are_handled():
    assert nearest_tracks(np.ones((1, 4))).shape == (1, 0)
    vectors = np.zeros((5, 3))
    vectors[0] = [1, 0, 0]
    space = ItemSpace(vectors, nearest_tracks(vectors, k=3))
    assert np.isfinite(space.similarity(np.arange(5), 0)).all()
    assert len(space.nearest(0)) == 3 and 0 not in space.nearest(0)


def test_progress_is_reported_after_each_block_up_to_every_track(monkeypatch):
    monkeypatch.setattr(item_space, "BLOCK", 64)
    calls = []
    nearest_tracks(np.random.default_rng(1).normal(size=(300, 8)), k=5, progress=lambda *call: calls.append(call))
    assert calls == [(64, 300), (128, 300), (192, 300), (256, 300), (300, 300)]
