"""Service configuration: one place, read from the environment, defaults that work out of the box."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

MAX_WORKERS = 512  # gunicorn workers: a typo's 10**20 would fork until the machine gives out
MAX_THREADS = 512  # per worker: at gunicorn's 1,000 connections per worker or more, none is kept alive
MAX_SESSION_TTL = 2**31 - 1  # seconds (68 years): Redis refuses an expiry beyond ~9.2e15 s, on every listen
WORKER_NUMBER = "BOTIFY_WORKER_NUMBER"  # set in each gunicorn worker by `botify.gunicorn_conf`
GUNICORN_MASTER = "BOTIFY_GUNICORN_MASTER"  # the pid of gunicorn's master, set by `botify.gunicorn_conf`


def _whole(
    env: Mapping[str, str], name: str, default: int, minimum: int = 1, maximum: int | None = None, other: str = ""
) -> int:
    """`env[name]` as an int within bounds; `other` names a word the caller accepts too (for the message)."""
    text = env.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        hint = f" or {other!r}" if other else ""
        raise ValueError(f"{name} must be a whole number{hint}, got {text!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be at most {maximum}, got {value}")
    return value


LOG_LEVELS = ("debug", "info", "warning", "error", "critical")  # gunicorn's
# BOTIFY_SEED=random: every worker seeds its random picks from the OS. The replicas of a scaled compose service share
# their environment, so with one seed their workers of the same number would draw the same picks.
RANDOM_SEED = "random"
DEFAULT_SEED = 0


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env.get(name, default).lower()
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {env[name]!r}")
    return value


@dataclass(frozen=True)
class Settings:
    redis_url: str | None = None  # None: an embedded Redis under data_dir/redis
    data_dir: Path = Path("data")
    log_dir: Path = Path("log")
    bind: str = "127.0.0.1:5001"  # where gunicorn listens when started directly
    workers: int = 2
    threads: int = 2  # per worker: enough to overlap the Redis round trip; more only lengthens the tail (bench/)
    experiment: str = "HW_2"  # the experiment that routes /next
    fallback: tuple[str, ...] = ("toppop", "random")
    session_ttl: int = 6 * 3600  # seconds a listening session's state lives in Redis
    log_max_bytes: int = 256 * 2**20
    log_backups: int = 50  # rotated files kept per worker; the oldest beyond them is deleted
    max_body_bytes: int = 4096
    redis_timeout: float = 0.25
    seed: int | None = DEFAULT_SEED  # None (BOTIFY_SEED=random): a seed from the OS for each worker
    worker_number: int = 0  # gunicorn's 1, 2, ... in spawn order; 0: not a gunicorn worker (the process id stands in)
    log_level: str = "warning"  # gunicorn's own messages (its access log is off)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from `BOTIFY_*` / `REDIS_URL` variables, then explicit overrides."""
        env = os.environ if env is None else env
        base = cls()
        values: dict[str, object] = {
            "redis_url": env.get("REDIS_URL") or None,
            "data_dir": Path(env.get("BOTIFY_DATA_DIR", base.data_dir)),
            "log_dir": Path(env.get("BOTIFY_LOG_DIR", base.log_dir)),
            "bind": env.get("BOTIFY_BIND", base.bind),
            "workers": _whole(env, "BOTIFY_WORKERS", base.workers, maximum=MAX_WORKERS),
            "threads": _whole(env, "BOTIFY_THREADS", base.threads, maximum=MAX_THREADS),
            "experiment": env.get("BOTIFY_EXPERIMENT", base.experiment),
            "fallback": tuple(
                name.strip() for name in env.get("BOTIFY_FALLBACK", ",".join(base.fallback)).split(",") if name.strip()
            ),
            "session_ttl": _whole(env, "BOTIFY_SESSION_TTL", base.session_ttl, maximum=MAX_SESSION_TTL),
            "log_max_bytes": _whole(env, "BOTIFY_LOG_MAX_BYTES", base.log_max_bytes),
            "log_backups": _whole(env, "BOTIFY_LOG_BACKUPS", base.log_backups, minimum=0),
            "seed": None
            if env.get("BOTIFY_SEED", "").strip().lower() == RANDOM_SEED
            else _whole(env, "BOTIFY_SEED", DEFAULT_SEED, minimum=0, other=RANDOM_SEED),
            "worker_number": _whole(env, WORKER_NUMBER, base.worker_number, minimum=0),
            "log_level": _choice(env, "BOTIFY_LOG_LEVEL", base.log_level, LOG_LEVELS),
        }
        return replace(cls(**values), **overrides)  # type: ignore[arg-type]
