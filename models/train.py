"""The offline pipeline: logs -> positives -> item features -> (Optuna) -> LightFM -> report -> export.

Two LightFM models are trained, each tuned in its own Optuna study (or both with the given parameters): one
with item features (what HW_2's treatment serves as `lightfm`) and one with identity features only
(`lightfm_nofeat`), so the
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
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from botify.connection import NoRedis, check_answers
from botify.data_files import DataError, read_top_tracks, read_tracks
from botify.settings import Settings
from models.atomic import AtomicFiles, atomic_files, made_folder, write_text
from models.catalog import Catalog, read_catalog
from models.errors import InputError
from models.export import Exported, export_models
from models.features import LightFMData, identity_only, item_features, lightfm_data
from models.logs import Listens, read_listens
from models.positives import Interactions, PositivesConfig, build_interactions, smaller_world_note
from models.recommend import Scorer
from models.report import plot_learning_curves, write_report
from models.training import Evaluator, Fitted, LightFMParams, fit
from models.tuning import TuneConfig, TuneResult, tune

log = logging.getLogger(__name__)

FEATURES, NO_FEATURES = "lightfm", "lightfm_nofeat"
MODELS = (NO_FEATURES, FEATURES)
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
    study: str | None = None  # Optuna storage: a SQLite file's path or a database URL
    seed: int = 0
    top_k: int = 100
    eval_users: int = 2000  # validation users scored every epoch (early stopping, pruning), at most half; 0 = half
    refit: bool = True
    load: bool = False
    progress: bool = False

    @property
    def study_storage(self) -> str:
        return self.study or str(self.out / "study.db")


@dataclass(frozen=True)
class Seeds:
    """Every random choice of a run, derived from its one seed (the split must match across workers)."""

    split: int
    tune: dict[str, int]
    fit: dict[str, int]
    refit: dict[str, int]

    @classmethod
    def derive(cls, seed: int) -> Seeds:
        values = np.random.default_rng(seed).integers(2**31 - 1, size=1 + 3 * len(MODELS)).tolist()
        per_model = [dict(zip(MODELS, values[i : i + len(MODELS)], strict=True)) for i in range(1, len(values), 2)]
        return cls(split=values[0], tune=per_model[0], fit=per_model[1], refit=per_model[2])


@dataclass(frozen=True)
class Prepared:
    """The inputs every later step shares."""

    listens: Listens
    catalog: Catalog
    interactions: Interactions
    datasets: dict[str, LightFMData]  # per model name: the Dataset and item features it trains with
    evaluator: Evaluator  # the validation users no choice looked at: the report
    monitor: Evaluator  # the others: every epoch of training and tuning


def read_inputs(data: Path, logs: Sequence[Path], progress: bool = False) -> tuple[Catalog, Listens]:
    """The catalog of the world folder `data` and the listens of the log files and folders `logs`."""
    catalog = read_catalog(data)
    return catalog, read_listens(list(logs), progress=progress)


def prepare_from(
    catalog: Catalog, listens: Listens, positives: PositivesConfig, eval_users: int, rng: np.random.Generator
) -> Prepared:
    """Build positives, the split, both feature matrices and the evaluator from what `read_inputs` read."""
    note = smaller_world_note(listens, catalog.size)
    if note:
        log.warning("%s", note)
    try:
        interactions = build_interactions(listens, catalog.size, positives, rng)
    except InputError as error:
        if listens.bad_lines:
            raise InputError(f"{error} ({listens.bad_lines} malformed log lines skipped)") from None
        raise
    if listens.bad_lines:
        log.warning("skipped %d malformed log lines of %d", listens.bad_lines, listens.lines)
    features = item_features(catalog)
    n_users = len(interactions.users)
    validation = Evaluator(interactions.train, interactions.valid, interactions.eval_users())
    if len(validation.rows) < 2:
        raise InputError(
            "fewer than 2 users have both training and validation positives (one to tune on, one to report on): "
            "the logs are too small"
        )
    monitor, held_out = validation.split(eval_users, rng)
    return Prepared(
        listens=listens,
        catalog=catalog,
        interactions=interactions,
        datasets={
            NO_FEATURES: lightfm_data(n_users, identity_only(features)),
            FEATURES: lightfm_data(n_users, features),
        },
        evaluator=held_out,
        monitor=monitor,
    )


def prepare(config: TrainConfig, rng: np.random.Generator) -> Prepared:
    """Read logs and catalog, build positives, the split, both feature matrices and the evaluator."""
    catalog, listens = read_inputs(config.data, config.logs, config.progress)
    return prepare_from(catalog, listens, config.positives, config.eval_users, rng)


def run_tuning(config: TrainConfig, prepared: Prepared, model: str, seed: int) -> TuneResult:
    """Tune one model (its own study in the shared study storage)."""
    return tune(
        prepared.interactions.train,
        prepared.datasets[model].item_features,
        prepared.monitor,
        TuneConfig(
            storage=config.study_storage,
            name=model,
            trials=config.trials,
            epochs=config.epochs,
            patience=config.patience,
            threads=config.threads,
            seed=seed,
        ),
        progress=config.progress,
    )


def save_params(path: Path, params: dict[str, LightFMParams], files: AtomicFiles | None = None) -> None:
    """params.json: the best parameters of each model, by model name."""
    write_text(path, json.dumps({name: p.as_dict() for name, p in params.items()}, indent=2) + "\n", files)


def load_params(path: Path) -> dict[str, LightFMParams]:
    """Parameters from a params.json (by model name, or one flat set used for both models)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if set(raw) <= set(MODELS):
            return {name: LightFMParams(**raw.get(name, {})) for name in MODELS}
        return dict.fromkeys(MODELS, LightFMParams(**raw))
    except (OSError, ValueError, TypeError, AttributeError) as error:
        raise InputError(f"cannot use parameters from {path}: {error}") from None


