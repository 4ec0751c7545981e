"""The export botify loads: its three files, best first, never an excluded track, short lists kept short."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from botify.data_files import read_fingerprint
from botify.load import read_recommendations, read_vectors
from models.export import export
from models.recommend import Scorer


def test_the_export_is_best_first_without_excluded_tracks_and_short_when_few_are_left(tmp_path: Path) -> None:
    # items 0..4 score 5, 4, 3, 2, 1 for every user (the item bias; one-dimensional vectors add 0)
    scorer = Scorer(
        user_vectors=np.zeros((3, 1), dtype=np.float32),
        item_vectors=np.arange(5, dtype=np.float32).reshape(5, 1),
        item_bias=np.array([5, 4, 3, 2, 1], dtype=np.float32),
    )
    heard = sp.csr_matrix(np.array([[1, 1, 1, 1, 0], [1, 0, 0, 0, 0], [0, 0, 0, 0, 0]], dtype=np.float32))
    done = export(tmp_path, "lightfm", scorer, np.array([10, 20, 30]), 3, heard, "f00d")
    lines = [json.loads(line) for line in done.recommendations.read_text().splitlines()]
    assert lines == [
        {"user": 10, "tracks": [4]},  # heard all but one: one track, no padding
        {"user": 20, "tracks": [1, 2, 3]},
        {"user": 30, "tracks": [0, 1, 2]},
    ]
    assert list(read_recommendations(done.recommendations, 5)) == [(10, [4]), (20, [1, 2, 3]), (30, [0, 1, 2])]
    assert read_vectors(done.vectors, 5).tolist() == [[0.0], [1.0], [2.0], [3.0], [4.0]]  # row i = track i
    assert read_fingerprint(done.recommendations) == "f00d"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["lightfm.catalog.json", "lightfm.jsonl", "lightfm.npy"]
