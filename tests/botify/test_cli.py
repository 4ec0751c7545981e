"""`python -m botify`: a command that cannot run says why in one line and exits non-zero."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import pytest
import redis

from botify.connection import url_location
from botify.process import ServiceProcess, free_port
from botify.settings import Settings

from .conftest import post


def botify(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "botify", *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("url", "where"),
    [
        ("redis://:s3cret@10.0.0.5:6379/0", "10.0.0.5:6379/0"),
        ("rediss://admin:s3cret@db.example:6380/2?ssl_cert_reqs=none", "db.example:6380/2?ssl_cert_reqs=none"),
        ("unix:///run/redis.sock?db=0&password=s3cret", "/run/redis.sock?db=0"),
        ("unix:///run/redis.sock?Password=s3cret", "/run/redis.sock"),
        ("rediss://db.example:6380/0?ssl_keyfile=/k.pem&ssl_password=s3cret", "db.example:6380/0?ssl_keyfile=/k.pem"),
    ],
)
def test_where_a_redis_is_says_no_password(url, where):
    assert url_location(url) == where


def test_serve_prints_where_its_redis_is_without_the_password(own_redis, tiny_world, tmp_path):
    """`serve` printed REDIS_URL as given, its password included, into every terminal and log that keeps its output."""
    own_redis.client().config_set("requirepass", "s3cret")
    url = f"redis://:s3cret@127.0.0.1:{own_redis.port}/0"
    port = free_port()
    env = {**os.environ, "REDIS_URL": url, "BOTIFY_DATA_DIR": str(tiny_world), "BOTIFY_LOG_DIR": str(tmp_path / "log")}
    command = [sys.executable, "-m", "botify", "serve", "--port", str(port), "--workers", "1"]
    serve = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    try:
        lines = [serve.stdout.readline()]
        while lines[-1] and not lines[-1].startswith("botify serving"):
            lines.append(serve.stdout.readline())
    finally:
        serve.terminate()
        serve.wait(timeout=60)
        redis.Redis.from_url(url).config_set("requirepass", "")
    assert lines[-1] == f"botify serving on http://127.0.0.1:{port} (Redis: 127.0.0.1:{own_redis.port}/0)\n"
    assert not any("s3cret" in line for line in lines)


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("BOTIFY_EXPERIMENT", "HW3", "unknown experiment 'HW3'"),
        ("BOTIFY_FALLBACK", "toppop,magic", "magic"),
        ("BOTIFY_FALLBACK", " , ", "BOTIFY_FALLBACK names no fallback recommender; choose from ['random', 'sticky_"),
        ("BOTIFY_WORKERS", "abc", "BOTIFY_WORKERS must be a whole number, got 'abc'"),
        ("BOTIFY_WORKERS", "0", "BOTIFY_WORKERS must be at least 1, got 0"),
        ("BOTIFY_WORKERS", str(10**20), f"BOTIFY_WORKERS must be at most 512, got {10**20}"),  # forked without end
        ("BOTIFY_THREADS", "1000", "BOTIFY_THREADS must be at most 512, got 1000"),  # no connection kept alive
        ("BOTIFY_SESSION_TTL", "-5", "BOTIFY_SESSION_TTL must be at least 1, got -5"),
        ("BOTIFY_SESSION_TTL", str(10**16), f"BOTIFY_SESSION_TTL must be at most 2147483647, got {10**16}"),
        ("BOTIFY_SEED", "-1", "BOTIFY_SEED must be at least 0, got -1"),
        ("BOTIFY_SEED", "rand", "BOTIFY_SEED must be a whole number or 'random', got 'rand'"),
        ("BOTIFY_LOG_LEVEL", "loud", "BOTIFY_LOG_LEVEL must be one of debug, info, warning, error, critical, got 'lo"),
    ],
)
def test_serve_with_bad_settings_exits_with_one_line_before_starting_anything(tmp_path, variable, value, reason):
    result = botify("serve", "--port", str(free_port()), REDIS_URL="redis://127.0.0.1:1/0", **{variable: value})
    assert (result.returncode, result.stdout) == (1, "")
    [line] = result.stderr.splitlines()
    assert reason in line


def test_serve_refuses_an_experiment_naming_an_unknown_recommender_in_one_line():
    """A misspelt recommender in a registered experiment answered its arm's every `/next` with a 500."""
    register_and_serve = (
        "import sys; from botify.experiments import Experiment; from botify.registry import EXPERIMENTS; "
        "EXPERIMENTS['MINE'] = Experiment('MINE', ('sticky_artist', 'sticky-artist')); "
        "from botify.__main__ import main; sys.exit(main(sys.argv[1:]))"
    )
    command = [sys.executable, "-c", register_and_serve, "serve", "--port", str(free_port())]
    env = {**os.environ, "REDIS_URL": "redis://127.0.0.1:1/0", "BOTIFY_EXPERIMENT": "MINE"}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        "botify serve: experiment MINE names unknown recommender(s) ['sticky-artist']; registered: "
        "['lightfm', 'lightfm_in_order', 'lightfm_nofeat', 'random', 'sticky_artist', 'toppop']\n"
    )


