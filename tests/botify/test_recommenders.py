"""Each recommender's behaviour, served for real (gunicorn + Redis) through the experiment routing."""

from __future__ import annotations

import json

import numpy as np
import pytest
import redis
import requests

from botify import store as store_module
from botify.catalog import Catalog
from botify.item_space import ItemSpace
from botify.load import load_catalog, load_recommendations
from botify.recommenders import candidates as candidates_module
from botify.recommenders.candidates import (
    ARTIST_FATIGUE,
    CONTEXT_ARTIST_BONUS,
    PERSONAL_BONUS,
    InOrder,
    SessionAware,
)
from botify.recommenders.sticky_artist import StickyArtist
from botify.recommenders.top_pop import TopPop
from botify.registry import EXPERIMENTS
from botify.session import Session, pack_listen
from botify.store import Store

from .conftest import ARTISTS, TRACKS_PER_ARTIST, artist_of, artist_vectors, write_recs


def users_in(arm: str, count: int, experiment: str = "HW_2") -> list[int]:
    return [u for u in range(10_000) if EXPERIMENTS[experiment].arm(u) == arm][:count]


def orthogonal_artist_vectors() -> np.ndarray:
    """One orthonormal direction per artist: same-artist similarity 1, cross-artist 0."""
    basis = np.linalg.qr(np.random.default_rng(0).normal(size=(32, ARTISTS)))[0].T
    return basis[[artist_of(t) for t in range(ARTISTS * TRACKS_PER_ARTIST)]]


TREATED = users_in("T1", 6)
NO_LIST_USER = TREATED[5]
WIDE_LIST = list(range(0, 100))  # artists 0..9, in order
SHORT_LIST = [150, 151, 152]


@pytest.fixture(scope="module")
def service(start_module_botify, tiny_world, tmp_path_factory):
    folder = tmp_path_factory.mktemp("recs")
    lists = {TREATED[0]: WIDE_LIST, TREATED[1]: WIDE_LIST, TREATED[2]: SHORT_LIST, TREATED[3]: WIDE_LIST}
    lists.update({u: WIDE_LIST for u in users_in("T1", 3, "HW_2_ARMS")})
    recs = write_recs(folder / "lightfm.jsonl", lists, orthogonal_artist_vectors())
    return start_module_botify(tiny_world, {"lightfm": recs}, experiment="HW_2", workers=1)


def next_track(service, user: int, track: int, time: float) -> int:
    answer = requests.post(f"{service.url}/next/{user}", json={"track": track, "time": time})
    assert answer.status_code == 200
    return answer.json()["track"]


def end_session(service, user: int, track: int = 0) -> None:
    assert requests.post(f"{service.url}/last/{user}", json={"track": track, "time": 0.5}).status_code == 200


def test_control_users_get_a_track_of_the_previous_artist(service):
    for user in users_in("C", 5):
        for track in (3, 57, 299):
            assert artist_of(next_track(service, user, track, 0.2)) == artist_of(track)


def test_control_users_get_a_random_track_of_the_artist_not_always_the_same(service):
    user = users_in("C", 1)[0]
    served = {next_track(service, user, 55, 0.5) for _ in range(30)}
    assert {artist_of(track) for track in served} == {artist_of(55)} and len(served) >= 3


def test_each_arm_of_hw2_arms_serves_its_own_recommendation_set(start_botify, own_redis, tiny_world, tmp_path):
    users = {arm: users_in(arm, 1, "HW_2_ARMS")[0] for arm in ("T1", "T2", "T3")}
    with_features = write_recs(tmp_path / "lightfm.jsonl", {user: [10, 20, 30] for user in users.values()})
    without = write_recs(tmp_path / "lightfm_nofeat.jsonl", {user: [150, 160, 170] for user in users.values()})
    sets = {"lightfm": with_features, "lightfm_nofeat": without}  # in a Redis of its own: not the module's sets
    arms = start_botify(tiny_world, sets, experiment="HW_2_ARMS", redis_url=own_redis.url)
    first = {arm: next_track(arms, user, 0, 1.0) for arm, user in users.items()}
    assert first == {"T1": 10, "T2": 150, "T3": 10}  # in order / without features / with features, session-aware


