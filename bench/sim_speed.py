"""Simulator speed, in-process: world generation time and listener-model steps per second on one core.

One command (from the repository root): `.venv/bin/python bench/sim_speed.py`

1. Generates the default world (50k tracks, 5k artists, 10k users) and times it.
2. Runs sessions in one process with one BLAS thread, for a trivial agent (random), StickyArtist
   and the oracle: steps and sessions per second of CPU time (one core's worth, robust to other load
   on the machine; wall-clock rates beside), first on a cold interest-neighbour cache (every session
   start searches the 50k tracks), then warm (what a long run sees).

Figures go to `results/bench/sim_speed.json` and a table. Target: >= 20,000 steps/s (trivial agent, warm).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bench_arguments import non_negative, output_file, positive
from threadpoolctl import threadpool_limits

from models.atomic import write_text
from sim.cli import Parser

if TYPE_CHECKING:
    from sim.env import RecEnv

TARGET_STEPS_PER_SECOND = 20_000


def time_generation(out: Path, seed: int) -> float:
    import numpy as np

    from sim.catalog import write_world
    from sim.generate import PRESETS, generate_world

    start = time.perf_counter()
    world = generate_world(PRESETS["default"], np.random.default_rng(seed))
    write_world(out, world.tracks, world.embeddings, world.users, world.top_tracks)
    return time.perf_counter() - start


def time_agent(env: RecEnv, name: str, episodes: int, seed: int) -> dict:
    """Rates per second of this process's CPU time (what one core delivers, whatever else runs),
    and per second of wall time for reference."""
    from sim.run import build_agent, run_episode

    agent = build_agent(name, env)
    cpu, wall = time.process_time(), time.perf_counter()
    steps = sum(run_episode(env, agent, name, seed, 1, episode).steps for episode in range(episodes))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"episodes": episodes, "steps": steps, "cpu_seconds": cpu, "wall_seconds": wall,
            "steps_per_s": steps / cpu, "sessions_per_s": episodes / cpu, "wall_steps_per_s": steps / wall}  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = Parser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=positive, default=20_000, help="sessions per measurement (oracle: a tenth)")
    parser.add_argument("--seed", type=non_negative, default=0)
    parser.add_argument("--out", type=output_file, default=Path("results/bench/sim_speed.json"))
    return parser.parse_args(argv)


def main(args: argparse.Namespace) -> int:
    from sim.catalog import read_world
    from sim.env import RecEnv

    with tempfile.TemporaryDirectory() as tmp, threadpool_limits(1, user_api="blas"):
        generation = time_generation(Path(tmp), args.seed)
        world = read_world(Path(tmp))
    results: dict = {"world_generation_s": generation, "agents": {}}
    with threadpool_limits(1, user_api="blas"):
        for name in ("random", "sticky-artist", "oracle"):
            episodes = args.episodes if name != "oracle" else max(1, args.episodes // 10)
            env = RecEnv(world)
            cold = time_agent(env, name, episodes, args.seed)
            warm = time_agent(env, name, episodes, args.seed)  # same sessions: every neighbour list is cached
            results["agents"][name] = {"cold": cold, "warm": warm}

    print(f"world generation (50k tracks, 10k users, written to disk): {generation:.1f} s\n")
    print("| agent | cache | sessions | steps | steps/s (CPU) | sessions/s (CPU) | steps/s (wall) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, runs in results["agents"].items():
        for cache, r in runs.items():
            print(f"| {name} | {cache} | {r['episodes']} | {r['steps']} | {r['steps_per_s']:,.0f} "
                  f"| {r['sessions_per_s']:,.0f} | {r['wall_steps_per_s']:,.0f} |")  # fmt: skip
    trivial = results["agents"]["random"]["warm"]["steps_per_s"]
    results["target_steps_per_s"] = TARGET_STEPS_PER_SECOND
    results["meets_target"] = trivial >= TARGET_STEPS_PER_SECOND
    print(f"\ntrivial agent, warm: {trivial:,.0f} steps per CPU second (target {TARGET_STEPS_PER_SECOND:,})")
    write_text(args.out, json.dumps(results, indent=2) + "\n")  # its folder made if missing
    return 0


if __name__ == "__main__":
    sys.exit(main(parse_args()))