def test_a_fallback_list_ignores_empty_names_around_commas() -> None:
    assert Settings.from_env({"BOTIFY_FALLBACK": "toppop, "}).fallback == ("toppop",)
    assert Settings.from_env({"BOTIFY_FALLBACK": " toppop , ,random,"}).fallback == ("toppop", "random")


def test_the_seed_of_the_random_picks_is_a_number_or_random() -> None:
    assert Settings.from_env({}).seed == 0 and Settings.from_env({"BOTIFY_SEED": "7"}).seed == 7
    assert Settings.from_env({"BOTIFY_SEED": " Random "}).seed is None  # each worker's from the OS


@pytest.mark.parametrize(
    ("log_dir", "reason"),
    [("passwd", "cannot create BOTIFY_LOG_DIR {}: File exists"), ("no/such/deep", None)],
)
def test_serve_with_a_log_dir_it_cannot_create_is_one_line(tmp_path, log_dir, reason):
    (tmp_path / "passwd").write_text("a file, not a folder")
    where = tmp_path / log_dir
    port = free_port()
    result = botify("serve", "--port", str(port), REDIS_URL="redis://127.0.0.1:1/0", BOTIFY_LOG_DIR=str(where))
    if reason is None:  # a missing folder is made, and serve goes on to fail at the unreachable Redis
        assert where.is_dir() and result.returncode == 1 and "connecting to" in result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
    else:
        assert (result.returncode, result.stdout, result.stderr) == (1, "", f"botify serve: {reason.format(where)}\n")


@pytest.mark.parametrize("command", ["load", "serve"])
def test_an_unreachable_redis_is_one_line(tiny_world, command):
    unreachable = f"redis://127.0.0.1:{free_port()}/0"
    args = ["--data", str(tiny_world)] if command == "load" else ["--port", str(free_port())]
    result = botify(command, *args, REDIS_URL=unreachable, BOTIFY_DATA_DIR=str(tiny_world))
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"botify {command}: ") and "connecting to" in line


@pytest.mark.parametrize("command", ["load", "serve"])
@pytest.mark.parametrize("password", ["pa/SECRET", "pa?SECRET", "pa#SECRET", "4821/SECRET", "4821?SECRET"])
def test_a_password_redis_py_cannot_read_in_the_url_is_never_printed(tiny_world, command, password):
    """A `/`, `?` or `#` left unencoded in REDIS_URL's password: redis-py's error quoted the part before it, or (digits)
    took it for a port of localhost's and the connection error printed it."""
    args = ["--data", str(tiny_world)] if command == "load" else ["--port", str(free_port())]
    result = botify(command, *args, REDIS_URL=f"redis://:{password}@127.0.0.1:6379/0", BOTIFY_DATA_DIR=str(tiny_world))
    assert (result.returncode, result.stderr) == (
        1,
        f"botify {command}: cannot use the Redis of REDIS_URL (127.0.0.1:6379/0): an @ after its host "
        "(percent-encode any / ? # @ in its user name or password)\n",
    )


