"""Serving benchmark: botify's `POST /next/<user>` against Flask's ceiling, at full speed and at a fixed rate.

One command (from the repository root): `.venv/bin/python bench/serving_load.py`

1. A course-sized world (50k tracks, 10k users x 100 LightFM-shaped candidates with item vectors) is
   loaded into a real redis-server on loopback.
2. Closed loop, at full speed: wrk drives random users and tracks over keep-alive connections at botify
   and at a minimal Flask hello-world (`bench/serving_hello.py`) under the same gunicorn settings,
   alternating rounds so both see the same machine. botify routes by HW_2 (half the users in its LightFM arm)
   unless `--experiment` says otherwise (AA: StickyArtist for everyone, what the service costs without the
   LightFM path's Redis call and re-ranking). Reports requests/s, latency p50/p90/p99, errors,
   the server's CPU per request and resident memory, and botify's throughput as a ratio to the hello-world's.
3. Open loop, at a fixed rate (half botify's measured maximum by default): `serving_openloop` sends on a
   schedule and measures each request from its due time, so stalls are not hidden (coordinated omission).
   Alternating rounds again; the run with the median p99 is reported, every round's p99 is kept.

Figures go to `results/bench/serving.json` and a table. wrk must be installed (Debian: `apt-get install -y wrk`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench_arguments import non_negative, output_file, output_folder, positive
from serving_servers import (
    BOTIFY_APP,
    HELLO_APP,
    REPO,
    cpu_seconds,
    end_sessions,
    gunicorn,
    loaded_redis,
    resident_mib,
)
from serving_world import WorldSize, write_world

from botify.arguments import OneLineParser
from botify.registry import EXPERIMENTS
from botify.settings import Settings
from models.atomic import write_text

WRK_SCRIPT = REPO / "bench" / "serving_next.lua"
TARGETS = {"ratio_to_hello": 0.8, "closed_p99_ms": 10.0, "fixed_rate_p99_ms": 5.0}


def run_wrk(url: str, connections: int, duration: int, users: int, tracks: int, seed: int) -> dict:
    """One wrk run; its Lua script's `done` prints the figures as JSON."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", "-s", str(WRK_SCRIPT), url, "--"]
    output = subprocess.run([*command, str(users), str(tracks), str(seed)], capture_output=True, text=True, check=True)
    found = re.search(r"^WRK_JSON (.*)$", output.stdout, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"wrk printed no figures: {output.stdout[-300:]} {output.stderr[-300:]}")
    raw = json.loads(found.group(1))
    seconds = raw["duration_us"] / 1e6
    return {
        "requests": raw["requests"],
        "rps": raw["requests"] / seconds,
        "errors": sum(raw["errors"].values()),
        "latency_ms": {name: value / 1e3 for name, value in raw["latency_us"].items()},
    }


def server_pids(server, redis) -> dict[str, list[int]]:
    return {"gunicorn": [server.process.pid, *server.worker_pids()], "redis": [redis.process.pid]}


def server_env(redis, args: argparse.Namespace, log_dir: Path) -> dict[str, str]:
    """What both apps are started with (the hello-world ignores botify's variables)."""
    return {"REDIS_URL": redis.url, "BOTIFY_LOG_DIR": str(log_dir), "BOTIFY_EXPERIMENT": args.experiment}


def closed_loop(app: str, redis, args: argparse.Namespace, size: WorldSize, log_dir: Path, seed: int) -> dict:
    """Warm a fresh gunicorn up, then one measured wrk run with the server's CPU time around it."""
    end_sessions(redis)
    with gunicorn(app, args.workers, args.threads, **server_env(redis, args, log_dir)) as server:
        run_wrk(server.url, args.connections, args.warmup, size.requesting_users, size.tracks, seed + 1000)
        pids = server_pids(server, redis)
        before = {name: cpu_seconds(group) for name, group in pids.items()}
        figures = run_wrk(server.url, args.connections, args.duration, size.requesting_users, size.tracks, seed)
        requests = max(figures["requests"], 1)
        figures["cpu_us_per_request"] = {
            name: (cpu_seconds(group) - before[name]) / requests * 1e6 for name, group in pids.items()
        }
        figures["little_law_mean_ms"] = args.connections / figures["rps"] * 1e3  # what c connections force
        figures["memory_mib"] = {  # resident after the run: each worker loaded what it serves from
            "worker_max": max(resident_mib(pid) for pid in server.worker_pids()),
            "master": resident_mib(server.process.pid),
            "redis": resident_mib(redis.process.pid),
        }
    return figures


