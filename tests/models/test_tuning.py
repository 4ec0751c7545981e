"""A resumed study only ever holds trials scored the same way; a trial that cannot train does not end it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import scipy.sparse as sp
from optuna.trial import TrialState

from models.training import Evaluator
from models.tuning import TuneConfig, study_name, tune


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


def test_a_trial_that_diverges_is_pruned_and_the_study_goes_on(tmp_path: Path) -> None:
    """Item features weighted 1e25 make BPR diverge (LightFM raises a ValueError, which stopped the whole study):
    its trials are pruned, and the WARP ones still complete."""
    rng = np.random.default_rng(0)
    train = sp.csr_matrix((rng.random((20, 30)) < 0.2).astype(np.float32))
    valid = sp.csr_matrix((rng.random((20, 30)) < 0.1).astype(np.float32))
    features = sp.identity(30, format="csr", dtype=np.float32) * np.float32(1e25)
    config = TuneConfig(storage=str(tmp_path / "study.db"), trials=3, epochs=2)
    with np.errstate(over="ignore", invalid="ignore"):  # WARP's scores overflow float32 at these weights
        result = tune(train, features, Evaluator(train, valid, np.arange(20)), config)
    assert result.finished_trials == 3 and result.params.loss == "warp"
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.load_study(study_name=result.study_name, storage=storage)
    states = {(t.params["loss"], t.state) for t in study.trials}
    assert ("bpr", TrialState.PRUNED) in states and ("warp", TrialState.COMPLETE) in states
    assert not any(loss == "bpr" and state == TrialState.COMPLETE for loss, state in states)
