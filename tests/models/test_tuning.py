"""A resumed study only ever holds trials scored the same way; a trial that cannot train does not end it."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import optuna
import pytest
import scipy.sparse as sp
import sqlalchemy
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


def test_a_study_file_goes_where_its_path_says_whatever_its_characters(tmp_path: Path) -> None:
    """The path went into `sqlite:///PATH` as it was: `run?1/study.db` made the file `run` beside the folder, `%41`
    named another folder (`A`), and `{x}` stopped Optuna with a KeyError traceback."""
    train = sp.csr_matrix(np.eye(4, dtype=np.float32))
    evaluator = Evaluator(train, sp.csr_matrix(np.fliplr(np.eye(4, dtype=np.float32))), np.arange(4))
    features = sp.identity(4, format="csr", dtype=np.float32)
    folder = tmp_path / "run?1 #{x}%41 é"
    folder.mkdir()
    config = TuneConfig(storage=str(folder / "study.db"), trials=1, epochs=1)
    assert tune(train, features, evaluator, config).new_trials == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [folder.name]
    assert sorted(p.name for p in folder.iterdir()) == ["study.db", "study.db.lock"]
    assert tune(train, features, evaluator, config).finished_trials == 1  # the rerun finds the study there


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


def test_ctrl_c_at_any_database_commit_stops_tuning_cleanly_and_the_study_resumes(tmp_path: Path) -> None:
    """A Ctrl-C inside Optuna's commit of a trial escaped as UnboundLocalError or AssertionError (a traceback, no
    `models: interrupted`), or left the SQLite file locked. SIGINT is sent at every third commit of a run in turn:
    tuning must stop with KeyboardInterrupt, and a rerun must finish the study from what was stored."""
    rng = np.random.default_rng(0)
    train = sp.csr_matrix((rng.random((30, 40)) < 0.2).astype(np.float32))
    valid = sp.csr_matrix((rng.random((30, 40)) < 0.1).astype(np.float32))
    features = sp.identity(40, format="csr", dtype=np.float32)
    evaluator = Evaluator(train, valid, np.arange(30))
    commits = 0
    interrupt_at: int | None = None

    def on_commit(connection: object) -> None:
        nonlocal commits
        commits += 1
        if commits == interrupt_at:
            os.kill(os.getpid(), signal.SIGINT)

    sqlalchemy.event.listen(sqlalchemy.engine.Engine, "commit", on_commit)
    try:
        tune(train, features, evaluator, TuneConfig(storage=str(tmp_path / "count.db"), trials=2, epochs=1))
        in_a_run = commits
        assert in_a_run > 20
        for interrupt_at in range(1, in_a_run + 1, 3):
            commits = 0
            config = TuneConfig(storage=str(tmp_path / f"study-{interrupt_at}.db"), trials=2, epochs=1)
            with pytest.raises(KeyboardInterrupt):
                tune(train, features, evaluator, config)
            interrupt_at = None
            result = tune(train, features, evaluator, config)
            assert result.finished_trials == 2
            study = optuna.load_study(study_name=result.study_name, storage=f"sqlite:///{config.storage}")
            assert not [t.number for t in study.trials if t.state == TrialState.RUNNING]
    finally:
        sqlalchemy.event.remove(sqlalchemy.engine.Engine, "commit", on_commit)
