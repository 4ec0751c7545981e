"""A resumed study only ever holds trials scored the same way."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from models.training import Evaluator
from models.tuning import study_name


def test_the_study_name_changes_with_how_trials_are_scored() -> None:
    train = sp.csr_matrix(np.eye(4, dtype=np.float32))
    valid = sp.csr_matrix(np.fliplr(np.eye(4, dtype=np.float32)))
    features = sp.identity(4, format="csr", dtype=np.float32)
    evaluator = Evaluator(train, valid, np.arange(4))
    name = study_name("lightfm", train, features, evaluator, 5, 3)
    assert name.startswith("lightfm-")
    assert name == study_name("lightfm", train.copy(), features.copy(), Evaluator(train, valid, np.arange(4)), 5, 3)
    others = {
        "monitored users (--eval-users)": study_name(
            "lightfm", train, features, Evaluator(train, valid, np.arange(3)), 5, 3
        ),
        "k": study_name("lightfm", train, features, Evaluator(train, valid, np.arange(4), k=5), 5, 3),
        "patience": study_name("lightfm", train, features, evaluator, 5, 4),
        "epochs": study_name("lightfm", train, features, evaluator, 6, 3),
        "validation positives": study_name("lightfm", train, features, Evaluator(train, train, np.arange(4)), 5, 3),
    }
    assert [what for what, other in others.items() if other == name] == []
    assert len(set(others.values())) == len(others)
