"""The offline pipeline: logs -> positives -> item features -> (Optuna) -> LightFM -> report -> export.

Two LightFM models are trained with the same hyperparameters: one with item features (what HW_2's
treatment serves as `lightfm`) and one with identity features only (`lightfm_nofeat`), so the
offline table and the online experiment both show what the features add. The reported metrics come
from models trained on the training split; with `refit` the exported models are then retrained on
all positives for the number of epochs early stopping chose.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.atomic import write_text
from models.catalog import Catalog, read_catalog
from models.errors import InputError
from models.export import Exported, export
from models.features import LightFMData, identity_only, item_features, lightfm_data
from models.logs import Listens, read_listens
from models.positives import Interactions, PositivesConfig, build_interactions
from models.recommend import Scorer
from models.report import plot_learning_curves, write_report
from models.training import Evaluator, Fitted, LightFMParams, fit
from models.tuning import TuneConfig, TuneResult, tune

log = logging.getLogger(__name__)

FEATURES, NO_FEATURES = "lightfm", "lightfm_nofeat"
TITLES = {"toppop": "TopPop", NO_FEATURES: "LightFM (identity only)", FEATURES: "LightFM + item features"}


def default_threads() -> int:
    """Cores this process may run on (LightFM's `num_threads`)."""
    return len(os.sched_getaffinity(0))


@dataclass(frozen=True)
class TrainConfig:
    """Everything `python -m models train` can be told."""

    logs: tuple[Path, ...]
    data: Path
    out: Path
    positives: PositivesConfig = field(default_factory=PositivesConfig)
    trials: int = 30
    epochs: int = 20
    patience: int = 3
    threads: int = field(default_factory=default_threads)
    tune: bool = True
    params: Path | None = None
    study: Path | None = None
    seed: int = 0
    top_k: int = 100
    refit: bool = True
    load: bool = False
    progress: bool = False

    @property
    def study_path(self) -> Path:
        return self.study or self.out / "study.db"


@dataclass(frozen=True)
class Seeds:
    """Every random choice of a run, derived from its one seed (the split must match across workers)."""

    split: int
    tune: int
    fit: dict[str, int]
    refit: dict[str, int]

    @classmethod
    def derive(cls, seed: int) -> Seeds:
        values = np.random.default_rng(seed).integers(2**31 - 1, size=6).tolist()
        return cls(split=values[0], tune=values[1], fit=dict(zip((NO_FEATURES, FEATURES), values[2:4], strict=True)),
                   refit=dict(zip((NO_FEATURES, FEATURES), values[4:6], strict=True)))


@dataclass(frozen=True)
class Prepared:
    """The inputs every later step shares."""

    listens: Listens
    catalog: Catalog
    interactions: Interactions
    with_features: LightFMData
    identity: LightFMData
    evaluator: Evaluator
    seconds: float


def prepare(config: TrainConfig, rng: np.random.Generator) -> Prepared:
    """Read logs and catalog, build positives, the split, both feature matrices and the evaluator."""
    start = time.perf_counter()
    catalog = read_catalog(config.data)
    listens = read_listens(list(config.logs), progress=config.progress)
    try:
        interactions = build_interactions(listens, catalog.size, config.positives, rng)
    except InputError as error:
        if listens.bad_lines:
            raise InputError(f"{error} ({listens.bad_lines} malformed log lines skipped)") from None
        raise
    if listens.bad_lines:
        log.warning("skipped %d malformed log lines of %d", listens.bad_lines, listens.lines)
    features = item_features(catalog)
    n_users = len(interactions.users)
    evaluator = Evaluator(interactions.train, interactions.valid, interactions.eval_users())
    if len(evaluator.rows) == 0:
        raise InputError("no user has both training and validation positives: the logs are too small")
    return Prepared(
        listens=listens,
        catalog=catalog,
        interactions=interactions,
        with_features=lightfm_data(n_users, features),
        identity=lightfm_data(n_users, identity_only(features)),
        evaluator=evaluator,
        seconds=time.perf_counter() - start,
    )


def run_tuning(config: TrainConfig, prepared: Prepared, seed: int) -> TuneResult:
    """Tune the with-features model (the one that is served) and save the best parameters."""
    result = tune(
        prepared.interactions.train,
        prepared.with_features.item_features,
        prepared.evaluator,
        TuneConfig(storage=config.study_path, trials=config.trials, epochs=config.epochs,
                   patience=config.patience, threads=config.threads, seed=seed),
        progress=config.progress,
    )
    write_text(config.out / "params.json", json.dumps(result.params.as_dict(), indent=2) + "\n")
    return result


def load_params(path: Path) -> LightFMParams:
    """Parameters from a params.json written by an earlier run (or by hand)."""
    try:
        return LightFMParams(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError) as error:
        raise InputError(f"cannot use parameters from {path}: {error}") from None


def botify_load_command(data: Path, exports: dict[str, Exported]) -> list[str]:
    """The `python -m botify load` call that publishes the exported sets (and their .npy vectors)."""
    recs = [f"{name}={exported.recommendations}" for name, exported in exports.items()]
    return [sys.executable, "-m", "botify", "load", "--data", str(data), "--recs", *recs]


def botify_load(data: Path, exports: dict[str, Exported]) -> None:
    """Run `botify load` in a subprocess (models never imports botify)."""
    done = subprocess.run(botify_load_command(data, exports), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise InputError(f"botify load failed: {lines[-1] if lines else f'exit code {done.returncode}'}")


def _model_row(fitted: Fitted) -> dict[str, Any]:
    return {**fitted.best.as_dict(), "best_epoch": fitted.best_epoch,
            "stopped_early": fitted.stopped_early, "fit_seconds_per_epoch": fitted.fit_seconds_per_epoch}


def train(config: TrainConfig) -> dict[str, Any]:
    """Run the whole pipeline; returns the report (also written to `config.out`)."""
    started = time.perf_counter()
    seeds = Seeds.derive(config.seed)
    prepared = prepare(config, np.random.default_rng(seeds.split))
    inter = prepared.interactions
    config.out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {"read + prepare": prepared.seconds}

    tuning: dict[str, Any] | None = None
    if config.tune:
        result = run_tuning(config, prepared, seeds.tune)
        params = result.params
        tuning = {k: v for k, v in asdict(result).items() if k != "params"}
        timings["tuning"] = result.seconds
    else:
        params = load_params(config.params) if config.params else LightFMParams()
        write_text(config.out / "params.json", json.dumps(params.as_dict(), indent=2) + "\n")

    datasets = {NO_FEATURES: prepared.identity, FEATURES: prepared.with_features}
    fitted: dict[str, Fitted] = {}
    for name, data in datasets.items():
        fitted[name] = fit(
            params, inter.train, data.item_features, config.epochs, config.threads, seeds.fit[name],
            evaluator=prepared.evaluator, patience=config.patience, progress=config.progress, desc=name,
        )
        timings[f"fit {name} ({fitted[name].best_epoch} best of {len(fitted[name].curve)} epochs)"] = sum(
            e.fit_seconds for e in fitted[name].curve
        )

    toppop = prepared.evaluator(Scorer.popularity(inter.train))
    models = {TITLES["toppop"]: toppop.as_dict(), **{TITLES[n]: _model_row(f) for n, f in fitted.items()}}

    exports: dict[str, Exported] = {}
    exclude = inter.all if config.refit else inter.train
    for name, data in datasets.items():
        model = fitted[name]
        if config.refit:
            start = time.perf_counter()
            model = fit(params, exclude, data.item_features, model.best_epoch, config.threads, seeds.refit[name],
                        progress=config.progress, desc=f"refit {name}")
            timings[f"refit {name} on all positives"] = time.perf_counter() - start
        exports[name] = export(config.out, name, model.scorer(), inter.users, config.top_k, exclude,
                               progress=config.progress)
        timings[f"export {name} (top-{config.top_k}, {len(inter.users)} users)"] = exports[name].seconds

    plot_learning_curves(
        {TITLES[n]: f.curve for n, f in fitted.items()}, {TITLES["toppop"]: toppop.precision},
        config.out / "learning_curve.png",
    )
    if config.load:
        start = time.perf_counter()
        botify_load(config.data, exports)
        timings["botify load"] = time.perf_counter() - start
    timings["total"] = time.perf_counter() - started

    listens = prepared.listens
    report = {
        "k": prepared.evaluator.k,
        "data": {
            "files": listens.files, "lines": listens.lines, "bad_lines": listens.bad_lines,
            "listens": len(listens), "min_time": config.positives.min_time,
            "positive_listens": int((listens.time >= config.positives.min_time).sum()),
            "min_positives": config.positives.min_user_positives,
            "train": int(inter.train.nnz), "valid": int(inter.valid.nnz), "users": len(inter.users),
            "eval_users": len(prepared.evaluator.rows), "tracks": prepared.catalog.size,
            "split": config.positives.split, "feature_groups": list(prepared.with_features.groups),
        },
        "params": params.as_dict(),
        "tuning": tuning,
        "models": models,
        "curves": {n: [{"epoch": e.epoch, "fit_seconds": e.fit_seconds, **e.metrics.as_dict()}
                       for e in f.curve] for n, f in fitted.items()},
        "exports": {n: {"recommendations": e.recommendations.name, "vectors": e.vectors.name,
                        "users": e.users} for n, e in exports.items()},
        "refit": config.refit,
        "threads": config.threads,
        "seed": config.seed,
        "timings": timings,
    }
    write_report(config.out, report)
    return report
