"""Sessions: packed listen records, appended and read back by one Redis script call (real Redis)."""

from __future__ import annotations

import gc
import threading
from time import sleep

import numpy as np
import pytest
import redis

from botify.load import load_catalog, load_recommendations
from botify.session import MAX_LISTENS, Session, pack_listen
from botify.settings import MAX_SESSION_TTL, Settings
from botify.store import Store, StoreUnavailable, session_key

from .conftest import write_recs

TRACKS = 300


@pytest.fixture
def store(redis_server, tiny_world, tmp_path):
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    load_catalog(client, tiny_world)
    load_recommendations(client, "lightfm", write_recs(tmp_path / "r.jsonl", {7: [10, 20, 30]}))
    return Store(client)


def test_each_listen_is_appended_and_read_back_with_the_users_list(store):
    for track, time in [(5, 0.25), (6, 1.0), (5, 0.5)]:
        context = store.listen(7, track, time, "lightfm")
    assert context.session.played.tolist() == [5, 6, 5]
    assert context.session.times.tolist() == [0.25, 1.0, 0.5]
    assert context.candidates.tolist() == [10, 20, 30]
    assert store.client.ttl(session_key(7)) > 0


def test_the_longest_session_ttl_the_settings_take_is_one_redis_takes(store):
    """A TTL Redis refuses (beyond ~9.2e15 s) failed every list-based /next with a 500; the settings stop below it."""
    longest = Store(store.client, Settings.from_env({"BOTIFY_SESSION_TTL": str(MAX_SESSION_TTL)}).session_ttl)
    assert longest.listen(7, 5, 0.5, "lightfm").session.played.tolist() == [5]
    assert store.client.ttl(session_key(7)) > MAX_SESSION_TTL - 60


def test_a_user_without_a_list_still_has_a_session(store):
    context = store.listen(8, 5, 0.5, "lightfm")
    assert context.candidates.tolist() == [] and context.session.played.tolist() == [5]


def test_end_session_starts_afresh(store):
    store.listen(7, 5, 0.5, "lightfm")
    store.end_session(7)
    assert store.listen(7, 6, 0.5, "lightfm").session.played.tolist() == [6]


def test_a_session_keeps_its_latest_listens_only(store):
    for step in range(MAX_LISTENS + 5):
        context = store.listen(7, step % TRACKS, 0.5, "lightfm")
    played = context.session.played.tolist()
    assert len(played) == MAX_LISTENS and played[-1] == (MAX_LISTENS + 4) % TRACKS and played[0] == 5


@pytest.mark.parametrize(
    "planted",
    [
        lambda c, k: c.set(k, b"not a session"),  # misaligned bytes: replaced by this listen
        lambda c, k: c.set(k, pack_listen(-3, 0.5) + pack_listen(4, 7.0)),  # aligned, invalid records: dropped
        lambda c, k: c.hset(k, "a", "b"),  # another type: removed
        lambda c, k: c.rpush(k, "x"),
    ],
    ids=["misaligned", "invalid-records", "hash", "list"],
)
def test_a_value_the_service_did_not_write_becomes_a_fresh_session(store, planted):
    planted(store.client, session_key(7))
    assert store.listen(7, 5, 0.5, "lightfm").session.played.tolist() == [5]
    assert store.listen(7, 6, 0.5, "lightfm").session.played.tolist() == [5, 6]


def test_the_script_is_loaded_again_after_redis_forgets_it(store):
    store.listen(7, 5, 0.5, "lightfm")
    store.client.script_flush()
    assert store.listen(7, 6, 0.5, "lightfm").session.played.tolist() == [5, 6]


def test_a_new_version_of_the_set_is_picked_up(store, tmp_path):
    store.listen(7, 5, 0.5, "lightfm")
    load_recommendations(store.client, "lightfm", write_recs(tmp_path / "r2.jsonl", {7: [40, 50]}))
    assert store.listen(7, 6, 0.5, "lightfm").candidates.tolist() == [40, 50]


def test_context_is_the_longest_recent_listen_latest_on_ties():
    def session(*listens):
        return Session.from_bytes(b"".join(pack_listen(t, x) for t, x in listens), TRACKS)

    assert session().context_track() is None
    assert session((1, 0.9), (2, 0.3), (3, 0.5)).context_track() == 1
    assert session((1, 0.9), (2, 0.9), (3, 0.5)).context_track() == 2
    assert session((1, 1.0), (2, 0.1), (3, 0.2), (4, 0.3)).context_track() == 4  # 1 is no longer recent
    assert np.array_equal(session((1, 0.5), (TRACKS, 0.5), (2, np.nan)).played, [1])