def botify_load_command(data: Path, exports: dict[str, Exported]) -> list[str]:
    """The `python -m botify load` call that publishes the exported sets (and their .npy vectors)."""
    recs = [f"{name}={exported.recommendations}" for name, exported in exports.items()]
    return [sys.executable, "-m", "botify", "load", "--data", str(data), "--recs", *recs]


def botify_load(data: Path, exports: dict[str, Exported]) -> None:
    """Run `botify load` in a subprocess: the CLI users run, with its checks, on the Redis it would use; what it
    says (which Redis it published to) shows as it goes, its error as this command's one line."""
    done = subprocess.run(botify_load_command(data, exports), stderr=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        raise InputError(f"botify load failed: {lines[-1] if lines else f'exit code {done.returncode}'}")


def check_redis() -> None:
    """For `--load`: the Redis that `botify load` will publish to answers (`REDIS_URL`; without it, the load starts
    the embedded one of BOTIFY_DATA_DIR itself), before minutes of training."""
    try:
        settings = Settings.from_env()
        if settings.redis_url:
            check_answers(settings.redis_url)
    except ValueError as error:  # a BOTIFY_* variable botify load would refuse too
        raise InputError(f"--load: {error}") from None
    except NoRedis as error:
        raise InputError(f"--load: {error}; nothing was trained") from None


def check_world(data: Path) -> None:
    """For `--load`: the world `botify load` will publish reads as the service needs it (an artist and a title for
    every track, `top_tracks.json`), before minutes of training; training itself needs neither."""
    try:
        read_top_tracks(data / "top_tracks.json", len(read_tracks(data / "tracks.json")))
    except DataError as error:
        raise InputError(f"--load: {error}; nothing was trained") from None


def _model_row(fitted: Fitted, evaluator: Evaluator) -> dict[str, Any]:
    return {
        **evaluator(fitted.scorer()).as_dict(),
        "best_epoch": fitted.best_epoch,
        "stopped_early": fitted.stopped_early,
        "fit_seconds_per_epoch": fitted.fit_seconds_per_epoch,
    }


def train(config: TrainConfig) -> dict[str, Any]:
    """Run the whole pipeline; returns the report (also written to `config.out`)."""
    started = time.perf_counter()
    if config.tune and config.params is not None:
        raise InputError("--params is used only with --no-tune (tuning chooses the parameters otherwise)")
    # Input that is wrong stops before minutes of reading logs: the parameters, the world and Redis to load into,
    # then the output folder.
    params = load_params(config.params) if config.params else dict.fromkeys(MODELS, LightFMParams())
    if config.load:
        check_world(config.data)
        check_redis()
    with made_folder(config.out):  # a run that fails leaves no empty folder of its own behind
        return _train(config, params, started)


def _train(config: TrainConfig, params: dict[str, LightFMParams], started: float) -> dict[str, Any]:
    """The pipeline once its input is checked and `config.out` is there."""
    seeds = Seeds.derive(config.seed)
    start = time.perf_counter()
    prepared = prepare(config, np.random.default_rng(seeds.split))
    inter = prepared.interactions
    timings: dict[str, float] = {"read + prepare": time.perf_counter() - start}

    tuning: dict[str, Any] = {}
    fit_seeds = dict(seeds.fit)
    if config.tune:
        for name in MODELS:
            result = run_tuning(config, prepared, name, seeds.tune[name])
            params[name], fit_seeds[name] = result.params, result.random_state
            tuning[name] = {k: v for k, v in asdict(result).items() if k != "params"}
            timings[f"tuning {name} ({result.new_trials} new of {result.finished_trials} trials)"] = result.seconds
    fitted: dict[str, Fitted] = {}
    for name, data in prepared.datasets.items():
        fitted[name] = fit(
            params[name],
            inter.train,
            data.item_features,
            config.epochs,
            config.threads,
            fit_seeds[name],
            evaluator=prepared.monitor,
            patience=config.patience,
            progress=config.progress,
            desc=name,
        )
        timings[f"fit {name} ({fitted[name].best_epoch} best of {len(fitted[name].curve)} epochs)"] = sum(
            e.fit_seconds for e in fitted[name].curve
        )

    models = {TITLES["toppop"]: prepared.evaluator(Scorer.popularity(inter.train)).as_dict()}
    models |= {TITLES[n]: _model_row(f, prepared.evaluator) for n, f in fitted.items()}

    final: dict[str, Scorer] = {}
    positives = inter.all  # the refit learns from all of them
    for name, data in prepared.datasets.items():
        model = fitted[name]
        if config.refit:
            start = time.perf_counter()
            model = fit(
                params[name],
                positives,
                data.item_features,
                model.best_epoch,
                config.threads,
                seeds.refit[name],
                progress=config.progress,
                desc=f"refit {name}",
            )
            timings[f"refit {name} on all positives"] = time.perf_counter() - start
        final[name] = model.scorer()
    # Every file of the run (exports, params.json, plot, report) replaces the earlier run's together, or none does.
    with atomic_files() as files:
        exports = export_models(
            config.out,
            final,
            inter.users,
            config.top_k,
            inter.heard,
            prepared.catalog.fingerprint,
            config.progress,
            files,
        )
        for name, exported in exports.items():
            timings[f"export {name} (top-{config.top_k}, {len(inter.users)} users)"] = exported.seconds
        save_params(config.out / "params.json", params, files)
        plot_learning_curves(
            {TITLES[n]: f.curve for n, f in fitted.items()},
            {TITLES["toppop"]: prepared.monitor(Scorer.popularity(inter.train)).precision},
            config.out / "learning_curve.png",
            users=len(prepared.monitor.rows),
            k=prepared.monitor.k,
            files=files,
        )
        timings["total"] = time.perf_counter() - started

        listens = prepared.listens
        report = {
            "k": prepared.evaluator.k,
            "data": {
                "files": listens.files,
                "lines": listens.lines,
                "bad_lines": listens.bad_lines,
                "listens": len(listens),
                "min_time": config.positives.min_time,
                "positive_listens": int((listens.time >= config.positives.min_time).sum()),
                "min_positives": config.positives.min_user_positives,
                "min_track_positives": config.positives.min_track_positives,
                "train": int(inter.train.nnz),
                "valid": int(inter.valid.nnz),
                "users": len(inter.users),
                "eval_users": len(prepared.evaluator.rows),
                "monitored_users": len(prepared.monitor.rows),
                "tracks": prepared.catalog.size,
                "catalog": prepared.catalog.fingerprint,
                "split": config.positives.split,
                "feature_groups": list(prepared.datasets[FEATURES].groups),
            },
            "params": {name: p.as_dict() for name, p in params.items()},
            "tuning": tuning,
            "models": models,
            "curves": {
                n: [{"epoch": e.epoch, "fit_seconds": e.fit_seconds, **e.metrics.as_dict()} for e in f.curve]
                for n, f in fitted.items()
            },
            "exports": {
                n: {
                    "recommendations": e.recommendations.name,
                    "vectors": e.vectors.name,
                    "catalog": e.catalog.name,
                    "users": e.users,
                }
                for n, e in exports.items()
            },
            "refit": config.refit,
            "threads": config.threads,
            "seed": config.seed,
            "timings": timings,
        }
        write_report(config.out, report, files)  # before the load: a load that fails keeps the offline figures
    if config.load:
        start = time.perf_counter()
        botify_load(config.data, exports)
        timings["botify load"] = time.perf_counter() - start
        timings["total"] = time.perf_counter() - started
        write_report(config.out, report)
    return report
