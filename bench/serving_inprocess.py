"""Where a `POST /next` request's CPU goes inside the app: the WSGI app called in process, without gunicorn.

One command (from the repository root): `.venv/bin/python bench/serving_inprocess.py`

The benchmark world (see serving_load.py) is loaded into a real redis-server on loopback and botify's app is
built on it by `create_app`, as each gunicorn worker builds it (HW_2; without the workers' `gc.freeze()`). The
same kind of requests as the serving benchmark (random users of the 12,000 ids, random tracks) are passed to the
app one after another, and this process's CPU time per request is measured for:
- the Flask hello-world (`bench/serving_hello.py`): the framework's own cost;
- botify, a user of HW_2's StickyArtist arm;
- botify, a user of the LightFM arm, as served (one Redis call, session-aware re-ranking);
- the same with the Redis call answered from memory (each request's reply, recorded from the real call before,
  so its session is the one as recorded: a listen shorter than the served variants see);
- the same with the re-ranking replaced by the list in stored order (the registry's `lightfm_in_order`);
- both.
Taking parts out one at a time says what each costs. The variants alternate within each round, in a new order each
round, so all see the same moments of the machine; each variant's median over the rounds is reported. Figures go to
`results/bench/serving_inprocess.json` and a table.
Redis's own CPU is not counted (see serving_load.py for the whole server under load).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from bench_arguments import non_negative, output_file, output_folder, positive
from serving_servers import REPO, loaded_redis
from serving_world import WorldSize, write_world

from botify.arguments import OneLineParser
from botify.registry import EXPERIMENTS, experiment_arms
from botify.settings import Settings
from models.atomic import write_text

if TYPE_CHECKING:
    import numpy as np
    from flask import Flask

EXPERIMENT = EXPERIMENTS["HW_2"]
Request = tuple[int, int, float]  # user, track, fraction listened


def arm_users(size: WorldSize, arm: str) -> np.ndarray:
    """The requesting user ids in HW_2's `arm`."""
    import numpy as np

    return np.array([u for u in range(size.requesting_users) if experiment_arms(u)[EXPERIMENT.name] == arm])


def draw_requests(rng: np.random.Generator, users: np.ndarray, size: WorldSize, count: int) -> list[Request]:
    picked, tracks, listened = rng.choice(users, size=count), rng.integers(size.tracks, size=count), rng.random(count)
    return [(int(u), int(t), round(float(x), 2)) for u, t, x in zip(picked, tracks, listened, strict=True)]


def environs(requests: list[Request]) -> list[dict]:
    """WSGI environments of `POST /next/<user>` with the JSON body, built before the clock starts."""
    from werkzeug.test import EnvironBuilder

    return [
        EnvironBuilder(
            path=f"/next/{user}", method="POST", content_type="application/json",
            data=json.dumps({"track": track, "time": listened}),
        ).get_environ()
        for user, track, listened in requests
    ]  # fmt: skip


def cpu_per_request(app: Flask, requests: list[Request]) -> float:
    """This process's CPU µs per request, every answer checked to be a 200."""
    statuses: list[str] = []

    def start_response(status: str, headers: list, exc_info: object = None) -> None:
        statuses.append(status)

    prepared = environs(requests)
    started = time.process_time()
    for environ in prepared:
        b"".join(app(environ, start_response))
    spent = time.process_time() - started
    failed = [status for status in statuses if not status.startswith("200")]
    if failed:
        raise RuntimeError(f"{len(failed)} requests not answered 200, e.g. {failed[0]}")
    return spent / len(prepared) * 1e6


