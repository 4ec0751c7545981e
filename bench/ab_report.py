"""Benchmark of the A/B report on seeded synthetic logs: where the time goes, events per second.

.venv/bin/python bench/ab_report.py --users 20000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench_arguments import non_negative, positive

from botify.arguments import OneLineParser, bounded


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=bounded(int, 100), default=20000, help="at least 100, so no arm is empty")
    parser.add_argument("--aa-runs", type=positive, default=100)
    parser.add_argument("--seed", type=non_negative, default=0)
    return parser.parse_args(argv)


def main(args: argparse.Namespace) -> None:
    import numpy as np

    from ab.aa import simulate_aa
    from ab.events import read_events
    from ab.metrics import user_metrics
    from ab.report import analyze, build_report
    from ab.synthetic import SyntheticDesign, draw_traits, generate_events, write_log

    design = SyntheticDesign(users=args.users, effect={"T1": 0.05})
    rng = np.random.default_rng(args.seed)
    traits = draw_traits(design, rng)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        events = generate_events(design, rng, traits)
        write_log(events, root / "log", design.experiment)
        write_log(generate_events(design, rng, traits, period=0), root / "pre", design.experiment)
        timings: list[tuple[str, float]] = []

        def timed(name: str, work):  # noqa: ANN001, ANN202
            start = time.perf_counter()
            result = work()
            timings.append((name, time.perf_counter() - start))
            return result

        read, _ = timed("read logs", lambda: read_events([root / "log"], design.experiment))
        users = timed("sessionize + user metrics", lambda: user_metrics(read)).frame
        timed("analyze (no CUPED)", lambda: analyze(users, design.experiment))
        timed(
            "full report with CUPED + files",
            lambda: build_report(root / "log", design.experiment, root / "out", pre_logs=[root / "pre"]),
        )
        timed(
            f"A/A simulation, {args.aa_runs} runs x 1000 users",
            lambda: simulate_aa(args.aa_runs, np.random.default_rng(args.seed), SyntheticDesign(users=1000)),
        )
    print(f"{args.users:,} users, {len(events):,} events")
    for name, seconds in timings:
        rate = f"{len(events) / seconds:,.0f} events/s" if name == "read logs" else ""
        print(f"{name:<40} {seconds:8.2f} s  {rate}")


if __name__ == "__main__":
    main(parse_args())