def fixed_rate(
    app: str, redis, args: argparse.Namespace, size: WorldSize, log_dir: Path, rate: float, seed: int
) -> dict:
    """Open loop: `rate` requests/s on schedule, each timed from its due time (after a warm-up at that rate)."""
    import numpy as np
    from serving_openloop import post_request, run_fixed_rate

    rng = np.random.default_rng(seed)
    slots = int(rate * (args.duration + args.warmup)) + 1
    users = rng.integers(size.requesting_users, size=slots)
    tracks = rng.integers(size.tracks, size=slots)
    listened = rng.random(slots).round(2)
    end_sessions(redis)
    with gunicorn(app, args.workers, args.threads, **server_env(redis, args, log_dir)) as server:
        host = server.url.removeprefix("http://")

        def request(slot: int, offset: int = 0) -> bytes:
            slot = (slot + offset) % slots
            body = json.dumps({"track": int(tracks[slot]), "time": float(listened[slot])}).encode()
            return post_request(host, f"/next/{users[slot]}", body)

        warm = int(rate * args.warmup)
        run_fixed_rate(server.url, rate, args.warmup, args.connections, lambda slot: request(slot, -warm - 1))
        return run_fixed_rate(server.url, rate, args.duration, args.connections, request).summary()


def median_run(runs: list[dict], key: Callable[[dict], float]) -> dict:
    """The run with the median `key` (a whole run, so its figures belong together)."""
    return sorted(runs, key=key)[len(runs) // 2]


def throughput(run: dict) -> float:
    return run["rps"]


def p99(run: dict) -> float:
    """A fixed-rate run is ranked by its p99: one window's p99 hangs on a few slow moments of the machine."""
    return run["latency_ms"]["p99"]


def median_cpu(runs: list[dict]) -> float:
    """Median CPU time per request of the server (gunicorn and Redis), over rounds: steadier than req/s."""
    return statistics.median(sum(run["cpu_us_per_request"].values()) for run in runs)


def table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]


def report(results: dict) -> str:
    connections = results["settings"]["connections"]
    rows = [("run", "req/s", "p50 ms", "p90 ms", "p99 ms", "errors", "CPU us/req (gunicorn+redis)")]
    for name in ("hello", "botify"):
        run = results["closed_loop"][name]
        latency, cpu = run["latency_ms"], run["cpu_us_per_request"]
        rows.append((f"{name} closed loop c={connections}", f"{run['rps']:.0f}", f"{latency['p50']:.2f}",
                     f"{latency['p90']:.2f}", f"{latency['p99']:.2f}", str(run["errors"]),
                     f"{cpu['gunicorn']:.0f}+{cpu['redis']:.0f}"))  # fmt: skip
    for fixed in results["fixed_rate"]:
        latency = fixed["latency_ms"]
        rows.append((f"{fixed['app']} fixed {fixed['rate_asked']:.0f}/s", f"{fixed['rate_achieved']:.0f}",
                     f"{latency['p50']:.2f}", f"{latency['p90']:.2f}", f"{latency['p99']:.2f}", str(fixed["errors"]),
                     f"lag p99 {fixed['send_lag_ms']['p99']:.2f} ms"))  # fmt: skip
    lines = [f"botify serving experiment {results['settings']['experiment']}", *table(rows)]
    rounds = ", ".join(f"{ratio:.2f}" for ratio in results["ratio_per_round"])
    lines.append(f"botify / hello-world throughput: {results['ratio_to_hello']:.2f} (median of the rounds' {rounds}; "
                 f"from CPU time per request: {results['cpu_ratio_to_hello']:.2f})")  # fmt: skip
    memory = {name: results["closed_loop"][name]["memory_mib"] for name in ("hello", "botify")}
    lines.append(f"resident memory (MiB): botify worker {memory['botify']['worker_max']:.0f} (hello-world worker "
                 f"{memory['hello']['worker_max']:.0f}), gunicorn master {memory['botify']['master']:.0f}, "
                 f"Redis {memory['botify']['redis']:.0f} with the world and the sessions")  # fmt: skip
    lines.append(
        f"load average before / after: {results['load_average']['before']} / {results['load_average']['after']}"
    )
    for name, check in results["targets"].items():
        verdict = "met" if check["met"] else "NOT met"
        lines.append(f"target {name}: {verdict} ({check['value']:.2f} vs {check['target']})")
    return "\n".join(lines)