@pytest.mark.parametrize("command", ["load", "serve"])
def test_a_redis_refusing_the_password_says_which_redis_and_what_to_check(own_redis, tiny_world, command):
    """Redis's words alone ("HELLO must be called with the client already authenticated...") named neither the
    Redis nor the password."""
    own_redis.client().config_set("requirepass", "s3cret")
    try:
        args = ["--data", str(tiny_world)] if command == "load" else ["--port", str(free_port())]
        lines = {}
        for given in ("", ":wrong@"):
            url = f"redis://{given}127.0.0.1:{own_redis.port}/0"
            result = botify(command, *args, REDIS_URL=url, BOTIFY_DATA_DIR=str(tiny_world))
            assert result.returncode == 1
            [lines[given]] = result.stderr.splitlines()
    finally:
        redis.Redis(port=own_redis.port, password="s3cret").config_set("requirepass", "")
    for line in lines.values():
        assert line.startswith(f"botify {command}: cannot use the Redis of REDIS_URL (127.0.0.1:{own_redis.port}/0): ")
        assert line.endswith(" (check the password REDIS_URL gives: redis://:PASSWORD@HOST:PORT/DB)")
    assert "wrong" not in lines[":wrong@"]


def test_tls_asked_of_a_redis_without_it_says_so(own_redis, tiny_world):
    result = botify("load", "--data", str(tiny_world), REDIS_URL=f"rediss://127.0.0.1:{own_redis.port}/0")
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"botify load: cannot use the Redis of REDIS_URL (127.0.0.1:{own_redis.port}/0): ")
    assert line.endswith(" (rediss:// speaks TLS: does that Redis take TLS on that port?)")


def test_ctrl_c_during_a_load_is_one_line_and_publishes_nothing_half_way(redis_server, tiny_world, tmp_path):
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    recs = tmp_path / "big.jsonl"
    recs.write_text("".join(f'{{"user": {user}, "tracks": [1, 2, 3]}}\n' for user in range(300_000)))
    command = [sys.executable, "-m", "botify", "load", "--data", str(tiny_world), "--recs", f"lightfm={recs}"]
    load = subprocess.Popen(
        command, env={**os.environ, "REDIS_URL": redis_server.url}, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert load.stdout.readline().startswith(b"checking recommendations lightfm")  # reading them now
    load.send_signal(signal.SIGINT)
    _, stderr = load.communicate(timeout=60)
    assert (load.returncode, stderr) == (130, b"botify load: interrupted\n")
    assert client.get("catalog:current") is None and client.get("recs:lightfm:current") is None


def test_serve_on_a_port_in_use_says_so_instead_of_sharing_it():
    """gunicorn's SO_REUSEPORT sockets would otherwise join whatever already listens there (another botify)."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = botify("serve", "--port", str(port), REDIS_URL="redis://127.0.0.1:1/0")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == f"botify serve: cannot listen on 127.0.0.1:{port}: Address already in use\n"


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--port", "99999"], "error: argument --port: 99999 is not in [1, 65535]"),
        (["--workers", "0"], "error: argument --workers: 0 is not in [1, 512]"),
        (["--host", "nosuchhost.invalid"], "cannot resolve --host 'nosuchhost.invalid'"),
    ],
)
def test_serve_with_a_bad_address_or_worker_count_is_one_line(args, reason):
    result = botify("serve", *args, REDIS_URL="redis://127.0.0.1:1/0")
    assert result.returncode in (1, 2) and result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("botify serve: ") and reason in line


@pytest.mark.parametrize("host", ["::1", "[::1]"])
def test_serve_listens_on_an_ipv6_host(redis_server, tiny_world, tmp_path, host):
    """`--host ::1` was handed to gunicorn as `::1:PORT`, which it refused with "'' is not a valid port number"."""
    redis.Redis.from_url(redis_server.url).flushdb()
    assert botify("load", "--data", str(tiny_world), REDIS_URL=redis_server.url).returncode == 0
    env = {"REDIS_URL": redis_server.url, "BOTIFY_DATA_DIR": str(tiny_world)}
    service = ServiceProcess.start(free_port(), tmp_path / "log", env, workers=1, host=host)
    try:
        assert service.url.startswith("http://[::1]:")
        assert post(f"{service.url}/last/5", {"track": 3, "time": 0.5}) == (200, {"user": 5})
    finally:
        service.stop()
