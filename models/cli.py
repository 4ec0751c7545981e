"""`python -m models train|tune`: the command line of the offline pipeline."""

from __future__ import annotations

import argparse
import copy
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import optuna

from botify.arguments import OneLineParser, bounded, output_folder, path_argument
from botify.event_log import log_folder_holding
from models.errors import InputError
from models.interrupt import second_interrupt_stops_at_once
from models.positives import PositivesConfig
from models.report import markdown_table
from models.train import FEATURES, MODELS, Seeds, TrainConfig, default_threads, prepare, run_tuning, train

THREADS_PER_CORE = 4  # LightFM's threads beyond a few per core only contend (and tens of thousands crash it)
MAX_EPOCHS = 10_000  # --epochs and --patience: far past where any model here stops improving
MAX_TRIALS = 10_000  # Optuna's TPE slows with every trial it has seen; a study this big is not a search any more
MAX_WORKERS = 10_000  # --worker K seeds its sampler K * 1000 past the first: LightFM's seed must stay below 2**32


def storage_argument(text: str) -> str:
    """An argparse type: an Optuna storage (a SQLite file's path or a database URL), not an empty one (it fell back
    to OUT/study.db without a word)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty storage: give a SQLite file or a database URL")
    return text


def _add_data_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--logs",
        type=path_argument,
        nargs="+",
        action="extend",  # `--logs day1 --logs day2` reads both (the last one alone, with argparse's default)
        required=True,
        help="event-log files or folders (every file in a folder is read, rotated ones too; may be repeated)",
    )
    parser.add_argument("--data", type=path_argument, required=True, help="world folder with tracks.json")
    parser.add_argument("--out", type=output_folder, required=True, help="output folder (created if need be)")
    parser.add_argument(
        "--min-time",
        type=bounded(float, 0.0, 1.0),
        default=0.7,
        help="a listen of at least this fraction of the track is a positive (default 0.7)",
    )
    parser.add_argument(
        "--min-positives",
        type=bounded(int, 1),
        default=5,
        help="keep users (and tracks) with at least this many positives (default 5)",
    )
    parser.add_argument(
        "--min-track-positives", type=bounded(int, 1), default=None, help="override --min-positives for tracks"
    )
    parser.add_argument(
        "--split",
        choices=("random", "last-day"),
        default="random",
        help="validation: a random share of each user's positives, or those of the 24 h up to the latest positive",
    )
    parser.add_argument(
        "--valid-share",
        type=bounded(float, 0.01, 0.99),
        default=0.3,
        help="share of each user's positives held out by --split random (default 0.3)",
    )
    parser.add_argument(
        "--trials",
        type=bounded(int, 1, MAX_TRIALS),
        default=30,
        help=f"finished trials a model's Optuna study holds at the end: its total over runs and workers, not "
        f"this run's count (default 30, at most {MAX_TRIALS})",
    )
    parser.add_argument(
        "--epochs",
        type=bounded(int, 1, MAX_EPOCHS),
        default=20,
        help=f"max epochs per trial (and, for train, of each final model; default 20, at most {MAX_EPOCHS})",
    )
    parser.add_argument(
        "--patience",
        type=bounded(int, 1, MAX_EPOCHS),
        default=3,
        help="stop after this many epochs without a better validation precision@10",
    )
    cores = default_threads()
    parser.add_argument(
        "--threads",
        type=bounded(int, 1, THREADS_PER_CORE * cores),
        default=cores,
        help=f"LightFM threads (default: all {cores} cores; at most {THREADS_PER_CORE} per core, "
        f"{THREADS_PER_CORE * cores}, as more only contend; 1 = bit-reproducible)",
    )
    parser.add_argument(
        "--eval-users",
        type=bounded(int, 0),
        default=2000,
        help="validation users scored after every epoch (early stopping, pruning), at most half of them; "
        "the report scores the others; 0 = half (default 2000)",
    )
    parser.add_argument("--seed", type=bounded(int, 0), default=0, help="seed of the split, the models and the tuning")
    parser.add_argument(
        "--study",
        type=storage_argument,
        default=None,
        help="Optuna storage to create or resume: a SQLite file (default OUT/study.db), or a database URL "
        "that workers on several machines share, e.g. postgresql://user:password@host/db (its driver installed)",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=sys.stderr.isatty(),
        help="progress bars on stderr (default: when stderr is a terminal)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m models", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    train_cmd = commands.add_parser(
        "train",
        help="the whole pipeline: positives, features, tuning, LightFM, report, export",
        description="Train LightFM with and without item features on botify logs, export both for botify.",
    )
    _add_data_args(train_cmd)
    train_cmd.add_argument(
        "--no-tune", dest="tune", action="store_false", help="skip Optuna; use --params or the default parameters"
    )
    train_cmd.add_argument("--params", type=Path, default=None, help="params.json to use with --no-tune")
    train_cmd.add_argument("--top-k", type=bounded(int, 1), default=100, help="tracks per user (default 100)")
    train_cmd.add_argument(
        "--refit",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="retrain the exported models on all positives (default on)",
    )
    train_cmd.add_argument(
        "--load", action="store_true", help="publish the export with `python -m botify load --data DATA --recs ...`"
    )
    tune_cmd = commands.add_parser(
        "tune",
        help="only the Optuna study (run several at once to share one study)",
        description="Tune one LightFM model (--model); several workers may share one --study (file or database URL).",
    )
    _add_data_args(tune_cmd)
    tune_cmd.add_argument(
        "--model", choices=MODELS, default=FEATURES, help=f"which model's study to work on (default {FEATURES})"
    )
    tune_cmd.add_argument(
        "--worker",
        type=bounded(int, 0, MAX_WORKERS),
        default=0,
        help=f"worker number: gives each parallel worker its own sampler seed (at most {MAX_WORKERS})",
    )
    return parser


def config_from(args: argparse.Namespace) -> TrainConfig:
    positives = PositivesConfig(
        min_time=args.min_time,
        min_user_positives=args.min_positives,
        min_track_positives=args.min_track_positives or args.min_positives,
        split=args.split,
        valid_share=args.valid_share,
    )
    return TrainConfig(
        logs=tuple(args.logs),
        data=args.data,
        out=args.out,
        positives=positives,
        trials=args.trials,
        epochs=args.epochs,
        patience=args.patience,
        threads=args.threads,
        seed=args.seed,
        study=args.study,
        eval_users=args.eval_users,
        progress=args.progress,
        tune=getattr(args, "tune", True),
        params=getattr(args, "params", None),
        top_k=getattr(args, "top_k", 100),
        refit=getattr(args, "refit", True),
        load=getattr(args, "load", False),
    )


def run_train(config: TrainConfig) -> None:
    report = train(config)
    print(markdown_table(report["models"], report["k"]), end="")
    files = [f for e in report["exports"].values() for f in (e["recommendations"], e["vectors"], e["catalog"])]
    print(
        f"wrote {', '.join(files)}, report.md and learning_curve.png to {config.out} "
        f"in {report['timings']['total']:.1f} s"
    )


def run_tune(config: TrainConfig, model: str, worker: int) -> None:
    seeds = Seeds.derive(config.seed)
    prepared = prepare(config, np.random.default_rng(seeds.split))
    result = run_tuning(config, prepared, model, seeds.tune[model] + 1000 * worker)
    print(
        json.dumps(
            {
                "best_precision@10": result.value,
                "best_epoch": result.best_epoch,
                "params": result.params.as_dict(),
                "study": result.study_name,
                "finished_trials": result.finished_trials,
                "new_trials": result.new_trials,
                "seconds": round(result.seconds, 2),
            },
            indent=2,
        )
    )


class NoInterruptTraceback(logging.Formatter):
    """Optuna logs a trial that Ctrl-C stopped with the interrupt's traceback: its handler's formatter (`inner`) gets
    the trial's line without it. A copy of the record goes without it: other handlers of the record keep the traceback
    (a filter that dropped it dropped it for them too)."""

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()  # a handler without a formatter uses this one

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info and record.exc_info[0] is not None and issubclass(record.exc_info[0], KeyboardInterrupt):
            record = copy.copy(record)
            record.exc_info, record.exc_text = None, None  # exc_text: the traceback another formatter cached
        return self.inner.format(record)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(format="models: %(levelname)s: %(message)s", level=logging.WARNING)
    # Without progress bars (output to a file or a CI log), Optuna's line per finished trial shows how far tuning is.
    optuna.logging.set_verbosity(optuna.logging.WARNING if args.progress else optuna.logging.INFO)
    for handler in logging.getLogger("optuna").handlers:
        if not isinstance(handler.formatter, NoInterruptTraceback):
            handler.setFormatter(NoInterruptTraceback(handler.formatter))
    config = config_from(args)
    try:
        holding = log_folder_holding(config.out, config.logs)
        if holding is not None:  # every file under a log folder is read: the next run would read these as logs
            raise InputError(f"--out {config.out} is inside the log folder {holding}: write the models elsewhere")
        with second_interrupt_stops_at_once():  # the first stops at the next safe point, the second at once
            if args.command == "train":
                run_train(config)
            else:
                run_tune(config, args.model, args.worker)
    except (InputError, OSError) as error:  # OSError: a path that cannot be read or written (--out is a file)
        print(f"models: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # outputs are written whole or not at all; a study resumes from its finished trials
        print("models: interrupted", file=sys.stderr)
        return 130
    return 0