def test_lightfm_never_repeats_a_track_within_a_session(service):
    user, played = TREATED[0], [55]
    for _ in range(40):
        recommended = next_track(service, user, played[-1], 0.9)
        assert recommended not in played
        played.append(recommended)
    end_session(service, user)


def test_lightfm_follows_the_session_context(service):
    user = TREATED[1]
    first = next_track(service, user, 55, 1.0)  # listened artist 5 fully
    assert artist_of(first) == 5
    switched = next_track(service, user, 72, 1.0)  # then artist 7 fully, after artist 5 twice
    assert artist_of(switched) == 7
    end_session(service, user)


def test_artist_fatigue_moves_on_after_repeated_plays(service):
    user, track, artists = TREATED[3], 55, []
    for _ in range(12):
        track = next_track(service, user, track, 1.0)
        artists.append(artist_of(track))
    assert artists[0] == 5 and len(set(artists)) > 1  # starts on the context artist, does not stay forever
    end_session(service, user)


def test_session_state_resets_after_last(service):
    user = TREATED[3]
    first = next_track(service, user, 55, 1.0)
    next_track(service, user, first, 1.0)  # played: never again in this session
    end_session(service, user)
    assert next_track(service, user, 55, 1.0) == first  # a new session may recommend it again
    end_session(service, user)


def test_user_without_a_list_is_served_from_the_context_neighbourhood(service):
    recommended = next_track(service, NO_LIST_USER, 55, 1.0)
    assert artist_of(recommended) == 5 and recommended != 55
    end_session(service, NO_LIST_USER)


@pytest.fixture
def store(redis_server, tiny_world):
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    load_catalog(client, tiny_world)
    return Store(client)


def fallback(store: Store) -> list:
    return [TopPop(store.catalog, np.random.default_rng(0))]


def serve_session(recommender, user: int, start: int, steps: int) -> list[int]:
    served = [recommender.recommend_next(user, start, 1.0)]
    for _ in range(steps - 1):
        served.append(recommender.recommend_next(user, served[-1], 1.0))
    return served


def test_in_order_serves_the_stored_order_without_repeats(store, tmp_path):
    load_recommendations(store.client, "lightfm", write_recs(tmp_path / "r.jsonl", {7: [10, 20, 30, 40]}))
    recommender = InOrder(store, "lightfm", fallback(store))
    assert serve_session(recommender, 7, 20, 4) == [10, 30, 40, 299]  # 20 was played; then the top track


@pytest.mark.parametrize("vectors", [None, artist_vectors()], ids=["lists only", "with item vectors"])
def test_lists_loaded_for_a_larger_catalog_never_serve_a_track_outside_the_live_one(
    store, tiny_world, tmp_path, vectors
):
    """A set loaded for the 300-track catalog, then a 15-track one: 15 is the first id past it, and the set's item
    vectors (300 rows) no longer describe the catalog, so they are not used either."""
    recs = write_recs(tmp_path / "r.jsonl", {7: [10, 15, 200, 12]}, vectors)
    load_recommendations(store.client, "lightfm", recs)
    smaller = tmp_path / "smaller-world"
    smaller.mkdir()
    (smaller / "tracks.json").write_text("".join((tiny_world / "tracks.json").read_text().splitlines(True)[:15]))
    (smaller / "top_tracks.json").write_text(json.dumps(list(range(14, -1, -1))))
    load_catalog(store.client, smaller)
    for recommender in (InOrder(store, "lightfm", fallback(store)), SessionAware(store, "lightfm", fallback(store))):
        store.end_session(7)
        assert serve_session(recommender, 7, 0, 3) == [10, 12, 14]  # 15 and 200 skipped; then the top track


