"""Simulator speed against the real service: is the runner the bottleneck?

One command (from the repository root): `.venv/bin/python bench/sim_remote.py`

1. Generates the default world, loads it into a fresh redis-server and starts botify (gunicorn, 2 workers).
2. Drives it with the remote agent (keep-alive HTTP, real sessions) at `--processes` 1, 2 and 4:
   steady-state requests/s (the middle half of a run's requests, by the service's event timestamps), and the
   simulator's own CPU time per request (worker start-up included; on loopback the kernel's TCP work for both
   ends is partly charged to the client, as it is to wrk).
3. Measures the service's own throughput with wrk (a C load generator, next to free) at the same
   concurrency (1 and 2 connections) and at 8 connections (its maximum here).
Runs alternate over several rounds so every configuration sees the same machine; medians are reported.

The runner is not the bottleneck when `sim --processes 2` reaches wrk's 2-connection throughput.
Figures go to `results/bench/sim_remote.json` and a table. wrk must be installed (Debian: `apt-get install -y wrk`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_arguments import non_negative, output_file, positive
from tqdm import tqdm

from botify.arguments import OneLineParser, bounded
from botify.embedded_redis import EmbeddedRedis
from botify.process import ServiceProcess, free_port
from models.atomic import write_text

REPO = Path(__file__).resolve().parent.parent
WRK_SCRIPT = REPO / "bench" / "serving_next.lua"


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the runner's pool workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


STEADY = (0.25, 0.75)  # a run's requests between these quantiles of its own: the steady middle (its processes
# start over a second or two, loading the world, and its last sessions end one by one)


def log_sizes(log_dir: Path) -> dict[Path, int]:
    """How far each of the service's event-log files goes now: a run's events are what is written after."""
    return {path: path.stat().st_size for path in log_dir.iterdir()}


def served_rate(log_dir: Path, before: dict[Path, int]) -> float:
    """Requests/s in the middle of a run, by the service's own timestamps of the events written since `before`:
    neither the simulator's start-up (each process loads the world) nor the last sessions' tail counts."""
    stamps = []
    for path in log_dir.iterdir():
        with path.open("rb") as lines:
            lines.seek(before.get(path, 0))
            stamps += [json.loads(line)["timestamp"] for line in lines]
    stamps.sort()
    first, last = (int((len(stamps) - 1) * q) for q in STEADY)
    return (last - first) / ((stamps[last] - stamps[first]) / 1e3)


def simulate(service: ServiceProcess, data: Path, episodes: int, processes: int, seed: int) -> dict:
    """One run: the service's requests/s in its steady middle, and the simulator's CPU per request (all of it)."""
    from sim.run import Job, run_day

    job = Job(data, "remote", service.url, 1000, seed)
    cpu, before = cpu_seconds(), log_sizes(service.log_dir)
    with tqdm(disable=True) as no_bar:
        results = run_day(job, 1, episodes, processes, no_bar)
    cpu = cpu_seconds() - cpu
    requests = sum(r.steps + 1 for r in results)  # every step's /next and the session's /last
    rps = served_rate(service.log_dir, before)
    return {"processes": processes, "sessions": episodes, "requests": requests, "rps": rps,
            "client_cpu_us_per_request": cpu / requests * 1e6}  # fmt: skip


def wrk(url: str, connections: int, seconds: int, users: int, tracks: int) -> dict:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "-s", str(WRK_SCRIPT), url, "--"]
    cpu = cpu_seconds()
    output = subprocess.run([*command, str(users), str(tracks), "0"], capture_output=True, text=True, check=True)
    cpu = cpu_seconds() - cpu  # wrk's own CPU: a finished child
    found = re.search(r"^WRK_JSON (.*)$", output.stdout, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"wrk printed no figures: {output.stdout[-300:]}")
    raw = json.loads(found.group(1))
    return {"connections": connections, "rps": raw["requests"] / (raw["duration_us"] / 1e6),
            "client_cpu_us_per_request": cpu / max(raw["requests"], 1) * 1e6,
            "errors": sum(raw["errors"].values())}  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--episodes", type=bounded(int, 100), default=6000, help="sessions per simulator run (long: start-up fades)"
    )
    parser.add_argument("--wrk-seconds", type=positive, default=5, help="whole seconds (as wrk takes them)")
    parser.add_argument("--rounds", type=positive, default=3, help="alternating rounds; medians are reported")
    parser.add_argument("--seed", type=non_negative, default=0)
    parser.add_argument("--out", type=output_file, default=Path("results/bench/sim_remote.json"))
    return parser.parse_args(argv)


def main(args: argparse.Namespace) -> int:
    import numpy as np

    from sim.catalog import write_world
    from sim.generate import PRESETS, generate_world

    if shutil.which("wrk") is None:
        print("sim_remote: error: wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
        return 1

    results: dict = {"simulator": [], "wrk": []}
    with tempfile.TemporaryDirectory() as tmp:
        data, config = Path(tmp) / "data", PRESETS["default"]
        world = generate_world(config, np.random.default_rng(args.seed))
        write_world(data, world.tracks, world.embeddings, world.users, world.top_tracks)
        redis = EmbeddedRedis(Path(tmp) / "redis", port=free_port()).start()
        env = {**os.environ, "REDIS_URL": redis.url}
        service = None
        try:
            subprocess.run([sys.executable, "-m", "botify", "load", "--data", str(data)], env=env, check=True)
            variables = {"REDIS_URL": redis.url, "BOTIFY_DATA_DIR": str(data)}
            service = ServiceProcess.start(free_port(), Path(tmp) / "log", variables, workers=2)
            simulate(service, data, 200, 1, args.seed + 1)  # warm-up: connections, caches
            # Alternate the runs so that every configuration sees the same (shared) machine.
            for round_ in tqdm(range(args.rounds), desc="rounds"):
                for processes in (1, 2, 4):
                    run = simulate(service, data, args.episodes, processes, args.seed + round_)
                    results["simulator"].append(run)
                for connections in (1, 2, 8):
                    results["wrk"].append(wrk(service.url, connections, args.wrk_seconds, config.users, config.tracks))
        finally:
            if service is not None:
                service.stop()
            redis.stop(save=False)

    def median(rows: list[dict], key: str, value: str) -> dict[int, float]:
        return {k: float(np.median([r[value] for r in rows if r[key] == k])) for k in sorted({r[key] for r in rows})}

    sim_rps = median(results["simulator"], "processes", "rps")
    sim_cpu = median(results["simulator"], "processes", "client_cpu_us_per_request")
    wrk_rps = median(results["wrk"], "connections", "rps")
    wrk_cpu = median(results["wrk"], "connections", "client_cpu_us_per_request")
    print(f"\nmedians of {args.rounds} alternating rounds\n")
    wrk_errors = {c: sum(r["errors"] for r in results["wrk"] if r["connections"] == c) for c in wrk_rps}
    print("| load | requests/s | client CPU per request (incl. kernel loopback) | errors |\n|---|---:|---:|---:|")
    for processes, rps in sim_rps.items():
        print(f"| sim --processes {processes} | {rps:,.0f} | {sim_cpu[processes]:,.0f} µs | 0 |")  # else it stops
    for connections, rps in wrk_rps.items():
        print(f"| wrk, {connections} connection(s) | {rps:,.0f} | {wrk_cpu[connections]:,.0f} µs | "
              f"{wrk_errors[connections]} |")  # fmt: skip
    results["sim2_over_wrk2"] = sim_rps[2] / wrk_rps[2]
    results["sim4_over_wrk_max"] = sim_rps[4] / max(wrk_rps.values())
    print(f"\nsim --processes 2 reaches {results['sim2_over_wrk2']:.0%} of wrk at 2 connections; "
          f"--processes 4 reaches {results['sim4_over_wrk_max']:.0%} of the service's maximum")  # fmt: skip
    write_text(args.out, json.dumps(results, indent=2) + "\n")  # its folder made if missing
    return 0


if __name__ == "__main__":
    sys.exit(main(parse_args()))
