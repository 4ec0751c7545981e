"""Optuna search over LightFM hyperparameters, maximising validation precision@10.

TPE (seeded) proposes parameters; every epoch reports the validation metric so a median pruner can
stop hopeless trials early. The study lives in a SQLite file, or in a database server given by URL
(`postgresql://...`, `mysql+pymysql://...`) for workers on several machines: a rerun resumes it (only
the missing trials run) and several `python -m models tune` workers can share it. The study's name
fingerprints the training data, the validation users every trial is scored on (`--eval-users`), k, the epoch
budget and the patience, so one storage never mixes trials scored differently.
"""

from __future__ import annotations

import fcntl
import hashlib
import re
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna
import scipy.sparse as sp
import sqlalchemy.engine
import sqlalchemy.exc
from optuna.study import MaxTrialsCallback
from optuna.trial import TrialState

from models.errors import Diverged, InputError
from models.interrupt import held_interrupt
from models.training import Epoch, Evaluator, LightFMParams, fit

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


@dataclass(frozen=True)
class TuneConfig:
    """Budget and reproducibility of one tuning run."""

    storage: str  # a SQLite file's path, or a database URL (see `is_database_url`)
    name: str = "lightfm"  # the study's name starts with it; the rest fingerprints the problem
    trials: int = 30
    epochs: int = 20
    patience: int = 3
    threads: int = 1
    seed: int = 0


@dataclass(frozen=True)
class TuneResult:
    """The best trial of the study (over all its workers and runs) and what this run did."""

    params: LightFMParams
    value: float
    best_epoch: int
    random_state: int  # the best trial's LightFM seed: refitting with it (1 thread) reproduces the trial
    study_name: str
    finished_trials: int
    pruned_trials: int
    new_trials: int  # run by this call (pruned ones included)
    seconds: float


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """An inter-process lock (flock on a file beside the study)."""
    with lock_path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def is_database_url(storage: str) -> bool:
    """`dialect[+driver]://...` names a database (SQLite included); anything else is a SQLite file's path."""
    return re.match(r"^[a-z][a-z0-9+]*://", storage) is not None


@contextmanager
def creating_storage(storage: str) -> Iterator[optuna.storages.RDBStorage]:
    """The study's storage, held so that workers starting together do not both create its tables or both
    enqueue the default parameters: a SQLite file is locked (a file lock beside it) until the block ends. A
    database server has no file to lock: `load_if_exists` settles which worker creates the study, and workers
    starting in the same instant may both enqueue the defaults (one extra trial)."""
    if is_database_url(storage):
        yield _rdb_storage(storage, storage)
        return
    path = Path(storage).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(path.with_name(path.name + ".lock")):
        yield _rdb_storage(storage, sqlite_url(path), engine_kwargs={"connect_args": {"timeout": 60}})


def sqlite_url(path: Path) -> str:
    """The URL of the SQLite file `path`, whatever its characters: a SQLite URI filename, quoted for SQLite and again
    for the URL (`sqlite:///PATH` took a `?` for a query and made the file elsewhere, `%41` for `A`, and a `{` for a
    field of Optuna's URL template)."""
    database = "file:" + urllib.parse.quote(str(path))
    return sqlalchemy.engine.URL.create("sqlite", database=database, query={"uri": "true"}).render_as_string(
        hide_password=False
    )


