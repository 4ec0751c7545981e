"""`python -m pipeline`: everything end to end, on an embedded Redis (or `REDIS_URL`).

1. world: `sim.world` writes a seeded catalog and users;
2. day 1: botify serves the EXPLORE experiment (the course's baselines) to simulated listeners over HTTP;
3. models: LightFM (with and without item features) tuned and trained on day 1's log, loaded into botify;
4. day 2: the HW_2 A/B test (StickyArtist vs LightFM session-aware), then HW_2_ARMS (where the win comes from)
   and AA (StickyArtist in both arms: the analysis must find nothing);
5. ab: the A/B tables and plots, and the share of the oracle's headroom HW_2's treatment captures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from botify.connection import check_answers
from botify.embedded_redis import EmbeddedRedis
from botify.process import Claimed, ServiceProcess, claim, free_port, stop_with_parent
from botify.registry import EXPERIMENTS
from botify.settings import Settings
from models.atomic import write_text
from sim.cli import Parser, path_argument


@dataclass(frozen=True)
class Scale:
    world: tuple[str, ...]  # sim.world size flags
    day1_episodes: int
    episodes: int  # sessions of each experiment on day 2
    trials: int
    epochs: int
    min_positives: int = 5  # the models' k-core: users and tracks with at least this many positives


SCALES = {
    # A smoke test of the whole loop in about 30 s (the test suite runs it).
    # Its ~1,900 positives over 1,000 tracks are too thin for a 5-core: some runs' core comes out empty.
    "tiny": Scale(
        ("--tracks", "1000", "--users", "200"), day1_episodes=1_500, episodes=300, trials=1, epochs=2, min_positives=3
    ),
    "small": Scale(("--preset", "small"), day1_episodes=12_000, episodes=2_000, trials=5, epochs=10),
    # The seed's scale: 50k tracks, 10k users, ~3.3M listens on day 1, Optuna 30 x 20.
    "full": Scale(("--preset", "default"), day1_episodes=470_000, episodes=20_000, trials=30, epochs=20),
}


@dataclass(frozen=True)
class Concurrency:
    """How many service workers, simulator processes and LightFM threads a run uses."""

    service_workers: int
    simulator_processes: int
    lightfm_threads: int | None  # None: every core


# The default: one worker answering one sequential simulator, LightFM on one thread. The service's random picks are
# seeded per worker, and draw in the order the requests come; LightFM's threads update the model without locks. So
# a seed gives the same logs, models and tables (the measured latencies aside) on every run.
REPRODUCIBLE = Concurrency(service_workers=1, simulator_processes=1, lightfm_threads=1)
# --parallel: simulated days in half the time on 2 cores; which worker answers which request, and LightFM's
# updates, then vary from run to run, and so do the figures, by a few percent. Two keep-alive simulator connections
# per service worker: gunicorn's reuse_port sockets spread connections by the kernel's hash, which often put one
# process per worker on the same worker (reconnecting between sessions spreads them again, see sim.remote).
PARALLEL = Concurrency(service_workers=2, simulator_processes=4, lightfm_threads=None)
RUN_LOCK = ".run.lock"  # in --out: one run at a time writes there
DAY1 = "day1"  # day 1's (EXPLORE's) logs/NAME and sim/NAME.json
# Day 2's experiments in the order they run, with their steps' titles: each logs to logs/NAME (its simulator summary
# sim/NAME.json) and reports to ab/NAME.
DAY2 = {
    "HW_2": "day 2: HW_2 A/B test",
    "HW_2_ARMS": "day 2': HW_2_ARMS, where the win comes from",
    "AA": "day 2'': AA, the same recommender in both arms",
}
# Day 2's sessions per arm the run asks for at least (under 2 users in an arm, its report cannot compare it).
SESSIONS_PER_ARM = 10
MIN_EPISODES = SESSIONS_PER_ARM * max(len(EXPERIMENTS[name].recommenders) for name in DAY2)
# What `models train` writes besides its exports (which it replaces together), and the Optuna study (with its lock)
# it would otherwise resume.
MODEL_RESULTS = ("report.md", "report.json", "learning_curve.png", "params.json", "study.db", "study.db.lock")
# Settings of the shell that would change the run's figures behind its back: botify's own (the run sets those it
# needs) and gunicorn's command-line variables (`GUNICORN_CMD_ARGS="--workers 3"` overrides the one worker).
FOREIGN_SETTINGS = ("GUNICORN_CMD_ARGS", "WEB_CONCURRENCY")


def commands_environment() -> dict[str, str]:
    """The environment of the run's commands: the shell's, without any `BOTIFY_*` or FOREIGN_SETTINGS."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("BOTIFY_") and name not in FOREIGN_SETTINGS
    }