@pytest.mark.parametrize("vectors", [None, "vectors"], ids=["lists only", "with item vectors"])
def test_a_world_loaded_with_its_set_is_served_together_at_once(store, tiny_world, tmp_path, monkeypatch, vectors):
    """A load that replaces the world and the set together: the next request reads the new set and must see the new
    catalog with it, not the one this process checked less than a second ago (a 15-track world cached here; the
    300-track world's list then lost 200 as a track "outside" the catalog, and the fallback picked from the old one)."""
    monkeypatch.setattr(store_module, "CATALOG_CHECK_SECONDS", 3600.0)  # the old catalog stays cached unless asked
    smaller = tmp_path / "smaller-world"
    smaller.mkdir()
    (smaller / "tracks.json").write_text("".join((tiny_world / "tracks.json").read_text().splitlines(True)[:15]))
    (smaller / "top_tracks.json").write_text(json.dumps(list(range(14, -1, -1))))
    load_catalog(store.client, smaller)
    load_recommendations(store.client, "lightfm", write_recs(tmp_path / "small.jsonl", {7: [3]}))
    assert store.catalog().size == 15  # cached
    load_catalog(store.client, tiny_world)  # the 300-track world and its set
    recs = write_recs(tmp_path / "r.jsonl", {7: [200, 250]}, None if vectors is None else artist_vectors())
    load_recommendations(store.client, "lightfm", recs)
    store.end_session(7)
    assert serve_session(InOrder(store, "lightfm", fallback(store)), 7, 100, 2) == [200, 250]
    store.end_session(7)
    first = SessionAware(store, "lightfm", fallback(store)).recommend_next(7, 100, 1.0)
    if vectors is None:
        assert first == 200  # the list in its order
    else:
        assert artist_of(first) == artist_of(100) and first != 100  # near the session's context, track 100
    assert store.catalog().size == 300


def test_session_aware_without_vectors_keeps_list_order_then_falls_back(store, tmp_path):
    load_recommendations(store.client, "lightfm", write_recs(tmp_path / "r.jsonl", {7: SHORT_LIST}))
    recommender = SessionAware(store, "lightfm", fallback(store))
    assert serve_session(recommender, 7, 0, 5) == [*SHORT_LIST, 299, 298]  # then unplayed top tracks


def test_session_aware_falls_back_when_everything_near_is_played(store, tmp_path):
    recs = write_recs(tmp_path / "r.jsonl", {7: [1, 2]}, orthogonal_artist_vectors()[:, :])
    load_recommendations(store.client, "lightfm", recs)
    recommender = SessionAware(store, "lightfm", fallback(store))
    served = serve_session(recommender, 7, 0, 120)
    assert len(set(served)) == 120 and 0 not in served  # never a repeat, even past the neighbourhood


def test_a_track_skipped_at_once_counts_as_played(store, tmp_path):
    load_recommendations(store.client, "lightfm", write_recs(tmp_path / "r.jsonl", {7: [10, 20, 30]}))
    recommender = InOrder(store, "lightfm", fallback(store))
    assert recommender.recommend_next(7, 10, 0.0) == 20  # 10 was listened to for no time at all: not served again
    assert store.listen(7, 20, 0.0, "lightfm").session.played.tolist() == [10, 20]


def test_a_set_deleted_while_served_is_served_as_one_never_loaded(store, tmp_path):
    """Its cached item vectors and its old version's lists (still in Redis) are no longer used: the fallback serves."""
    load_recommendations(store.client, "lightfm", write_recs(tmp_path / "r.jsonl", {7: [10, 20, 30]}, artist_vectors()))
    context = store.listen(7, 55, 1.0, "lightfm")
    assert context.candidates.tolist() == [10, 20, 30] and context.items is not None
    store.client.delete("recs:lightfm:current")
    context = store.listen(7, 56, 1.0, "lightfm")
    assert (context.candidates.tolist(), context.items) == ([], None)
    recommender = SessionAware(store, "lightfm", fallback(store))
    assert recommender.recommend_next(7, 57, 1.0) == 299  # the top track, not the list nor the context's neighbours
    load_recommendations(store.client, "lightfm", write_recs(tmp_path / "s.jsonl", {7: [40]}))  # loaded again
    assert recommender.recommend_next(7, 299, 1.0) == 40


