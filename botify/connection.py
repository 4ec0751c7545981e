"""Opening the Redis a command or the service should use: `REDIS_URL`, else the embedded one of the data folder."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from botify.embedded_redis import EmbeddedRedis
from botify.settings import Settings


def embedded_for(settings: Settings) -> EmbeddedRedis:
    return EmbeddedRedis(settings.data_dir / "redis")


class NoRedis(RuntimeError):
    """Neither `REDIS_URL` nor a running embedded Redis of the data folder: nothing to serve from."""


def serving_url(settings: Settings) -> str:
    """`REDIS_URL`, else the URL of the data folder's embedded Redis if it runs (`botify serve` starts it)."""
    if settings.redis_url:
        return settings.redis_url
    embedded = embedded_for(settings)
    if not embedded.is_up():
        raise NoRedis(
            f"REDIS_URL is not set and no embedded Redis serves {embedded.directory}: "
            "run `python -m botify serve`, which starts it, or set REDIS_URL"
        )
    return embedded.url


def url_location(url: str) -> str:
    """Where the Redis at `url` is, for messages: without the scheme, user name and password (`redis://:PW@host`,
    or a unix socket's `?password=PW`), nor a TLS key's (`?ssl_password=PW`, which redis-py passes on)."""
    where = url.split("://", 1)[-1].rsplit("@", 1)[-1]
    path, _, query = where.partition("?")
    kept = [part for part in query.split("&") if part and not part.partition("=")[0].lower().endswith("password")]
    return "?".join([path, "&".join(kept)]) if kept else path


def client_for(url: str, **options: float) -> redis.Redis:
    """A client for the Redis at `url` (not connected yet); ValueError for a URL redis-py cannot read, quoting
    nothing of its user name or password. An unencoded `/`, `?` or `#` in them ends the host early: redis-py quoted
    the password's part before it (as a port that is not a number) or, made of digits, took it for a port of
    localhost's, which a connection error then printed. Refused first, it leaves redis-py only ports and query
    values to quote."""
    rest = url.split("://", 1)[-1]
    host = re.split("[/?#]", rest, maxsplit=1)[0]
    if "@" in rest[len(host) :]:
        raise ValueError(
            f"cannot use the Redis of REDIS_URL ({url_location(url)}): an @ after its host "
            "(percent-encode any / ? # @ in its user name or password)"
        )
    try:
        return redis.Redis.from_url(url, **options)
    except ValueError as error:  # a port or a query value that is no number
        raise ValueError(f"cannot use the Redis of REDIS_URL ({url_location(url)}): {error}") from None


def redis_location(settings: Settings) -> str:
    """Which Redis the settings name, for messages: `REDIS_URL`'s, or the data folder's embedded one."""
    if settings.redis_url:
        return f"the Redis of REDIS_URL ({url_location(settings.redis_url)})"
    return f"the embedded Redis of BOTIFY_DATA_DIR {settings.data_dir.resolve()}"


def cannot_use(url: str, error: Exception) -> str:
    """Why the Redis at `url` cannot be used, in one line without its user name and password, with a hint where
    Redis's own words give none (a password missing or wrong, TLS asked of a Redis without it)."""
    hint = ""
    if isinstance(error, redis.AuthenticationError):
        hint = " (check the password REDIS_URL gives: redis://:PASSWORD@HOST:PORT/DB)"
    elif url.startswith("rediss://") and isinstance(error, (redis.ConnectionError, redis.TimeoutError)):
        hint = " (rediss:// speaks TLS: does that Redis take TLS on that port?)"
    return f"cannot use the Redis of REDIS_URL ({url_location(url)}): {error}{hint}"


def check_answers(url: str, timeout: float = 5.0) -> None:
    """NoRedis, in one line (without the URL's user name and password), unless the Redis at `url` answers: for
    commands that would otherwise find out after minutes of work."""
    try:
        with client_for(url, socket_connect_timeout=timeout, socket_timeout=timeout) as client:
            client.ping()
    except ValueError as error:  # a URL redis-py cannot read
        raise NoRedis(str(error)) from None
    except (redis.RedisError, OSError) as error:
        raise NoRedis(cannot_use(url, error)) from None


def redis_client(settings: Settings) -> redis.Redis:
    """The Redis to serve from (`serving_url`), with the service's timeouts."""
    return client_for(
        serving_url(settings), socket_timeout=settings.redis_timeout, socket_connect_timeout=settings.redis_timeout
    )


def save_snapshot(client: redis.Redis, timeout: float = 600.0) -> bool:
    """Write Redis's snapshot now and wait until it is on disk; False when this Redis offers no BGSAVE (a managed
    one: its own persistence applies). BGSAVE: the server forks and keeps answering (a blocking SAVE would stall
    the service it serves); a snapshot or AOF rewrite already under way is waited out and a new snapshot started
    (not merely scheduled). RuntimeError if Redis could not write it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.bgsave(schedule=False)
            break
        except redis.ResponseError as error:
            busy = "in progress" in str(error) or "right now" in str(error)  # a save or an AOF rewrite running
            if not busy:
                return False
            if time.monotonic() > deadline:
                raise RuntimeError(f"Redis was busy saving for {timeout:.0f} s: {error}") from None
            time.sleep(0.05)
    while (persistence := client.info("persistence"))["rdb_bgsave_in_progress"]:
        if time.monotonic() > deadline:
            raise RuntimeError(f"Redis's snapshot did not finish within {timeout:.0f} s")
        time.sleep(0.05)
    if persistence["rdb_last_bgsave_status"] != "ok":
        raise RuntimeError(
            "Redis could not write its snapshot (see its log: a full disk?): what was loaded is live but not on "
            "disk, and a Redis restart would lose it"
        )
    return True


@contextmanager
def open_redis(settings: Settings) -> Iterator[redis.Redis]:
    """A client for the configured Redis. Without `REDIS_URL`, the data folder's embedded server: reused when it
    runs, otherwise started for the duration and stopped with a snapshot (a `botify serve` that came to use it
    meanwhile starts it again from that snapshot)."""
    if settings.redis_url:
        yield client_for(settings.redis_url)
        return
    server = embedded_for(settings)
    started = not server.is_up()
    server.start()
    try:
        yield server.client()
    finally:
        if started:
            server.stop(save=True)