STOP_SECONDS = 30.0  # how long a stopped run waits for the command under way to end before killing it


class Terminated(SystemExit):
    """The run was told to stop by SIGTERM (`unwind`)."""


def unwind(signum: int, frame: object) -> None:
    """SIGTERM (`kill`, a job's timeout, `docker stop`) unwinds the run like Ctrl-C: the step under way is stopped
    and every `finally` stops what the run started (the service, the embedded Redis) instead of leaving it running."""
    raise Terminated(128 + signum)


def step(title: str) -> None:
    print(f"\n=== {title} ({time.strftime('%H:%M:%S')})", flush=True)


def python(*args: str, env: dict[str, str] | None = None) -> None:
    """Run one of the project's commands; its progress shows on the terminal; a failure stops the run.
    A run stopped meanwhile stops the command as Ctrl-C would, and waits for it: it ends its own workers and says
    so in its one line (killed outright, its worker processes would be orphaned and print tracebacks)."""
    command = [sys.executable, *args]
    child = subprocess.Popen(command, env={**commands_environment(), **(env or {})}, preexec_fn=command_setup)
    try:
        code = child.wait()
    except BaseException as stopped:
        stop_child(child, already_interrupted=isinstance(stopped, KeyboardInterrupt))
        raise
    if code != 0:
        raise subprocess.CalledProcessError(code, command)


def command_setup() -> None:
    """In a command about to exec (`preexec_fn`): it stops when the run dies (`stop_with_parent`). A run started with
    Ctrl-C ignored (a script's background job: `python -m pipeline &`) gives its commands Ctrl-C back in a process
    group of their own, so that its own stop (`stop_child`) reaches them, while the terminal's still does not."""
    stop_with_parent()
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        os.setpgrp()
        signal.signal(signal.SIGINT, signal.SIG_DFL)


def stop_child(child: subprocess.Popen, already_interrupted: bool) -> None:
    """Stop `child` as Ctrl-C does (a terminal's Ctrl-C has reached it already), then kill it if it lingers."""
    try:
        if already_interrupted:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=1.0)
        if child.poll() is None:
            child.send_signal(signal.SIGINT)
            child.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