def _rdb_storage(given: str, url: str, **options: object) -> optuna.storages.RDBStorage:
    """Optuna's storage at `url`; a URL it cannot open (unknown dialect, driver not installed, server
    unreachable, not a database) is an InputError naming what was given."""
    try:
        return optuna.storages.RDBStorage(url, **options)
    except (ImportError, sqlalchemy.exc.SQLAlchemyError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(f"cannot open the Optuna storage {without_password(given)!r}: {reason}") from None
    except (KeyError, IndexError, ValueError) as error:  # a URL Optuna's `str.format` or SQLAlchemy cannot read
        if "{" in url or "}" in url:  # Optuna fills the URL in as a template first
            reason = "Optuna reads '{' and '}' in a URL as a template: write them '{{' and '}}'"
        else:  # a port or a query value that is not a number, say
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(f"cannot open the Optuna storage {without_password(given)!r}: {reason}") from None


def without_password(storage: str) -> str:
    """The storage as it may be printed: a database URL's password masked."""
    if not is_database_url(storage):
        return storage
    try:
        return sqlalchemy.engine.make_url(storage).render_as_string(hide_password=True)
    except (sqlalchemy.exc.ArgumentError, ValueError):  # ValueError: a port that is not a number
        return storage.split("://", 1)[0] + "://..."


def suggest(trial: optuna.Trial) -> LightFMParams:
    """The search space: the course's parameters, over ranges that contain the course's grid."""
    return LightFMParams(
        loss=trial.suggest_categorical("loss", ["warp", "bpr"]),
        no_components=trial.suggest_int("no_components", 10, 128, log=True),
        learning_rate=trial.suggest_float("learning_rate", 1e-4, 0.2, log=True),
        max_sampled=trial.suggest_int("max_sampled", 5, 100, log=True),
        user_alpha=trial.suggest_float("user_alpha", 1e-8, 1e-3, log=True),
        item_alpha=trial.suggest_float("item_alpha", 1e-8, 1e-3, log=True),
    )


def study_name(
    prefix: str, train: sp.csr_matrix, item_features: sp.csr_matrix, evaluator: Evaluator, epochs: int, patience: int
) -> str:
    """A name that changes whenever the problem being tuned changes: what is trained on, what is scored and how
    (the monitored users, k, the matrix of positives they are scored against), the epochs and the patience."""
    digest = hashlib.sha256()
    for matrix in (train, item_features, evaluator.train, evaluator.valid):
        matrix = matrix.tocsr()
        matrix.sort_indices()
        for part in (np.asarray(matrix.shape), matrix.indptr, matrix.indices, matrix.data):
            digest.update(np.ascontiguousarray(part).tobytes())
    digest.update(np.ascontiguousarray(evaluator.rows, dtype=np.int64).tobytes())
    digest.update(f"k={evaluator.k} epochs={epochs} patience={patience}".encode())
    return f"{prefix}-{digest.hexdigest()[:12]}"


def tune(
    train: sp.csr_matrix,
    item_features: sp.csr_matrix,
    evaluator: Evaluator,
    config: TuneConfig,
    progress: bool = False,
) -> TuneResult:
    """Run the study until it holds `config.trials` finished trials; return its best."""
    start = time.perf_counter()
    name = study_name(config.name, train, item_features, evaluator, config.epochs, config.patience)
    with held_interrupt() as interrupt:  # Ctrl-C stops at a point where the study's storage is consistent
        with creating_storage(config.storage) as storage:
            study = optuna.create_study(
                study_name=name,
                storage=storage,
                direction="maximize",
                load_if_exists=True,
                pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=3),
            )
            if not study.trials:
                study.enqueue_trial(LightFMParams().as_dict())
        done = len(study.get_trials(deepcopy=False, states=FINISHED))
        # A resumed run must not replay the first run's random start-up proposals: the seed moves on.
        study.sampler = optuna.samplers.TPESampler(
            seed=config.seed + done, n_startup_trials=max(2, min(10, config.trials // 3))
        )

        ran: list[int] = []  # trials this process ran (other workers may share the study)

        def objective(trial: optuna.Trial) -> float:
            interrupt.check()
            ran.append(trial.number)
            params = suggest(trial)

            def report(epoch: Epoch) -> None:
                interrupt.check()
                trial.report(epoch.metrics.precision, epoch.epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned

            random_state = config.seed + trial.number
            trial.set_user_attr("random_state", random_state)
            try:
                fitted = fit(
                    params,
                    train,
                    item_features,
                    config.epochs,
                    config.threads,
                    random_state=random_state,
                    evaluator=evaluator,
                    patience=config.patience,
                    on_epoch=report,
                    desc=f"trial {trial.number}",
                )
            except Diverged as error:  # a point of the search space that cannot train: the study goes on
                raise optuna.TrialPruned(str(error)) from None
            trial.set_user_attr("best_epoch", fitted.best_epoch)
            return fitted.best.precision

        remaining = config.trials - done
        if remaining > 0:
            study.optimize(
                objective,
                n_trials=remaining,
                callbacks=[MaxTrialsCallback(config.trials, states=FINISHED)],
                show_progress_bar=progress,
            )
        interrupt.check()
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        raise InputError(f"study {name} has no completed trial: every one was pruned or diverged (more --trials?)")
    best = study.best_trial
    finished = study.get_trials(deepcopy=False, states=FINISHED)
    return TuneResult(
        params=LightFMParams(**best.params),
        value=float(best.value),
        best_epoch=int(best.user_attrs["best_epoch"]),
        random_state=int(best.user_attrs.get("random_state", config.seed + best.number)),
        study_name=name,
        finished_trials=len(finished),
        pruned_trials=sum(t.state == TrialState.PRUNED for t in finished),
        new_trials=len(ran),
        seconds=time.perf_counter() - start,
    )
