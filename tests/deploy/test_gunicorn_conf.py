"""botify's gunicorn settings that act in a worker or in the master."""

import gc
import os
import signal
import subprocess
import sys
import threading

import pytest
from gunicorn.config import Config

from botify import gunicorn_conf
from botify.gunicorn_worker import DrainingThreadWorker
from botify.process import free_port
from botify.registry import SIMPLE_KINDS
from botify.wiring import SIMPLE


def test_a_worker_freezes_what_it_loaded_so_full_collections_skip_it():
    gc.unfreeze()  # the test process's own state: nothing frozen
    try:
        gunicorn_conf.post_worker_init(worker=None)
        assert gc.get_freeze_count() > 1000  # the modules and objects loaded so far, out of the collector's passes
    finally:
        gc.unfreeze()


def test_gunicorn_without_any_redis_refuses_in_one_line(tmp_path):
    """Started directly (as in the image), with no REDIS_URL and no embedded Redis: each worker died with an import
    traceback of ~40 lines; the master now says what is missing, once, and starts no worker."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("BOTIFY_", "REDIS_"))}
    environment |= {"BOTIFY_DATA_DIR": str(tmp_path / "world"), "BOTIFY_BIND": f"127.0.0.1:{free_port()}"}
    finished = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "python:botify.gunicorn_conf", "botify.wsgi:app"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 1
    assert finished.stderr.splitlines() == [
        f"botify: REDIS_URL is not set and no embedded Redis serves {tmp_path / 'world' / 'redis'}: "
        "run `python -m botify serve`, which starts it, or set REDIS_URL"
    ]


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("BOTIFY_WORKERS", "two", "BOTIFY_WORKERS must be a whole number, got 'two'"),
        ("BOTIFY_EXPERIMENT", "HW_3", "unknown experiment 'HW_3'; registered: ['AA', 'EXPLORE', 'HW_2', 'HW_2_ARMS']"),
        ("BOTIFY_FALLBACK", "toppop,popular", "unknown fallback recommender(s) ['popular']; choose from "
         "['random', 'sticky_artist', 'toppop']"),
        ("BOTIFY_LOG_DIR", "{tmp}/a-file/log", "cannot create BOTIFY_LOG_DIR {tmp}/a-file/log: Not a directory"),
        ("REDIS_URL", "redis://:pa/SECRET@127.0.0.1:6379/0", "cannot use the Redis of REDIS_URL (127.0.0.1:6379/0): "
         "an @ after its host (percent-encode any / ? # @ in its user name or password)"),
        ("REDIS_URL", "redis://:4821/SECRET@127.0.0.1:6379/0", "cannot use the Redis of REDIS_URL (127.0.0.1:6379/0): "
         "an @ after its host (percent-encode any / ? # @ in its user name or password)"),
    ],
)  # fmt: skip
def test_gunicorn_with_bad_settings_refuses_in_one_line(tmp_path, redis_server, variable, value, message):
    """Started directly, bad settings as `botify serve` gives them: one line and no worker started. Read by the config
    file, they were gunicorn's "Failed to read config file" traceback; built in each worker, a traceback per worker
    and exit code 3."""
    (tmp_path / "a-file").write_text("")
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("BOTIFY_", "REDIS_"))}
    environment |= {
        "REDIS_URL": redis_server.url,
        "BOTIFY_LOG_DIR": str(tmp_path / "log"),
        "BOTIFY_BIND": f"127.0.0.1:{free_port()}",
        variable: value.format(tmp=tmp_path),
    }
    command = [sys.executable, "-m", "gunicorn", "-c", "python:botify.gunicorn_conf", "botify.wsgi:app"]
    finished = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=60)
    assert (finished.returncode, finished.stderr.splitlines()) == (1, [f"botify: {message.format(tmp=tmp_path)}"])


def test_a_worker_told_to_quit_inside_its_thread_pools_submit_quits():
    """A Ctrl-C can land while the worker's main thread is in its pool's `submit`, which holds the lock the pool's
    `shutdown()` takes: gthread's quit handler shut the pool down there and waited for itself until the master
    killed it, 15 s later."""
    worker = DrainingThreadWorker(1, os.getpid(), [], None, 30, Config(), None)
    worker.tpool = worker.get_thread_pool()
    exits = []

    def quit_inside_submit() -> None:
        with worker.tpool._shutdown_lock:  # held as `submit` holds it
            try:
                worker.handle_quit(signal.SIGINT, None)
            except SystemExit as stop:
                exits.append(stop.code)

    quitting = threading.Thread(target=quit_inside_submit, daemon=True)
    quitting.start()
    quitting.join(timeout=10)
    assert exits == [0]
    worker.tpool.shutdown()
    worker.tmp.close()


def test_gunicorn_with_the_app_preloaded_refuses_in_one_line(tmp_path, redis_server):
    """A preloaded app (`--preload`) is built once in the master: every worker then wrote the master's event-log
    file and rotated it under the others (a 503 when one rotated it away), and drew the same random stream."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("BOTIFY_", "REDIS_"))}
    environment |= {
        "REDIS_URL": redis_server.url,
        "BOTIFY_LOG_DIR": str(tmp_path / "log"),
        "BOTIFY_BIND": f"127.0.0.1:{free_port()}",
    }
    command = [sys.executable, "-m", "gunicorn", "-c", "python:botify.gunicorn_conf", "--preload", "botify.wsgi:app"]
    finished = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=60)
    assert finished.returncode == 1
    assert finished.stderr.splitlines() == [
        "botify: --preload is not supported: each worker builds its own app (its event log)"
    ]
    assert not (tmp_path / "log").exists()  # refused before the app was built: no event-log file of the master's


def test_the_masters_checks_leave_numpy_and_the_app_out_of_it(tmp_path, redis_server):
    """The master checks the settings before any worker starts without importing the app: workers import it after
    the fork, each in about the same time, so the second is up when the first answers `/ready` (a master holding the
    app's modules forked a first worker ready in milliseconds, before the second existed: keep-alive clients
    connecting then all landed on the first)."""
    check = (
        "import sys; from botify import gunicorn_conf; gunicorn_conf.on_starting(None); "
        "print(sorted(m for m in ('numpy', 'flask', 'botify.app') if m in sys.modules))"
    )
    environment = os.environ | {"REDIS_URL": redis_server.url, "BOTIFY_LOG_DIR": str(tmp_path / "log")}
    finished = subprocess.run(
        [sys.executable, "-c", check], env=environment, capture_output=True, text=True, timeout=60
    )
    assert (finished.returncode, finished.stdout, finished.stderr) == (0, "[]\n", "")


def test_every_fallback_kind_is_one_the_service_builds():
    assert sorted(SIMPLE_KINDS) == sorted(SIMPLE)
