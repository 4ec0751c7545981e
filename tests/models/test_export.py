"""The export botify loads: its three files, best first, never an excluded track, short lists kept short."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from botify.data_files import read_fingerprint
from botify.load import read_recommendations, read_vectors
from models.export import export, export_models
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


def test_models_exported_together_replace_the_earlier_files_only_all_at_once(tmp_path: Path) -> None:
    """A second model that fails while it is written (here: fewer user rows than users) leaves the first model's
    earlier files as they were, not its new ones beside the second's old ones."""

    def scorer(users: int, best: int) -> Scorer:
        bias = np.zeros(5, dtype=np.float32)
        bias[best] = 1.0
        return Scorer(np.zeros((users, 1), dtype=np.float32), np.zeros((5, 1), dtype=np.float32), bias)

    users = np.array([10, 20])
    export_models(tmp_path, {"lightfm": scorer(2, 0), "lightfm_nofeat": scorer(2, 0)}, users, 1, None, "f00d")
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    with pytest.raises(IndexError):
        export_models(tmp_path, {"lightfm": scorer(2, 4), "lightfm_nofeat": scorer(1, 4)}, users, 1, None, "beef")
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == before
    assert json.loads((tmp_path / "lightfm.jsonl").read_text().splitlines()[0])["tracks"] == [0]
    done = export_models(tmp_path, {"lightfm": scorer(2, 4), "lightfm_nofeat": scorer(2, 4)}, users, 1, None, "beef")
    assert [read_fingerprint(e.recommendations) for e in done.values()] == ["beef", "beef"]
    assert json.loads((tmp_path / "lightfm_nofeat.jsonl").read_text().splitlines()[1]) == {"user": 20, "tracks": [4]}
