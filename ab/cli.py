"""`python -m ab report|simulate|aa`: the A/B table from logs, synthetic logs, and the A/A check."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ab.arms import CONTROL, sorted_arms
from ab.errors import ABInputError
from ab.stats import CI_METHODS
from botify.arguments import OneLineParser, bounded, output_folder, path_argument
from botify.event_log import log_folder_holding


def _progress() -> bool:
    return sys.stderr.isatty()


def _mapping(pairs: Sequence[str], flag: str) -> dict[str, float]:
    """`["T1=0.1", "T2=-0.05"]` -> `{"T1": 0.1, "T2": -0.05}`."""
    out: dict[str, float] = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        if name.strip() in out:
            raise ABInputError(f"{flag} names arm {name.strip()} twice")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise ABInputError(f"{flag} {pair!r} is not like T1=0.1") from None
        if not math.isfinite(out[name.strip()]):  # NaN passed the range checks and was written into the log
            raise ABInputError(f"{flag} {pair!r} is not a finite number")
    return out


def _design_split(text: str | None) -> dict[str, float]:
    """The simulated arms and their shares: `--split`'s (a positional one's parts are C, T1, T2, ...), else C and T1
    half and half."""
    from ab.srm import parse_split

    if text is None:
        return {CONTROL: 0.5, "T1": 0.5}
    split = parse_split(text)
    if CONTROL not in split or len(split) < 2:
        raise ABInputError(f"--split {text!r} needs the control arm {CONTROL} and a treatment, e.g. C=50,T1=50")
    return split


def _arm_effects(pairs: Sequence[str], flag: str, split: dict[str, float]) -> dict[str, float]:
    """`--effect`/`--latency-effect`, each on a treatment of the design (effects are relative to the control)."""
    effects = _mapping(pairs, flag)
    treatments = ", ".join(arm for arm in sorted_arms(split) if arm != CONTROL)
    for arm, value in effects.items():
        pair = f"{flag} {arm}={value:g}"
        if arm == CONTROL:
            raise ABInputError(
                f"{pair}: {CONTROL} is the control, the baseline effects are relative to; give the effect to a "
                f"treatment ({treatments})"
            )
        if arm not in split:
            raise ABInputError(
                f"{pair}: no arm {arm!r} in the design (arms: {', '.join(sorted_arms(split))}); --split sets the "
                "arms, e.g. --split 1/1/1 for C, T1, T2"
            )
    return effects


def _report(args: argparse.Namespace) -> int:
    from ab.report import build_report
    from ab.table import render_markdown

    logs = args.logs or [Path("log")]
    holding = log_folder_holding(args.out, [*logs, *(args.pre_logs or [])])
    if holding is not None:  # every file under a log folder is read: the next report would read these as logs
        raise ABInputError(f"--out {args.out} is inside the log folder {holding}: write the report elsewhere")
    report = build_report(
        logs,
        args.experiment,
        args.out,
        pre_logs=args.pre_logs,
        alpha=args.alpha,
        ci=args.ci,
        split=args.split,
        title=args.title,
        progress=_progress(),
    )
    print(render_markdown(report, args.title))
    for warning in report.warnings:
        print(warning, file=sys.stderr)
    print("wrote " + ", ".join(str(p) for p in report.outputs.values()))
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from ab.synthetic import SyntheticDesign, draw_traits, generate_events, write_logs

    split = _design_split(args.split)
    effect = _arm_effects(args.effect, "--effect", split)
    latency = _arm_effects(args.latency_effect, "--latency-effect", split)
    design = SyntheticDesign(
        users=args.users, split=split, effect=effect, latency_effect=latency, experiment=args.experiment
    )
    rng = np.random.default_rng(args.seed)
    traits = draw_traits(design, rng)
    folders = {1: args.out} if args.pre_out is None else {1: args.out, 0: args.pre_out}  # by period, as drawn
    logs = (generate_events(design, rng, traits, period=period) for period in folders)
    written = write_logs(list(folders.values()), logs, design.experiment, files=args.files)
    print(f"wrote {len(written)} log file(s): {', '.join(str(p) for p in written)}")
    return 0


def _aa(args: argparse.Namespace) -> int:
    from ab.aa import simulate_aa
    from ab.synthetic import SyntheticDesign

    result = simulate_aa(
        args.runs,
        np.random.default_rng(args.seed),
        SyntheticDesign(users=args.users),
        alpha=args.alpha,
        ci=args.ci,
        progress=_progress(),
    )
    print(result.render())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m ab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    report = sub.add_parser("report", help="the A/B table, JSON and ab_test.png from event logs")
    report.add_argument(
        "--logs",
        nargs="+",
        action="extend",  # `--logs day2 --logs more` reads both (the last one alone, with argparse's default)
        type=path_argument,
        default=None,  # not [log]: `extend` would add to it
        help="log folders or files; every file under a folder is read; may be repeated (default: log)",
    )
    report.add_argument("--experiment", default="HW_2", help="experiment name in the events (default: HW_2)")
    report.add_argument(
        "--out", type=output_folder, default=Path("results/ab"), help="output folder (default: results/ab)"
    )
    report.add_argument(
        "--pre-logs",
        nargs="+",
        action="extend",
        type=path_argument,
        default=None,
        help="logs of a pre-experiment period of the same users, for CUPED; may be repeated",
    )
    report.add_argument("--alpha", type=float, default=0.05, help="significance level (default: 0.05)")
    report.add_argument(
        "--ci",
        choices=CI_METHODS,
        default="delta",
        help="relative-effect CI: delta method (default) or the course's absolute CI / control mean",
    )
    report.add_argument(
        "--split",
        default=None,
        help="design split for the SRM check, e.g. C=50,T1=50, or 50/50 for C, T1 (default: equal over the logs' arms)",
    )
    report.add_argument("--title", default=None, help="title of the table and the plot")
    report.set_defaults(run=_report)

    simulate = sub.add_parser("simulate", help="write seeded synthetic logs with a known effect")
    simulate.add_argument(
        "--out", type=output_folder, required=True, help="new or empty folder for the experiment's log"
    )
    simulate.add_argument(
        "--pre-out", type=output_folder, default=None, help="new or empty folder for a pre-period log (for CUPED)"
    )
    simulate.add_argument("--users", type=bounded(int, 1), default=2000, help="users in the log (default: 2000)")
    simulate.add_argument(
        "--effect",
        nargs="*",
        default=[],
        metavar="ARM=REL",
        help="relative effect on listen time per treatment arm, e.g. T1=0.1",
    )
    simulate.add_argument(
        "--latency-effect",
        nargs="*",
        default=[],
        metavar="ARM=REL",
        help="relative effect on request latency per treatment arm, e.g. T1=0.5",
    )
    simulate.add_argument(
        "--split",
        default=None,
        help="the arms and their shares, e.g. C=50,T1=50, or 1/1/1 for C, T1, T2 (default: C and T1, equal)",
    )
    simulate.add_argument("--experiment", default="HW_2")
    simulate.add_argument("--files", type=int, default=2, help="worker files to spread the log over (default: 2)")
    simulate.add_argument("--seed", type=bounded(int, 0), default=0, help="random seed (default: 0)")
    simulate.set_defaults(run=_simulate)

    aa = sub.add_parser("aa", help="false-positive rate of the analysis over many seeded A/A experiments")
    aa.add_argument("--runs", type=int, default=400, help="A/A experiments (default: 400)")
    aa.add_argument(
        "--users", type=bounded(int, 2), default=1000, help="users per experiment (default: 1000, at least 40)"
    )
    aa.add_argument("--alpha", type=float, default=0.05, help="significance level (default: 0.05)")
    aa.add_argument("--ci", choices=CI_METHODS, default="delta")
    aa.add_argument("--seed", type=bounded(int, 0), default=0, help="random seed (default: 0)")
    aa.set_defaults(run=_aa)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ABInputError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # a report's files and a simulated log are written whole or not at all
        print("ab: interrupted", file=sys.stderr)
        return 130
