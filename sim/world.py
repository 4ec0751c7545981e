"""``python -m sim.world``: write a seeded music world in the course's file formats.

The same seed and sizes give byte-identical files.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from sim.catalog import write_world
from sim.cli import Parser, path_argument, run_cli
from sim.errors import SimError
from sim.generate import PRESETS, generate_world

# The largest world: its tracks' and users' vectors alone take up to 2 GiB in memory (the default world: 8 MiB).
MAX_TRACKS, MAX_USERS, MAX_DIM = 1_000_000, 1_000_000, 256


def main(argv: Sequence[str] | None = None) -> int:
    parser = Parser(
        prog="python -m sim.world",
        description="Write a seeded music world (tracks.json, tracks.npy, users.json, top_tracks.json).",
    )
    parser.add_argument("--out", type=path_argument, required=True, help="folder to write the world into")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="default",
        help="sizes: default = 50,000 tracks / 10,000 users, small = 5,000 / 1,000 (tests, demo)",
    )
    parser.add_argument("--tracks", type=int, help="number of tracks (overrides the preset)")
    parser.add_argument("--artists", type=int, help="number of artists (default: tracks / 10)")
    parser.add_argument("--users", type=int, help="number of users (overrides the preset)")
    parser.add_argument("--dim", type=int, help="embedding dimension (default: 32)")
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error("--seed must not be negative")

    config = PRESETS[args.preset]
    overrides = {k: getattr(args, k) for k in ("tracks", "artists", "users", "dim") if getattr(args, k) is not None}
    config = replace(config, **overrides)
    if config.tracks < 10 or config.users < 1 or config.dim < 2:
        raise SimError("need at least 10 tracks, 1 user and dimension 2")
    if config.tracks > MAX_TRACKS or config.users > MAX_USERS or config.dim > MAX_DIM:
        raise SimError(f"at most {MAX_TRACKS:,} tracks, {MAX_USERS:,} users and dimension {MAX_DIM}")
    if not 1 <= config.n_artists <= config.tracks:
        raise SimError(f"--artists must be between 1 and the number of tracks ({config.tracks})")

    world = generate_world(config, np.random.default_rng(args.seed))
    write_world(args.out, world.tracks, world.embeddings, world.users, world.top_tracks)
    artists = len({t["artist"] for t in world.tracks})
    print(f"wrote {len(world.tracks)} tracks by {artists} artists and {len(world.users)} users to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli("sim.world", main))