@dataclass
class Run:
    out: Path
    scale_name: str
    scale: Scale
    seed: int
    concurrency: Concurrency
    redis_url: str

    @property
    def data(self) -> Path:
        return self.out / "data"

    def logs(self, name: str) -> Path:
        return self.out / "logs" / name

    def botify_env(self) -> dict[str, str]:
        """What botify's recommenders run with, set by the run alone (`commands_environment` drops the shell's
        `BOTIFY_*`, which would change the figures: `BOTIFY_SEED=random`, compose's, on every run)."""
        defaults = Settings()
        return {
            "REDIS_URL": self.redis_url,
            "BOTIFY_SEED": str(self.seed),
            "BOTIFY_FALLBACK": ",".join(defaults.fallback),
            "BOTIFY_SESSION_TTL": str(defaults.session_ttl),
        }

    def serve_day(self, experiment: str, logs: str, episodes: int, seed: int) -> None:
        """Serve `experiment` and send `episodes` simulated sessions through it over HTTP (summary in sim/)."""
        env = {**self.botify_env(), "BOTIFY_DATA_DIR": str(self.data), "BOTIFY_EXPERIMENT": experiment}
        workers = self.concurrency.service_workers
        service = ServiceProcess.start(
            free_port(), self.logs(logs), env, workers=workers, with_parent=True, base_env=commands_environment()
        )
        summary = self.out / "sim" / f"{logs}.json"
        try:
            python("-m", "sim.run", "--data", str(self.data), "--agent", "remote", "--url", service.url,
                   "--episodes", str(episodes), "--seed", str(seed),
                   "--processes", str(self.concurrency.simulator_processes), "--out", str(summary))  # fmt: skip
        finally:
            service.stop()

    def report(self, experiment: str, logs: str, pre_logs: str | None = None) -> dict:
        out = self.out / "ab" / experiment
        args = ["-m", "ab", "report", "--logs", str(self.logs(logs)), "--experiment", experiment, "--out", str(out)]
        if pre_logs:
            args += ["--pre-logs", str(self.logs(pre_logs))]
        python(*args)
        return json.loads((out / "ab_report.json").read_text())


def headroom(day2_seed: int, run: Run) -> list[dict]:
    """StickyArtist, our recommenders and the oracle in-process on the same sessions: the reachable headroom."""
    out = run.out / "sim" / "headroom.json"
    agents = "sticky-artist,pipeline.agents:lightfm_in_order,pipeline.agents:lightfm,oracle"
    python("-m", "sim.run", "--data", str(run.data), "--agent", agents, "--episodes", str(run.scale.episodes),
           "--seed", str(day2_seed), "--out", str(out), env=run.botify_env())  # fmt: skip
    return json.loads(out.read_text())["results"]


def nested(markdown: str) -> str:
    """A report's Markdown, its headings pushed two levels down to sit inside the summary."""
    return "\n".join("##" + line if line.startswith("#") else line for line in markdown.strip().splitlines())


def effect_row(report: dict, treatment: str, metric: str) -> dict:
    return next(e for e in report["effects"] if e["treatment"] == treatment and e["metric"] == metric)


