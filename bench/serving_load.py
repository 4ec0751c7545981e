"""Serving benchmark: botify's `POST /next/<user>` against Flask's ceiling, at full speed and at a fixed rate.

One command (from the repository root): `.venv/bin/python bench/serving_load.py`

1. A course-sized world (50k tracks, 10k users x 100 LightFM-shaped candidates with item vectors) is
   loaded into a real redis-server on loopback.
2. Closed loop, at full speed: wrk drives random users and tracks over keep-alive connections at botify
   and at a minimal Flask hello-world (`bench/serving_hello.py`) under the same gunicorn settings,
   alternating rounds so both see the same machine. Reports requests/s, latency p50/p90/p99, errors,
   the server's CPU per request, and botify's throughput as a ratio to the hello-world's.
3. Open loop, at a fixed rate (half botify's measured maximum by default): `serving_openloop` sends on a
   schedule and measures each request from its due time, so stalls are not hidden (coordinated omission).

Figures go to `results/bench/serving.json` and a table. wrk must be installed (Debian: `apt-get install -y wrk`).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from serving_openloop import post_request, run_fixed_rate
from serving_servers import BOTIFY_APP, HELLO_APP, REPO, cpu_seconds, gunicorn, loaded_redis
from serving_world import WorldSize, write_world

WRK_SCRIPT = REPO / "bench" / "serving_next.lua"
TARGETS = {"ratio_to_hello": 0.8, "closed_p99_ms": 10.0, "fixed_rate_p99_ms": 5.0}


def run_wrk(url: str, connections: int, duration: float, users: int, tracks: int, seed: int) -> dict:
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


def closed_loop(app: str, redis, args: argparse.Namespace, size: WorldSize, log_dir: Path, seed: int) -> dict:
    """Warm a fresh gunicorn up, then one measured wrk run with the server's CPU time around it."""
    env = {"REDIS_URL": redis.url, "BOTIFY_LOG_DIR": str(log_dir)}
    with gunicorn(app, args.workers, args.threads, **env) as server:
        run_wrk(server.url, args.connections, 2, size.users, size.tracks, seed + 1000)
        pids = [server.process.pid, *server.worker_pids(), redis.process.pid]
        cpu_before = cpu_seconds(pids)
        figures = run_wrk(server.url, args.connections, args.duration, size.users, size.tracks, seed)
        figures["server_cpu_us_per_request"] = (cpu_seconds(pids) - cpu_before) / max(figures["requests"], 1) * 1e6
    return figures


def fixed_rate(redis, args: argparse.Namespace, size: WorldSize, log_dir: Path, rate: float) -> dict:
    rng = np.random.default_rng(args.seed)
    slots = int(rate * args.duration) + 1
    users = rng.integers(int(size.users * 1.2), size=slots)  # a sixth have no list: the fallback path
    tracks = rng.integers(size.tracks, size=slots)
    listened = rng.random(slots).round(2)
    env = {"REDIS_URL": redis.url, "BOTIFY_LOG_DIR": str(log_dir)}
    with gunicorn(BOTIFY_APP, args.workers, args.threads, **env) as server:
        host = server.url.removeprefix("http://")

        def request(slot: int) -> bytes:
            body = json.dumps({"track": int(tracks[slot]), "time": float(listened[slot])}).encode()
            return post_request(host, f"/next/{users[slot]}", body)

        run_fixed_rate(server.url, rate / 2, 2, args.connections, request)  # warm-up
        return run_fixed_rate(server.url, rate, args.duration, args.connections, request).summary()


