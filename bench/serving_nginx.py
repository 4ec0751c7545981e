"""deploy/nginx.conf for real: nginx in front of N botify replicas on loopback, checked and measured.

One command (from the repository root): `.venv/bin/python bench/serving_nginx.py --replicas 2`

The compose file's nginx config runs here with only what Docker provides swapped for loopback:
the replicas' addresses (Docker's DNS name `recommender` -> 127.0.0.1 ports), the listen address and
nginx's own paths. Then it checks what the proxy promises (answers pass through on kept-alive upstream
connections; an oversized body gets a JSON 413, a request line or a header too long a JSON 414 or 431, one nginx
cannot parse a JSON 400, a transfer coding it lacks a JSON 501; no replica left gets a JSON 503; clients that stall
mid-request, more of them than the replicas have threads, hold nginx's connections, not the replicas' threads) and
measures throughput and latency through nginx against one replica asked directly. Needs nginx and wrk (Debian:
`apt-get install -y nginx wrk`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path

from bench_arguments import non_negative, output_file, output_folder, positive
from serving_load import run_wrk
from serving_servers import BOTIFY_APP, REPO, free_port, gunicorn, loaded_redis
from serving_world import write_world

from botify.arguments import OneLineParser
from botify.settings import Settings
from models.atomic import write_text

CONFIG = REPO / "deploy" / "nginx.conf"


def local_config(text: str, replicas: list[str], port: int, scratch: Path) -> str:
    """The deployed config with Docker's parts replaced by loopback ones; fails if the config drifted."""
    swaps = {
        "        server recommender:5001 resolve;\n": "".join(f"        server {r};\n" for r in replicas),
        "    resolver 127.0.0.11 valid=5s ipv6=off;\n": "",
        "        listen 5001;\n": f"        listen 127.0.0.1:{port};\n",
        "error_log /dev/stderr warn;": f"error_log {scratch / 'error.log'} warn;",
    }
    for old, new in swaps.items():
        if old not in text:
            raise RuntimeError(f"deploy/nginx.conf no longer has {old.strip()!r}; update serving_nginx.py")
        text = text.replace(old, new)
    temp_paths = "".join(
        f"    {kind}_temp_path {scratch / kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"pid {scratch / 'nginx.pid'};\n" + text.replace("http {\n", "http {\n" + temp_paths, 1)


def post(url: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    """Status and JSON answer (a non-JSON answer raises)."""
    request = urllib.request.Request(url, body, {"Content-Type": "application/json", **(headers or {})}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def send_raw(url: str, request: bytes) -> tuple[int, dict]:
    """Status and JSON answer to bytes sent as they are (a non-JSON answer raises)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


@contextmanager
def stalled_clients(url: str, count: int):
    """`count` connections that each send a request head and part of its body, then nothing more, while inside."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    head = b'POST /next/1 HTTP/1.1\r\nHost: botify\r\nContent-Length: 25\r\n\r\n{"track"'
    with ExitStack() as stack:
        for _ in range(count):
            stack.enter_context(socket.create_connection((host, int(port)), timeout=5)).sendall(head)
        yield


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicas", type=positive, default=2, help="botify replicas behind nginx")
    parser.add_argument("--workers", type=positive, default=1, help="gunicorn workers per replica")
    parser.add_argument(
        "--duration", type=positive, default=10, help="whole seconds per measured run (as wrk takes them)"
    )
    parser.add_argument("--connections", type=positive, default=32)
    parser.add_argument("--seed", type=non_negative, default=0)
    parser.add_argument("--world", type=output_folder, default=REPO / "results" / "bench" / "world")
    parser.add_argument("--out", type=output_file, default=REPO / "results" / "bench" / "serving_nginx.json")
    return parser.parse_args(argv)


def main(args: argparse.Namespace) -> int:
    for tool in ("nginx", "wrk"):
        if shutil.which(tool) is None:
            print(
                f"serving_nginx: {tool} is not installed; install it with `apt-get install -y {tool}`", file=sys.stderr
            )
            return 1
    world = write_world(args.world, args.seed)
    size = (world.size.requesting_users, world.size.tracks)
    results: dict = {"settings": {k: v for k, v in vars(args).items() if k not in ("world", "out")}}
    with (
        tempfile.TemporaryDirectory() as scratch_dir,
        loaded_redis(Path(scratch_dir), world) as redis,
        ExitStack() as stack,
    ):
        scratch = Path(scratch_dir)
        env = {"REDIS_URL": redis.url, "BOTIFY_LOG_DIR": str(scratch / "log")}
        replica = partial(gunicorn, BOTIFY_APP, args.workers, Settings.threads, **env)
        servers = [stack.enter_context(replica()) for _ in range(args.replicas)]
        port = free_port()
        config = scratch / "nginx.conf"
        config.write_text(
            local_config(CONFIG.read_text(), [s.url.removeprefix("http://") for s in servers], port, scratch)
        )
        subprocess.run(["nginx", "-t", "-q", "-c", str(config)], check=True)
        nginx = subprocess.Popen(["nginx", "-c", str(config), "-g", "daemon off;"])
        url = f"http://127.0.0.1:{port}"
        try:
            time.sleep(0.5)
            checks = {
                "next passes through": post(f"{url}/next/1", b'{"track": 5, "time": 0.5}')[0] == 200,
                "oversized body: JSON 413": post(f"{url}/next/1", b"x" * 5000) == (413, json.loads(
                    '{"message": "body too large: at most 4096 bytes"}')),
                "request line beyond nginx's buffers: JSON 414": post(f"{url}/next/{'9' * 9000}", b"{}")[0] == 414,
                "request line beyond gunicorn's limit: JSON 414": post(f"{url}/next/{'9' * 5000}", b"{}")[0] == 414,
                "header beyond nginx's buffers: JSON 431": post(f"{url}/next/1", b"{}", {"X-Pad": "x" * 9000})[0]
                    == 431,
                "an error page asked for directly: JSON 404": post(f"{url}/headers_too_large.json", b"{}")[0] == 404,
                "a request line nginx cannot parse: JSON 400": send_raw(url, b"GARBAGE\r\n\r\n")[0] == 400,
                "a Host header nginx refuses: JSON 400": send_raw(url, b"GET /health HTTP/1.1\r\nHost: a b\r\n\r\n")[0]
                    == 400,
                "a transfer coding nginx lacks: JSON 501": send_raw(
                    url, b"POST /next/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n")[0] == 501,
            }  # fmt: skip
            with stalled_clients(url, 4 * args.replicas * args.workers * Settings.threads):
                time.sleep(0.5)  # long enough for the stalled heads to reach a replica, were they passed on
                checks["clients stalled mid-request hold nginx, not the replicas"] = (
                    post(f"{url}/next/1", b'{"track": 5, "time": 0.5}')[0] == 200
                )
            results["through_nginx"] = run_wrk(url, args.connections, args.duration, *size, args.seed)
            results["one_replica_direct"] = run_wrk(servers[0].url, args.connections, args.duration, *size, args.seed)
            for server in servers:
                server.process.terminate()
                server.process.wait(timeout=30)
            status, answer = post(f"{url}/next/1", b'{"track": 5, "time": 0.5}')
            checks["no replica left: JSON 503"] = status == 503 and answer["message"].startswith(
                "no recommender replica answered"
            )
            results["checks"] = checks
        finally:
            nginx.terminate()
            nginx.wait(timeout=10)
    write_text(args.out, json.dumps(results, indent=2) + "\n")  # its folder made if missing
    for name in ("through_nginx", "one_replica_direct"):
        run = results[name]
        print(f"{name:20s} {run['rps']:7.0f} req/s  p50 {run['latency_ms']['p50']:.2f} ms  "
              f"p99 {run['latency_ms']['p99']:.2f} ms  errors {run['errors']}")  # fmt: skip
    for check, passed in results["checks"].items():
        print(f"{'ok  ' if passed else 'FAIL'} {check}")
    print(f"figures: {args.out}")
    return 0 if all(results["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main(parse_args()))