def test_a_threads_redis_connection_goes_back_to_the_pool_when_the_thread_ends(own_redis, tiny_world, tmp_path):
    """Servers that start a thread per connection or request (werkzeug's, say) must not leave one open Redis
    connection behind each: Redis itself counts its clients."""
    client = redis.Redis.from_url(own_redis.url)
    load_catalog(client, tiny_world)
    load_recommendations(client, "lightfm", write_recs(tmp_path / "r.jsonl", {7: [10, 20, 30]}))
    store = Store(redis.Redis.from_url(own_redis.url))
    played = []
    for step in range(20):  # one short-lived thread after another, as such a server runs them
        listen = (7, step, 0.5, "lightfm")
        thread = threading.Thread(target=lambda listen=listen: played.append(store.listen(*listen)))
        thread.start()
        thread.join()
    gc.collect()
    assert len(played[-1].session.played) == 20  # every thread's listen went through
    assert client.info("clients")["connected_clients"] <= 3  # this client, the store's one pooled connection


def test_threads_that_meet_a_new_version_together_load_its_vectors_once(own_redis, tiny_world, tmp_path):
    """Each thread that saw a new version loaded the whole set again, one after another, once the lock let it: the
    requests behind the first waited for every load before theirs (Redis counts the loads' MGETs)."""
    client = redis.Redis.from_url(own_redis.url)
    load_catalog(client, tiny_world)
    vectors = np.random.default_rng(0).normal(size=(TRACKS, 2048)).astype(np.float32)  # 2.4 MB: loads take a while
    load_recommendations(client, "lightfm", write_recs(tmp_path / "a.jsonl", {7: [10]}, vectors))
    store = Store(redis.Redis.from_url(own_redis.url))
    store.listen(7, 5, 0.5, "lightfm")
    load_recommendations(client, "lightfm", write_recs(tmp_path / "b.jsonl", {7: [20]}, vectors))
    client.config_resetstat()
    barrier = threading.Barrier(8)
    answers = []

    def listen(user: int) -> None:
        barrier.wait()
        answers.append(store.listen(user, 5, 0.5, "lightfm").candidates.tolist())

    threads = [threading.Thread(target=listen, args=(user,)) for user in (7, 1, 2, 3, 4, 5, 6, 8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [[]] * 7 + [[20]]
    assert client.info("commandstats")["cmdstat_mget"]["calls"] == 1


def test_a_session_ended_while_redis_is_left_alone_is_deleted_by_the_next_call_that_reaches_it(store):
    """A /last within the guard's window after a Redis timeout skipped the delete, and the user's next session began
    with the ended one's listens (played tracks excluded, its context track kept)."""
    for track in (5, 6, 7):
        store.listen(7, track, 1.0, "lightfm")
    store.guard.failed(redis.TimeoutError("a slow command"))  # as after a timeout: Redis is left alone a while
    with pytest.raises(StoreUnavailable):
        store.end_session(7)
    assert store.client.exists(session_key(7))  # not asked
    store.guard.resume()  # Redis answers again
    assert store.listen(7, 200, 1.0, "lightfm").session.played.tolist() == [200]
    store.listen(8, 5, 1.0, "lightfm")
    store.guard.failed(redis.TimeoutError("a slow command"))
    with pytest.raises(StoreUnavailable):
        store.end_session(8)
    store.guard.resume()
    store.end_session(9)  # any call that reaches Redis ends the sessions waiting
    assert not store.client.exists(session_key(8)) and store.client.exists(session_key(7))


@pytest.mark.parametrize("stall", [0.0, 0.3], ids=["redis prompt", "redis stalled as it recovers"])
def test_a_session_ended_while_redis_is_left_alone_keeps_the_next_one_another_worker_began_meanwhile(
    store, redis_server, stall
):
    """Worker 1 answered a /last while it left Redis alone; the user's next session began on worker 2, which reached
    Redis. Worker 1's next call that reached Redis deleted that session: its first listen (200) was lost, and 200 was
    served again in that session. Also when that call waits in a Redis still slow (a first fix compared the time since
    the /last, taken when the call was sent, with the session's age, taken when Redis ran it)."""
    other_worker = Store(store.client)
    for track in (5, 6, 7):
        store.listen(7, track, 1.0, "lightfm")
    store.guard.failed(redis.TimeoutError("a slow command"))
    with pytest.raises(StoreUnavailable):
        store.end_session(7)  # answered 200 all the same
    sleep(0.05)  # the client reads the answer, then begins its next session
    assert other_worker.listen(7, 200, 1.0, "lightfm").session.played.tolist() == [5, 6, 7, 200]
    store.guard.resume()
    if stall:  # another client's slow command holds Redis: worker 1's call waits behind it
        staller = redis.Redis.from_url(redis_server.url)
        threading.Thread(target=staller.execute_command, args=("DEBUG", "SLEEP", stall)).start()
        sleep(0.02)
    store.end_session(9)  # worker 1's next call that reaches Redis
    assert other_worker.listen(7, 201, 1.0, "lightfm").session.played.tolist() == [5, 6, 7, 200, 201]