def median_run(runs: list[dict]) -> dict:
    """The run with the median throughput (its latencies belong together)."""
    return sorted(runs, key=lambda run: run["rps"])[len(runs) // 2]


def report(results: dict) -> str:
    rows = [("run", "req/s", "p50 ms", "p90 ms", "p99 ms", "errors", "server CPU us/req")]
    for name in ("hello", "botify"):
        run = results["closed_loop"][name]
        latency = run["latency_ms"]
        rows.append((f"{name} closed c={results['settings']['connections']}", f"{run['rps']:.0f}",
                     f"{latency['p50']:.2f}", f"{latency['p90']:.2f}", f"{latency['p99']:.2f}", str(run["errors"]),
                     f"{run['server_cpu_us_per_request']:.0f}"))  # fmt: skip
    fixed = results["fixed_rate"]
    latency = fixed["latency_ms"]
    rows.append((f"botify fixed {fixed['rate_asked']:.0f}/s", f"{fixed['rate_achieved']:.0f}", f"{latency['p50']:.2f}",
                 f"{latency['p90']:.2f}", f"{latency['p99']:.2f}", str(fixed["errors"]), "-"))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    lines.append(f"botify / hello-world throughput: {results['ratio_to_hello']:.2f}")
    for name, check in results["targets"].items():
        lines.append(
            f"target {name}: {'met' if check['met'] else 'NOT met'} ({check['value']:.2f} vs {check['target']})"
        )
    return "\n".join(lines)


def check_targets(results: dict) -> dict:
    botify = results["closed_loop"]["botify"]
    return {
        "ratio_to_hello >=": {"value": results["ratio_to_hello"], "target": TARGETS["ratio_to_hello"],
                              "met": results["ratio_to_hello"] >= TARGETS["ratio_to_hello"]},
        "closed-loop p99 ms <": {"value": botify["latency_ms"]["p99"], "target": TARGETS["closed_p99_ms"],
                                 "met": botify["latency_ms"]["p99"] < TARGETS["closed_p99_ms"]},
        "fixed-rate p99 ms <": {"value": results["fixed_rate"]["latency_ms"]["p99"],
                                "target": TARGETS["fixed_rate_p99_ms"],
                                "met": results["fixed_rate"]["latency_ms"]["p99"] < TARGETS["fixed_rate_p99_ms"]},
        "errors ==": {"value": botify["errors"] + results["fixed_rate"]["errors"], "target": 0,
                      "met": botify["errors"] + results["fixed_rate"]["errors"] == 0},
    }  # fmt: skip


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per measured run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating hello/botify rounds (median kept)")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (both apps)")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker (both apps)")
    parser.add_argument("--rate", type=float, help="fixed rate, requests/s (default: half botify's maximum)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--world", type=Path, default=REPO / "results" / "bench" / "world", help="world cache folder")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "bench" / "serving.json")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.rounds < 1 or args.connections < 1 or args.workers < 1 or args.threads < 1:
        parser.error("--duration, --rounds, --connections, --workers and --threads must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("serving_load: wrk is not installed; install it with `apt-get install -y wrk`", file=sys.stderr)
        return 1
    world = write_world(args.world, np.random.default_rng(args.seed))
    runs: dict[str, list[dict]] = {"hello": [], "botify": []}
    with tempfile.TemporaryDirectory() as scratch, loaded_redis(Path(scratch), world) as redis:
        log_dir = Path(scratch) / "log"
        for round_number in range(args.rounds):
            for name, app in (("hello", HELLO_APP), ("botify", BOTIFY_APP)):
                run = closed_loop(app, redis, args, world.size, log_dir, args.seed + round_number)
                runs[name].append(run)
                print(f"round {round_number + 1}/{args.rounds} {name}: {run['rps']:.0f} req/s, "
                      f"p99 {run['latency_ms']['p99']:.2f} ms", flush=True)  # fmt: skip
        botify, hello = median_run(runs["botify"]), median_run(runs["hello"])
        rate = args.rate or botify["rps"] / 2
        started = time.monotonic()
        fixed = fixed_rate(redis, args, world.size, log_dir, rate)
        print(
            f"fixed rate {rate:.0f}/s for {time.monotonic() - started:.0f} s: p99 {fixed['latency_ms']['p99']:.2f} ms"
        )
    results = {
        "settings": {
            **{k: v for k, v in vars(args).items() if k not in ("world", "out")},
            "world": world.size.__dict__,
        },
        "closed_loop": {"hello": hello, "botify": botify},
        "rounds": runs,
        "ratio_to_hello": botify["rps"] / hello["rps"],
        "fixed_rate": fixed,
    }
    results["targets"] = check_targets(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(report(results))
    print(f"figures: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
