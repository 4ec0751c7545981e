"""Where a `POST /next` spends its time: py-spy samples a gunicorn worker under wrk load.

One command (from the repository root): `.venv/bin/python bench/serving_profile.py`

One worker with one thread serves the benchmark world (see serving_load.py) while wrk keeps it busy;
py-spy samples it from outside (no code change, real gunicorn). Writes the collapsed stacks
(`results/bench/serving_profile.txt`, for flamegraph tools or speedscope) and prints the functions
with the largest share of the busy samples, inclusive and self. Needs wrk (`apt-get install -y wrk`)
and py-spy (`.venv/bin/pip install py-spy==0.4.3`; sampling another process needs root or ptrace rights).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from bench_arguments import non_negative, output_file, output_folder, positive
from serving_load import WRK_SCRIPT
from serving_servers import BOTIFY_APP, REPO, gunicorn, loaded_redis
from serving_world import write_world

from botify.arguments import OneLineParser

IDLE = ("select (selectors.py", "dequeue (logging", "wait (threading.py", "_worker (concurrent/futures/thread.py:")


def shares(stacks: Path, top: int) -> str:
    """Inclusive and self shares of the busy samples, per function (idle waits left out)."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    busy = 0
    for line in stacks.read_text().splitlines():
        stack, count = line.rsplit(" ", 1)
        frames = stack.split(";")
        if frames[-1].startswith(IDLE):
            continue
        busy += int(count)
        own[frames[-1]] += int(count)
        for frame in set(frames):
            inclusive[frame] += int(count)
    lines = [f"{busy} busy samples", "inclusive:"]
    lines += [f"  {100 * n / busy:5.1f}%  {frame[:110]}" for frame, n in inclusive.most_common(top)]
    lines += ["self:"] + [f"  {100 * n / busy:5.1f}%  {frame[:110]}" for frame, n in own.most_common(top)]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--duration", type=positive, default=10, help="whole seconds sampled (as wrk and py-spy take them)"
    )
    parser.add_argument("--connections", type=positive, default=4, help="wrk keep-alive connections")
    parser.add_argument("--rate", type=positive, default=250, help="py-spy samples per second")
    parser.add_argument("--top", type=positive, default=40, help="functions listed")
    parser.add_argument("--gil", action="store_true", help="only samples holding the GIL: Python CPU time")
    parser.add_argument("--seed", type=non_negative, default=0)
    parser.add_argument("--world", type=output_folder, default=REPO / "results" / "bench" / "world")
    parser.add_argument("--out", type=output_file, default=REPO / "results" / "bench" / "serving_profile.txt")
    return parser.parse_args(argv)


def main(args: argparse.Namespace) -> int:
    py_spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    for tool, install in (
        (shutil.which("wrk"), "apt-get install -y wrk"),
        (py_spy, ".venv/bin/pip install py-spy==0.4.3"),
    ):
        if tool is None:
            print(f"serving_profile: missing a tool; install it with `{install}`", file=sys.stderr)
            return 1
    world = write_world(args.world, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch, loaded_redis(Path(scratch), world) as redis:
        env = {"REDIS_URL": redis.url, "BOTIFY_LOG_DIR": str(Path(scratch) / "log")}
        with gunicorn(BOTIFY_APP, workers=1, threads=1, **env) as server:
            load = [f"-c{args.connections}", f"-d{args.duration + 4:g}s", "-s", str(WRK_SCRIPT), server.url]
            size = [str(world.size.requesting_users), str(world.size.tracks), str(args.seed)]
            wrk = subprocess.Popen(["wrk", "-t1", *load, "--", *size], stdout=subprocess.DEVNULL)
            try:
                [worker] = server.worker_pids()
                record = [py_spy, "record", "--pid", str(worker), "--duration", f"{args.duration:g}", "--rate"]
                record += [str(args.rate), "--format", "raw", "--output", str(args.out), "--nonblocking"]
                record += ["--gil"] if args.gil else []
                sampled = subprocess.run(record, capture_output=True, text=True)
            finally:
                wrk.kill()
                wrk.wait()
    if sampled.returncode != 0:  # e.g. not allowed to ptrace the worker (kernel.yama.ptrace_scope)
        reason = (sampled.stderr.strip().splitlines() or ["no message"])[-1]
        print(f"serving_profile: py-spy could not sample the worker: {reason}", file=sys.stderr)
        return 1
    print(shares(args.out, args.top))
    print(f"collapsed stacks: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(parse_args()))