def summary(run: Run, hw2: dict, aa: dict, agents: list[dict]) -> str:
    """The run's headline, its tables and where the files are, as Markdown."""
    main = effect_row(hw2, "T1", "mean_time_per_session")
    ratio = main["treatment_mean"] / main["control_mean"]
    by_agent = {row["agent"]: row["mean_time"] for row in agents}
    sticky, ours, oracle = (by_agent["sticky-artist"], by_agent["pipeline.agents:lightfm"], by_agent["oracle"])
    share = (ours - sticky) / (oracle - sticky) if oracle > sticky else float("nan")
    alarms = [effect["metric"] for effect in aa["effects"] if effect["significant_holm"]]
    ab_dir = run.out / "ab"
    lines = [
        f"# Botify run ({run.scale_name} scale, seed {run.seed})",
        "",
        f"HW_2: LightFM session-aware (T1) vs StickyArtist (C): mean_time_per_session {main['control_mean']:.3f} -> "
        f"{main['treatment_mean']:.3f} (x{ratio:.2f}, {main['effect_pct']:+.1f}% "
        f"[{main['lower_pct']:+.1f}%, {main['upper_pct']:+.1f}%], "
        f"{'significant' if main['significant'] else 'not significant'}).",
        "",
        f"Against the simulator's oracle on the same {run.scale.episodes} sessions (in-process; listen time of the "
        f"recommendations per session, so 1.0 below the A/B's figure, which counts the start track too): "
        f"StickyArtist {sticky:.2f}, LightFM session-aware {ours:.2f}, oracle {oracle:.2f}: "
        f"we capture {share:.0%} of the headroom above StickyArtist.",
        "",
        f"A/A (StickyArtist in both arms): {len(alarms)} of {len(aa['effects'])} metrics significant after Holm"
        + (f" ({', '.join(alarms)})." if alarms else "."),
        "",
        "## HW_2",
        "",
        nested((ab_dir / "HW_2" / "ab_table.md").read_text()),
        "",
        "## HW_2_ARMS: where the win comes from",
        "",
        "C = StickyArtist, T1 = LightFM list in order, T2 = LightFM without item features (session-aware), "
        "T3 = LightFM with item features (session-aware).",
        "",
        nested((ab_dir / "HW_2_ARMS" / "ab_table.md").read_text()),
        "",
        "## AA: the same recommender in both arms",
        "",
        nested((ab_dir / "AA" / "ab_table.md").read_text()),
        "",
        "## In-process, same sessions",
        "",
        "| agent | time / session |",
        "|---|---:|",
        *(f"| {row['agent']} | {row['mean_time']:.3f} ± {row['time_se']:.3f} |" for row in agents),
        "",
        "## Offline (validation split of day 1)",
        "",
        nested((run.out / "models" / "report.md").read_text()),
    ]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = Parser(
        prog="python -m pipeline", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--scale",
        choices=sorted(SCALES),
        default="small",
        help="small: ~2.5 minutes (--parallel: ~1.8); full: the seed's, ~80 minutes (--parallel: ~40-50) on 2 cores",
    )
    parser.add_argument("--out", type=path_argument, default=Path("results"), help="where everything goes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--parallel",
        action="store_true",
        help="2 service workers, 4 simulator processes, LightFM on every core: simulated days in half the time, "
        "figures that move by a few percent from run to run (default: one of each, the same figures for a seed)",
    )
    parser.add_argument("--day1-episodes", type=int, help="override the scale's day-1 sessions")
    parser.add_argument("--episodes", type=int, help="override the scale's sessions per experiment")
    parser.add_argument("--trials", type=int, help="override the scale's Optuna trials")
    parser.add_argument("--epochs", type=int, help="override the scale's epochs")
    parser.add_argument(
        "--min-positives", type=int, help="override the scale's k-core (positives each user and track keeps)"
    )
    args = parser.parse_args(argv)
    for name in ("day1_episodes", "episodes", "trials", "epochs", "min_positives"):  # before any step starts
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.episodes is not None and args.episodes < MIN_EPISODES:  # else found out by the reports, after the run
        parser.error(
            f"--episodes must be at least {MIN_EPISODES} ({SESSIONS_PER_ARM} per arm of the day-2 experiment with "
            "the most arms): fewer may leave an arm with under 2 users, too few to compare"
        )
    if args.seed < 0:
        parser.error("--seed must not be negative")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, unwind)
    overrides = {"day1_episodes": args.day1_episodes, "episodes": args.episodes, "trials": args.trials,
                 "epochs": args.epochs, "min_positives": args.min_positives}  # fmt: skip
    scale = replace(SCALES[args.scale], **{name: value for name, value in overrides.items() if value is not None})
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        lock = claim(args.out / RUN_LOCK)  # noqa: F841 (held until the run ends)
    except Claimed as held:  # two runs would overwrite each other's world and logs, and stop each other's Redis
        print(f"pipeline: another run (pid {held.owner}) writes to {args.out}: give this one its own --out",
              file=sys.stderr)  # fmt: skip
        return 1
    except OSError as error:
        reason = "not a folder" if args.out.exists() and not args.out.is_dir() else error.strerror
        print(f"pipeline: cannot use --out {args.out}: {reason}", file=sys.stderr)
        return 1
    embedded = None if os.environ.get("REDIS_URL") else EmbeddedRedis(args.out / "redis")
    try:
        if embedded is not None:
            step("redis: starting the embedded server")
            embedded.start()
        else:
            check_answers(os.environ["REDIS_URL"])  # before the last run's results are removed
        concurrency = PARALLEL if args.parallel else REPRODUCIBLE
        run = Run(args.out, args.scale, scale, args.seed, concurrency, os.environ.get("REDIS_URL") or embedded.url)
        return execute(run)
    except subprocess.CalledProcessError as error:
        print(f"pipeline: step failed: {' '.join(map(str, error.cmd[1:]))}", file=sys.stderr)
        return 1
    except (RuntimeError, OSError) as error:
        print(f"pipeline: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C: the step under way has stopped; `finally` stops the rest
        print("pipeline: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("pipeline: terminated", file=sys.stderr)
        raise
    finally:
        if embedded is not None:
            stop_embedded(embedded)


def stop_embedded(embedded: EmbeddedRedis) -> None:
    """Stop the run's Redis with a snapshot (sessions included); a Ctrl-C while it saves (a second one, say) kills it
    instead, saying so, and the snapshot on disk stays the one before (Redis writes a new one aside, then renames)."""
    try:
        embedded.stop(save=True)
    except KeyboardInterrupt:
        embedded.kill()
        print("pipeline: interrupted while Redis saved its snapshot: stopped without it", file=sys.stderr)


def forget_last_results(run: Run) -> None:
    """A rerun in the same --out keeps nothing of the last run's results: a run that fails must not leave them
    beside its own (a summary of another seed), and a resumed Optuna study would try other trials than a fresh
    run's. Only files the run writes are removed."""
    (run.out / "summary.md").unlink(missing_ok=True)
    (run.out / "sim" / "headroom.json").unlink(missing_ok=True)
    for day in (DAY1, *DAY2):
        for stale in run.logs(day).glob("*"):
            stale.unlink()
        (run.out / "sim" / f"{day}.json").unlink(missing_ok=True)
    for experiment in DAY2:
        shutil.rmtree(run.out / "ab" / experiment, ignore_errors=True)
    for name in MODEL_RESULTS:
        (run.out / "models" / name).unlink(missing_ok=True)


def execute(run: Run) -> int:
    env = {"REDIS_URL": run.redis_url}
    forget_last_results(run)
    step(f"world: generating {' '.join(run.scale.world)} (seed {run.seed})")
    python("-m", "sim.world", "--out", str(run.data), "--seed", str(run.seed), *run.scale.world)
    # A rerun's Redis may still hold the sets of another seed's world; they are trained again and loaded with
    # this world below, and day 1's EXPLORE serves none of them.
    python("-m", "botify", "load", "--data", str(run.data), "--allow-stale-sets", env=env)

    step(f"day 1: EXPLORE experiment, {run.scale.day1_episodes} sessions over HTTP")
    run.serve_day("EXPLORE", DAY1, run.scale.day1_episodes, run.seed + 1)

    step(f"models: LightFM with item features, Optuna {run.scale.trials} trials x {run.scale.epochs} epochs")
    threads = () if run.concurrency.lightfm_threads is None else ("--threads", str(run.concurrency.lightfm_threads))
    python("-m", "models", "train", "--logs", str(run.logs(DAY1)), "--data", str(run.data),
           "--out", str(run.out / "models"), "--trials", str(run.scale.trials), "--epochs", str(run.scale.epochs),
           "--min-positives", str(run.scale.min_positives), "--seed", str(run.seed), *threads, "--load",
           env=env)  # fmt: skip

    day2_seed = run.seed + 2
    for experiment, title in DAY2.items():
        step(f"{title}, {run.scale.episodes} sessions over HTTP")
        run.serve_day(experiment, experiment, run.scale.episodes, day2_seed)

    step("ab: reports")
    # HW_2's with CUPED on day 1's listens
    reports = {name: run.report(name, name, pre_logs=DAY1 if name == "HW_2" else None) for name in DAY2}
    step("oracle: the headroom on the same sessions (in-process)")
    agents = headroom(day2_seed, run)
    report = summary(run, reports["HW_2"], reports["AA"], agents)
    write_text(run.out / "summary.md", report)
    print(report.split("## HW_2")[0])
    print(f"results: {run.out / 'summary.md'}, {run.out / 'ab' / 'HW_2' / 'ab_test.png'}")
    return 0