def test_toppop_answers_among_the_100_most_popular_tracks_only(store):
    recommender = TopPop(store.catalog, np.random.default_rng(0))
    top = set(store.catalog().top_tracks[:100].tolist())  # of 300 tracks
    answers = {recommender.recommend_next(1, 0, 0.5) for _ in range(200)}
    assert answers <= top and len(answers) > 50


def test_sticky_artist_as_a_fallback_never_picks_a_played_track(store):
    catalog = store.catalog()
    pick = StickyArtist(store.catalog, np.random.default_rng(0))
    played = set(range(50, 59))  # artist 5's tracks but 59
    assert {pick.pick(catalog, 55, played) for _ in range(20)} == {59}
    assert pick.pick(catalog, 55, played | {59}) is None


def session_of(*tracks: int) -> Session:
    return Session.from_bytes(b"".join(pack_listen(track, 1.0) for track in tracks), 6)


def test_session_aware_discounts_each_play_of_an_artist():
    """Track 1 (the context's artist, identical vector) against track 3 (another artist, cosine 0.6):
    1 scores (1 + 0.1) x 0.8^plays of artist 0, 3 scores 0.8; repeats of a track count as plays."""
    catalog = Catalog.build(np.array([0, 0, 0, 1, 1, 2]), np.arange(6))
    vectors = np.array([[1, 0], [1, 0], [0, 1], [0.6, 0.8], [-1, 0], [0, -1]], dtype=np.float32)
    items = ItemSpace(vectors, np.array([[1, 3]] * 6, dtype=np.int32))
    recommender = SessionAware(None, "lightfm", [])
    no_list = np.empty(0, dtype=np.int32)
    assert recommender.choose(no_list, items, session_of(0), catalog) == 1  # 1.1 x 0.8 = 0.88 > 0.8
    assert recommender.choose(no_list, items, session_of(0, 0), catalog) == 3  # 1.1 x 0.64 = 0.70 < 0.8
    assert recommender.choose(no_list, items, session_of(4, 4, 0), catalog) == 1  # artist 1's plays: 3 at 0.512
    assert recommender.choose(no_list, items, session_of(1, 0), catalog) == 3  # 1 played: never again


def test_session_aware_prefers_a_candidate_on_the_users_own_list():
    """Context 0: track 3 (on the list, cosine 0.6) scores 0.8 + 0.15 = 0.95, track 4 (a neighbour only, cosine 0.8)
    0.9; without the list, 4 wins."""
    catalog = Catalog.build(np.array([0, 0, 1, 1, 2, 2]), np.arange(6))
    vectors = np.array([[1, 0], [-1, 0], [0, -1], [0.6, 0.8], [0.8, 0.6], [0, -1]], dtype=np.float32)
    items = ItemSpace(vectors, np.array([[4, 3]] * 6, dtype=np.int32))
    recommender = SessionAware(None, "lightfm", [])
    assert recommender.choose(np.array([3], dtype=np.int32), items, session_of(0), catalog) == 3
    assert recommender.choose(np.empty(0, dtype=np.int32), items, session_of(0), catalog) == 4