def check_targets(results: dict) -> dict:
    botify = results["closed_loop"]["botify"]
    half = next(f for f in results["fixed_rate"] if f["app"] == "botify" and f["fraction"] == 0.5)
    errors = botify["errors"] + sum(f["errors"] for f in results["fixed_rate"] if f["app"] == "botify")
    checks = {
        "botify/hello throughput >=": (results["ratio_to_hello"], TARGETS["ratio_to_hello"]),
        "closed-loop p99 ms <": (botify["latency_ms"]["p99"], TARGETS["closed_p99_ms"]),
        "p99 ms at half the maximum rate <": (half["latency_ms"]["p99"], TARGETS["fixed_rate_p99_ms"]),
        "errors ==": (errors, 0),
    }
    met = {
        "botify/hello throughput >=": lambda value, target: value >= target,
        "errors ==": lambda value, target: value == target,
    }
    return {
        name: {"value": value, "target": target, "met": met.get(name, lambda v, t: v < t)(value, target)}
        for name, (value, target) in checks.items()
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--duration", type=positive, default=15, help="whole seconds per measured run (as wrk takes them)"
    )
    parser.add_argument("--warmup", type=positive, default=3, help="whole seconds of unmeasured load before each run")
    parser.add_argument("--rounds", type=positive, default=3, help="hello/botify rounds per measure (median kept)")
    parser.add_argument("--connections", type=positive, default=32, help="keep-alive connections")
    parser.add_argument("--workers", type=positive, default=Settings.workers, help="gunicorn workers (both apps)")
    parser.add_argument(
        "--threads", type=positive, default=Settings.threads, help="gunicorn threads per worker (both apps)"
    )
    parser.add_argument(
        "--fractions", default="0.25,0.5", help="fixed rates as fractions of botify's maximum (0.5 is the target's)"
    )
    parser.add_argument(
        "--experiment", default=Settings.experiment, choices=sorted(EXPERIMENTS),
        help="the experiment routing botify's /next (AA: StickyArtist for everyone, no Redis call per request)",
    )  # fmt: skip
    parser.add_argument("--seed", type=non_negative, default=0)
    parser.add_argument(
        "--world", type=output_folder, default=REPO / "results" / "bench" / "world", help="world cache folder"
    )
    parser.add_argument(
        "--out", type=output_file, help="figures file (default results/bench/serving[_EXPERIMENT].json)"
    )
    args = parser.parse_args(argv)
    if args.out is None:
        suffix = "" if args.experiment == Settings.experiment else f"_{args.experiment}"
        args.out = REPO / "results" / "bench" / f"serving{suffix}.json"
    try:
        args.fractions = sorted({0.5, *(float(f) for f in args.fractions.split(","))})
    except ValueError:
        parser.error(f"--fractions must be numbers separated by commas, got {args.fractions!r}")
    if not all(0 < fraction <= 1 for fraction in args.fractions):
        parser.error("--fractions must lie in (0, 1]")
    return args


def main(args: argparse.Namespace) -> int:
    if shutil.which("wrk") is None:
        print("serving_load: wrk is not installed; install it with `apt-get install -y wrk`", file=sys.stderr)
        return 1
    world = write_world(args.world, args.seed)
    load_before = os.getloadavg()
    runs: dict[str, list[dict]] = {"hello": [], "botify": []}
    fixed_runs: dict[tuple[str, float], list[dict]] = {}
    with tempfile.TemporaryDirectory() as scratch, loaded_redis(Path(scratch), world) as redis:
        log_dir = Path(scratch) / "log"
        for round_number in range(args.rounds):
            for name, app in (("hello", HELLO_APP), ("botify", BOTIFY_APP)):
                run = closed_loop(app, redis, args, world.size, log_dir, args.seed + round_number)
                runs[name].append(run)
                print(f"round {round_number + 1}/{args.rounds} {name}: {run['rps']:.0f} req/s, "
                      f"p99 {run['latency_ms']['p99']:.2f} ms", flush=True)  # fmt: skip
        botify, hello = median_run(runs["botify"], throughput), median_run(runs["hello"], throughput)
        for fraction in args.fractions:
            rate = fraction * botify["rps"]
            for round_number in range(args.rounds):
                for name, app in (("hello", HELLO_APP), ("botify", BOTIFY_APP)):
                    figures = fixed_rate(app, redis, args, world.size, log_dir, rate, args.seed + round_number)
                    fixed_runs.setdefault((name, fraction), []).append(figures)
                    print(f"round {round_number + 1}/{args.rounds} {name} at {rate:.0f}/s: "
                          f"p99 {figures['latency_ms']['p99']:.2f} ms", flush=True)  # fmt: skip
    fixed = [{"app": name, "fraction": frac, **median_run(runs, p99)} for (name, frac), runs in fixed_runs.items()]
    # Each round's botify over the hello-world run beside it (the same moment of the machine); the median of those.
    ratios = [mine["rps"] / theirs["rps"] for mine, theirs in zip(runs["botify"], runs["hello"], strict=True)]
    results = {
        "settings": {**{k: v for k, v in vars(args).items() if k not in ("world", "out")}, **world.size.__dict__},
        "closed_loop": {"hello": hello, "botify": botify},
        "rounds": runs,
        "ratio_to_hello": statistics.median(ratios),
        "ratio_per_round": ratios,
        # The same ratio from CPU time (all rounds): what it would be on a machine with nothing else running.
        "cpu_ratio_to_hello": median_cpu(runs["hello"]) / median_cpu(runs["botify"]),
        "fixed_rate": fixed,
        "fixed_rate_rounds": [
            {"app": name, "fraction": fraction, "p99_ms": [run["latency_ms"]["p99"] for run in group]}
            for (name, fraction), group in fixed_runs.items()
        ],
        "load_average": {"before": [round(x, 2) for x in load_before], "after": [round(x, 2) for x in os.getloadavg()]},
    }
    results["targets"] = check_targets(results)
    write_text(args.out, json.dumps(results, indent=2) + "\n")  # its folder made if missing
    print(report(results))
    print(f"figures: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(parse_args()))