class Variant:
    """The LightFM arm with parts taken out: its Redis call replayed from memory, its re-ranking in stored order."""

    def __init__(self, app: Flask) -> None:
        self.services = app.extensions["botify"]
        self.store = self.services.store
        self.session_aware = self.services.recommenders["lightfm"]
        self.in_order = self.services.recommenders["lightfm_in_order"]

    def record(self, app: Flask, requests: list[Request]) -> list:
        """The real Redis replies to `requests` (served once, unmeasured), in order."""
        replies: list = []
        real = self.store._call

        def recording(*command: object) -> object:
            replies.append(real(*command))
            return replies[-1]

        self.store._call = recording
        try:
            cpu_per_request(app, requests)
        finally:
            self.store.__dict__.pop("_call", None)  # the class's method again
        return replies

    def measure(self, app: Flask, requests: list[Request], replies: list | None, in_order: bool) -> float:
        if replies is not None:
            canned = iter(replies)
            self.store._call = lambda *command: next(canned)
        self.services.recommenders["lightfm"] = self.in_order if in_order else self.session_aware
        try:
            return cpu_per_request(app, requests)
        finally:
            self.services.recommenders["lightfm"] = self.session_aware
            self.store.__dict__.pop("_call", None)


def run(args: argparse.Namespace) -> dict:
    import numpy as np
    from serving_hello import app as hello_app

    size = WorldSize()
    world = write_world(args.world, args.seed)
    rng = np.random.default_rng(args.seed)
    control, treatment = arm_users(size, "C"), arm_users(size, "T1")
    rounds: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as scratch, loaded_redis(Path(scratch), world) as redis:
        os.environ.update(REDIS_URL=redis.url, BOTIFY_LOG_DIR=str(Path(scratch) / "log"))
        from botify.app import create_app  # after the environment names the Redis: the app reads it when built

        botify_app = create_app(Settings.from_env(experiment=EXPERIMENT.name))
        variant = Variant(botify_app)
        # Sessions as the closed loop leaves them: every requesting user has listened a few times already.
        if args.warmup:  # 0: none (no requests to divide the CPU by)
            cpu_per_request(botify_app, draw_requests(rng, treatment, size, args.warmup))
        for round_number in range(args.rounds):
            lightfm = draw_requests(rng, treatment, size, args.requests)
            replies = variant.record(botify_app, lightfm)
            measures = {
                "hello-world": partial(cpu_per_request, hello_app, draw_requests(rng, treatment, size, args.requests)),
                "StickyArtist": partial(cpu_per_request, botify_app, draw_requests(rng, control, size, args.requests)),
                "LightFM as served": partial(variant.measure, botify_app, lightfm, None, False),
                "LightFM, Redis reply from memory": partial(variant.measure, botify_app, lightfm, replies, False),
                "LightFM, stored order": partial(variant.measure, botify_app, lightfm, None, True),
                "LightFM, both": partial(variant.measure, botify_app, lightfm, replies, True),
            }
            order = rng.permutation(list(measures))  # a new order each round: no variant always follows another
            figures = {name: measures[name]() for name in order}
            for name in measures:
                rounds.setdefault(name, []).append(figures[name])
            listed = ", ".join(f"{name} {figures[name]:.0f}" for name in measures)
            print(f"round {round_number + 1}/{args.rounds} (CPU µs per request): {listed}", flush=True)
    return {
        "settings": {k: v for k, v in vars(args).items() if k not in ("world", "out")},
        "cpu_us_per_request": {name: float(np.median(values)) for name, values in rounds.items()},
        "rounds": rounds,
    }


def report(results: dict) -> str:
    medians = results["cpu_us_per_request"]
    width = max(map(len, medians))
    lines = [f"{'request, in process':<{width}}  CPU µs (median of {results['settings']['rounds']} rounds)"]
    lines += [f"{name:<{width}}  {value:8.0f}" for name, value in medians.items()]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=positive, default=2000, help="requests per variant and round")
    parser.add_argument("--rounds", type=positive, default=11, help="rounds of every variant (median kept)")
    parser.add_argument(
        "--warmup", type=non_negative, default=20000, help="unmeasured LightFM requests first (sessions)"
    )
    parser.add_argument("--seed", type=non_negative, default=0)
    parser.add_argument(
        "--world", type=output_folder, default=REPO / "results" / "bench" / "world", help="world cache folder"
    )
    parser.add_argument("--out", type=output_file, default=REPO / "results" / "bench" / "serving_inprocess.json")
    return parser.parse_args(argv)


def main(args: argparse.Namespace) -> int:
    results = run(args)
    write_text(args.out, json.dumps(results, indent=2) + "\n")  # its folder made if missing
    print(report(results))
    print(f"figures: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(parse_args()))
