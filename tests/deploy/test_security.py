"""Data in Redis is not trusted code, and no privileged path is open over HTTP.

- botify's code never unpickles, evals or execs, and loads arrays with pickles refused;
- a pickle planted where the service reads a session or track metadata is never run;
- every route beyond the course API, /health and /ready (there is none today: no admin or reload
  endpoint) must refuse a caller without a token.
"""

from __future__ import annotations

import ast
import pickle
import threading
from pathlib import Path

import pytest
import redis
import requests
from werkzeug.routing import Map
from werkzeug.serving import make_server

from botify.app import create_app
from botify.event_log import INT64_MAX
from botify.registry import EXPERIMENTS
from botify.settings import Settings
from botify.store import CATALOG, session_key

BOTIFY = Path(__file__).resolve().parents[2] / "botify"
UNSAFE_MODULES = {"pickle", "_pickle", "cPickle", "marshal", "shelve", "dill", "cloudpickle", "joblib"}
PUBLIC_ROUTES = {
    "/",
    "/health",
    "/ready",
    f"/track/<int(max={INT64_MAX}):track>",
    "/next/<int:user>",
    "/last/<int:user>",
}


def unsafe_code(source: str, name: str) -> list[str]:
    """What in `source` could run data as code: unpickling modules, eval/exec, pickle-enabled or YAML loads."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            modules = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [f"{name}:{node.lineno} imports {m}" for m in modules if m.split(".")[0] in UNSAFE_MODULES]
        if not isinstance(node, ast.Call):
            continue
        called = ast.unparse(node.func)
        if called in ("eval", "exec", "__import__"):
            found.append(f"{name}:{node.lineno} calls {called}")
        if called in ("np.load", "numpy.load") and not any(
            k.arg == "allow_pickle" and isinstance(k.value, ast.Constant) and k.value.value is False
            for k in node.keywords
        ):
            found.append(f"{name}:{node.lineno} calls {called} without allow_pickle=False")
        if called in ("yaml.load", "yaml.unsafe_load", "yaml.full_load"):
            found.append(f"{name}:{node.lineno} calls {called}")
    return found


def test_the_service_code_has_no_way_to_run_data_as_code():
    sources = sorted(BOTIFY.rglob("*.py"))
    assert len(sources) > 10
    assert [problem for path in sources for problem in unsafe_code(path.read_text(encoding="utf-8"), path.name)] == []


@pytest.mark.parametrize(
    ("snippet", "reported"),
    [
        ("import pickle", "imports pickle"),
        ("from marshal import loads", "imports marshal"),
        ("value = eval(raw)", "calls eval"),
        ("exec(raw)", "calls exec"),
        ("v = np.load(path)", "without allow_pickle=False"),
        ("v = np.load(path, allow_pickle=True)", "without allow_pickle=False"),
        ("d = yaml.load(text)", "calls yaml.load"),
    ],
)
def test_the_scan_catches_each_way(snippet, reported):
    assert any(reported in problem for problem in unsafe_code(snippet, "x.py"))


class Trap:
    """Unpickling this creates the file `path`: proof that something unpickled it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def test_a_pickle_planted_in_redis_is_never_run(start_botify, small_world, redis_server, tmp_path):
    service = start_botify(small_world.data_dir, small_world.recs)
    client = redis.Redis.from_url(redis_server.url)
    marker = tmp_path / "unpickled"
    user = next(u for u in range(100) if EXPERIMENTS["HW_2"].arm(u) == "T1")  # an arm that reads the session
    client.set(session_key(user), pickle.dumps(Trap(marker)))
    version = client.get(f"{CATALOG}:current").decode()
    client.hset(f"{version}:tracks", 5, pickle.dumps(Trap(marker)))

    listen = requests.post(f"{service.url}/next/{user}", json={"track": 150, "time": 0.5}, timeout=10)
    assert listen.status_code == 200  # an unreadable session is a new session, not a failed request
    following = requests.post(f"{service.url}/next/{user}", json={"track": listen.json()["track"], "time": 1})
    assert following.status_code == 200 and following.json()["track"] != listen.json()["track"]  # a session again
    assert requests.get(f"{service.url}/track/5", timeout=10).status_code != 200  # garbage is not served as data
    assert not marker.exists()


@pytest.fixture(scope="module")
def routes(redis_server, tmp_path_factory) -> Map:
    app = create_app(Settings(redis_url=redis_server.url, log_dir=tmp_path_factory.mktemp("routes-log")))
    app.extensions["botify"].events.close()
    return app.url_map


def open_routes(base_url: str, url_map: Map) -> list[str]:
    """Routes beyond the public API that answer a caller without a token (anything but 401, 403, 404 or 405)."""
    found = []
    for rule in url_map.iter_rules():
        if rule.rule in PUBLIC_ROUTES:
            continue
        url = base_url + url_map.bind("localhost").build(rule.endpoint, dict.fromkeys(rule.arguments, 1))
        for method in ("GET", "POST"):
            answer = requests.request(method, url, json={}, timeout=10)
            if answer.status_code not in (401, 403, 404, 405):
                found.append(f"{method} {rule.rule}: {answer.status_code}")
    return found


def test_every_route_beyond_the_public_api_refuses_a_caller_without_a_token(start_botify, small_world, routes):
    assert {rule.rule for rule in routes.iter_rules()} >= PUBLIC_ROUTES
    service = start_botify(small_world.data_dir, small_world.recs)
    assert open_routes(service.url, routes) == []


def test_the_route_check_finds_an_admin_route_open_to_anyone(redis_server, tmp_path):
    """The check above is not empty by construction: a reload route added without a token is caught."""
    app = create_app(Settings(redis_url=redis_server.url, log_dir=tmp_path / "log"))
    app.add_url_rule("/admin/reload", "reload", lambda: {"reloaded": True}, methods=["POST"])
    server = make_server("127.0.0.1", 0, app, threaded=True)
    # shutdown() waits for the loop to look: every 0.05 s, not the default 0.5 s
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        assert open_routes(f"http://127.0.0.1:{server.server_port}", app.url_map) == ["POST /admin/reload: 200"]
    finally:
        server.shutdown()
        thread.join()
        app.extensions["botify"].events.close()
