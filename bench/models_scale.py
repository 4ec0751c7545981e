"""Benchmark the models pipeline at the course seed's scale: ~3.3M listens, 10k users, 50k tracks.

    .venv/bin/python bench/models_scale.py                 # full scale, a few minutes on 2 cores
    .venv/bin/python bench/models_scale.py --listens 300000 --users 2000 --tracks 10000   # quick look

Logs are synthesized (models.synthetic: botify's log format, rotated files) in a child process so
the peak memory reported is the pipeline's own. Each stage is timed: reading the logs and catalog, then
positives, split and features (the two halves of models.train's `prepare`: `read_inputs`, `prepare_from`),
LightFM epochs with and without item features (plus the per-epoch validation), TopPop on the held-out
validation users, a short Optuna run, and the top-100 export for every user. Results print as Markdown and JSON.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_arguments import non_negative, output_file, output_folder, positive

from botify.arguments import OneLineParser
from models.atomic import write_text
from models.errors import InputError


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthesize(args: argparse.Namespace, data: Path, logs: Path) -> None:
    from models.synthetic import SyntheticSpec, generate

    spec = SyntheticSpec(tracks=args.tracks, users=args.users, listens=args.listens, genres=50)
    generate(data, logs, spec, seed=args.seed, files=3)


def run(args: argparse.Namespace, data: Path, logs: Path) -> dict:
    import numpy as np

    from models.export import export
    from models.positives import PositivesConfig
    from models.recommend import Scorer
    from models.train import FEATURES, prepare_from, read_inputs
    from models.training import LightFMParams, fit
    from models.tuning import TuneConfig, tune

    timings: dict[str, float] = {}

    def timed(name: str, start: float) -> None:
        timings[name] = round(time.perf_counter() - start, 2)

    start = time.perf_counter()
    catalog, listens = read_inputs(data, [logs], progress=True)
    timed("read logs + catalog", start)
    start = time.perf_counter()
    prepared = prepare_from(catalog, listens, PositivesConfig(), args.eval_users, np.random.default_rng(args.seed))
    timed("positives + split + features", start)
    inter, monitor, held_out = prepared.interactions, prepared.monitor, prepared.evaluator

    per_epoch: dict[str, dict[str, float]] = {}
    fitted = {}
    for name, matrices in prepared.datasets.items():
        start = time.perf_counter()
        fitted[name] = fit(
            LightFMParams(),
            inter.train,
            matrices.item_features,
            args.epochs,
            args.threads,
            random_state=args.seed,
            evaluator=monitor,
            progress=True,
            desc=name,
        )
        total = time.perf_counter() - start
        fit_s = fitted[name].fit_seconds_per_epoch
        per_epoch[name] = {
            "fit_s_per_epoch": round(fit_s, 2),
            "eval_s_per_epoch": round(total / len(fitted[name].curve) - fit_s, 2),
            "precision@10": round(fitted[name].best.precision, 4),
        }
    start = time.perf_counter()
    toppop = held_out(Scorer.popularity(inter.train)).precision
    timed(f"one evaluation of the {len(held_out.rows)} held-out validation users (top-10)", start)

    if args.trials:
        with tempfile.TemporaryDirectory() as tmp:
            config = TuneConfig(
                storage=str(Path(tmp) / "study.db"),
                trials=args.trials,
                epochs=args.tune_epochs,
                threads=args.threads,
                seed=args.seed,
            )
            result = tune(inter.train, prepared.datasets[FEATURES].item_features, monitor, config, progress=True)
        timings[f"tuning {args.trials} trials x <= {args.tune_epochs} epochs"] = round(result.seconds, 2)

    with tempfile.TemporaryDirectory() as tmp:
        scorer = fitted[FEATURES].scorer()
        done = export(Path(tmp), FEATURES, scorer, inter.users, 100, inter.train, catalog.fingerprint, progress=True)
    timings[f"export top-100 for {len(inter.users)} users x {catalog.size} tracks"] = round(done.seconds, 2)

    return {
        "scale": {
            "log_lines": listens.lines,
            "listens": len(listens),
            "users": len(inter.users),
            "tracks": catalog.size,
            "train_positives": int(inter.train.nnz),
            "valid_positives": int(inter.valid.nnz),
            "item_features": prepared.datasets[FEATURES].item_features.shape[1],
        },
        "threads": args.threads,
        "monitored_users": len(monitor.rows),
        "timings_s": timings,
        "per_epoch": per_epoch,
        "toppop_precision@10": round(toppop, 4),
        "peak_rss_mib": round(peak_rss_mib(), 1),
    }


def markdown(result: dict) -> str:
    scale = result["scale"]
    lines = [
        f"{scale['listens']:,} listens, {scale['users']:,} users, {scale['tracks']:,} tracks, "
        f"{scale['train_positives']:,} train positives, {result['threads']} threads, "
        f"peak memory {result['peak_rss_mib']:,.0f} MiB",
        "",
        "| stage | seconds |",
        "|---|---|",
        *(f"| {name} | {seconds} |" for name, seconds in result["timings_s"].items()),
        "",
        f"| model | fit s/epoch | validation s/epoch ({result['monitored_users']} users) | precision@10 |",
        "|---|---|---|---|",
        *(
            f"| {name} | {r['fit_s_per_epoch']} | {r['eval_s_per_epoch']} | {r['precision@10']} |"
            for name, r in result["per_epoch"].items()
        ),
        f"| TopPop | | | {result['toppop_precision@10']} |",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listens", type=positive, default=3_300_000)
    parser.add_argument("--users", type=positive, default=10_000)
    parser.add_argument("--tracks", type=positive, default=50_000)
    parser.add_argument("--epochs", type=positive, default=3, help="epochs timed per model (default 3)")
    parser.add_argument("--trials", type=non_negative, default=2, help="Optuna trials to time; 0 skips (default 2)")
    parser.add_argument("--tune-epochs", type=positive, default=2, help="epochs per timed trial (default 2)")
    parser.add_argument("--threads", type=positive, help="LightFM threads (default: the cores it may run on)")
    parser.add_argument(
        "--eval-users",
        type=non_negative,
        default=2000,
        help="users validated every epoch, at most half; 0: half (default 2000)",
    )
    parser.add_argument("--seed", type=non_negative, default=0)
    parser.add_argument("--work", type=output_folder, default=None, help="keep the synthesized world and logs here")
    parser.add_argument("--out", type=output_file, default=None, help="also write the results as JSON here")
    parser.add_argument("--synthesize-only", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(args: argparse.Namespace) -> int:
    import optuna

    from models.train import default_threads

    args.threads = args.threads or default_threads()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        data, logs = work / "data", work / "logs"
        if args.synthesize_only:
            synthesize(args, data, logs)
            return 0
        if not (data / "tracks.json").exists():
            start = time.perf_counter()
            subprocess.run([sys.executable, *sys.argv, "--synthesize-only", "--work", str(work)], check=True)
            print(f"synthesized {args.listens:,} listens in {time.perf_counter() - start:.1f} s", file=sys.stderr)
        try:
            result = run(args, data, logs)
        except InputError as error:  # a world too small to train on: as `python -m models` says it
            print(f"models_scale: error: {error}", file=sys.stderr)
            return 1
    print(markdown(result))
    if args.out:
        write_text(args.out, json.dumps(result, indent=2) + "\n")  # its folder made if missing
    return 0


if __name__ == "__main__":
    sys.exit(main(parse_args()))