def test_session_aware_considers_the_context_artists_tracks_beyond_its_neighbours():
    catalog = Catalog.build(np.array([0, 0, 0, 1, 1, 2]), np.arange(6))
    vectors = np.array([[1, 0], [1, 0], [0, 1], [0.6, 0.8], [-1, 0], [0, -1]], dtype=np.float32)
    items = ItemSpace(vectors, np.array([[3]] * 6, dtype=np.int32))  # track 1 is no listed neighbour of 0
    recommender = SessionAware(None, "lightfm", [])
    assert recommender.choose(np.empty(0, dtype=np.int32), items, session_of(0), catalog) == 1  # 1.1 x 0.8 > 0.8


def scored_pick(candidates: np.ndarray, items: ItemSpace, session: Session, catalog: Catalog) -> int | None:
    """The session-aware pick by its definition: every unplayed candidate scored one by one, the first of the best."""
    context = session.context_track()
    pool = np.concatenate([candidates, items.nearest(context), catalog.same_artist_tracks(context)]).tolist()
    played, played_artists = session.played_tracks(), catalog.artist_of[session.played].tolist()
    best, best_score = None, -np.inf
    for index, track in enumerate(pool):
        if track in played:
            continue
        artist = int(catalog.artist_of[track])
        relevance = float((1.0 + items.similarity(np.array([track]), context)[0]) / 2.0)  # float32 cosine
        relevance += PERSONAL_BONUS if index < len(candidates) else 0.0
        relevance += CONTEXT_ARTIST_BONUS if artist == catalog.artist_of[context] else 0.0
        score = relevance * ARTIST_FATIGUE ** played_artists.count(artist)
        if score > best_score:
            best, best_score = track, score
    return best


@pytest.mark.parametrize("visits", [0, 1, 3, candidates_module.FATIGUE_VISITS, 1000])
def test_session_aware_picks_the_best_scored_unplayed_candidate_whatever_the_visit_budget(monkeypatch, visits):
    """Small random catalogs (few artists, shared vectors: ties and heavy fatigue), sessions over the whole catalog."""
    monkeypatch.setattr(candidates_module, "FATIGUE_VISITS", visits)
    rng = np.random.default_rng(visits)
    recommender = SessionAware(None, "lightfm", [])
    outcomes = set()
    for case in range(300):
        tracks, artists = int(rng.integers(20, 200)), int(rng.integers(1, 12))
        catalog = Catalog.build(rng.integers(artists, size=tracks), np.arange(tracks))
        shared = rng.normal(size=(int(rng.integers(1, 6)), 4)).astype(np.float32)
        vectors = shared[rng.integers(len(shared), size=tracks)]
        vectors = vectors if case % 2 else rng.normal(size=(tracks, 4)).astype(np.float32)
        items = ItemSpace(vectors, rng.integers(tracks, size=(tracks, 10)).astype(np.int32))
        candidates = rng.choice(tracks, size=int(rng.integers(0, min(tracks, 30))), replace=False).astype(np.int32)
        played = rng.choice(tracks, size=int(rng.integers(1, 3 * tracks)))
        session = Session.from_bytes(b"".join(pack_listen(int(t), float(rng.random())) for t in played), tracks)
        expected = scored_pick(candidates, items, session, catalog)
        assert recommender.choose(candidates, items, session, catalog) == expected, case
        outcomes.add(expected is None)
    assert outcomes == {True, False}  # both a pick and "everything near is played" were exercised


@pytest.mark.parametrize("visits", [0, 1, candidates_module.FATIGUE_VISITS])
def test_a_fatigued_score_tied_by_a_less_relevant_earlier_candidate_goes_to_the_earlier_one(monkeypatch, visits):
    """1.0 fatigued once is 0.8, exactly the unfatigued 0.8 before it in the pool: the first on ties wins, as when
    every candidate is scored one by one (the early stop must not end the visit on an equal bound)."""
    monkeypatch.setattr(candidates_module, "FATIGUE_VISITS", visits)
    relevance, artists, played_artists = np.array([0.8, 1.0]), np.array([0, 1]), np.array([1])
    assert candidates_module.best_after_fatigue(relevance, artists, played_artists) == 0
