"""Recommenders over a published per-user candidate list (e.g. LightFM's top-100).

Both never return a track played in the session (what the client reported listening to: a recommendation
it plays comes back as its next listen) while they or their chain of fallback picks have one to offer;
only when every pick is exhausted is the most popular track (or, without one, the previous track) returned.
`InOrder` serves the list as stored.
`SessionAware` widens the user's list with the tracks nearest to the session's context track (the one
listened to longest lately) in the model's item space and with the context's artist, so it also
serves users without a list, and re-ranks the unplayed candidates (see the class).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from botify.catalog import Catalog
from botify.item_space import ItemSpace
from botify.recommenders.base import Pick, first_not_in
from botify.session import Session
from botify.store import Store

ARTIST_FATIGUE = 0.8  # score multiplier per play of the same artist in the session
PERSONAL_BONUS = 0.15  # relevance added to candidates on the user's own list
CONTEXT_ARTIST_BONUS = 0.1  # relevance added to tracks by the context track's artist
FATIGUE_VISITS = 8  # candidates scored one by one before the rest are scored together (see best_after_fatigue)


class CandidateRecommender:
    """Shared flow: record the listen and read candidates + session (one round trip), choose, fall back."""

    def __init__(self, store: Store, recommendation_set: str, fallback: Sequence[Pick]) -> None:
        self.store = store
        self.recommendation_set = recommendation_set
        self.fallback = fallback

    def recommend_next(self, user: int, prev_track: int, prev_track_time: float) -> int:
        self.store.catalog()  # none live: LookupError before the listen is recorded
        context = self.store.listen(user, prev_track, prev_track_time, self.recommendation_set)
        catalog = context.catalog
        candidates = context.candidates
        candidates = candidates[(candidates >= 0) & (candidates < catalog.size)]  # a set loaded for an older catalog
        track = self.choose(candidates, context.items, context.session, catalog)
        if track is None:
            track = self.fall_back(catalog, prev_track, context.session)
        return track

    def end_session(self, user: int) -> None:
        self.store.end_session(user)

    def fall_back(self, catalog: Catalog, prev_track: int, session: Session) -> int:
        exclude = session.played_tracks()
        for step in self.fallback:
            track = step.pick(catalog, prev_track, exclude)
            if track is not None:
                return track
        return int(catalog.top_tracks[0]) if len(catalog.top_tracks) else prev_track

    def choose(self, candidates: np.ndarray, items: ItemSpace | None, session: Session, catalog: Catalog) -> int | None:
        raise NotImplementedError


class InOrder(CandidateRecommender):
    """The first unplayed candidate: what a static per-user list gives."""

    def choose(self, candidates: np.ndarray, items: ItemSpace | None, session: Session, catalog: Catalog) -> int | None:
        return first_not_in(candidates, session.played_tracks())


class SessionAware(CandidateRecommender):
    """The unplayed candidate most relevant to the session, discounted by artist fatigue.

    Candidates: the user's list, the context track's nearest tracks and its artist's tracks.
    Relevance: cosine similarity to the context track mapped to [0, 1], plus a bonus for being on
    the user's own list (long-term taste) and for sharing the context's artist (continuity).
    """

    def choose(self, candidates: np.ndarray, items: ItemSpace | None, session: Session, catalog: Catalog) -> int | None:
        context = session.context_track()
        if items is None or len(items) != catalog.size or context is None:
            return first_not_in(candidates, session.played_tracks())  # no usable vectors: the list as it is
        # A track in the pool twice (on the list and near the context) is scored twice; the higher score counts.
        pool = np.concatenate([candidates, items.nearest(context), catalog.same_artist_tracks(context)])
        artists = catalog.artist_of.take(pool)
        relevance = ((1.0 + items.similarity(pool, context)) / 2.0).astype(np.float64)
        relevance[: len(candidates)] += PERSONAL_BONUS
        relevance += CONTEXT_ARTIST_BONUS * (artists == catalog.artist_of[context])
        played = np.sort(session.played)  # per request, work grows with the session and the pool, not the catalog
        relevance[played.take(np.searchsorted(played, pool), mode="clip") == pool] = -np.inf
        best = best_after_fatigue(relevance, artists, np.sort(catalog.artist_of.take(played)))
        return None if best is None else int(pool[best])


def artist_plays(played_artists: np.ndarray, artists: np.ndarray | np.integer) -> np.ndarray | np.integer:
    """How often each of `artists` was played, from the session's sorted played artists."""
    return np.searchsorted(played_artists, artists, "right") - np.searchsorted(played_artists, artists)


def best_after_fatigue(relevance: np.ndarray, artists: np.ndarray, played_artists: np.ndarray) -> int | None:
    """The index of the highest relevance x ARTIST_FATIGUE ** (plays of its artist), the first on ties; None when
    every relevance is -inf (nothing left to offer). `relevance` is used up.

    Fatigue only lowers a score, so candidates are visited from the most relevant down and the visit stops at the
    first one whose relevance cannot beat the best score so far: one visit usually settles it, each a
    handful of scalar operations. Past FATIGUE_VISITS visits, the rest are scored in one vectorized pass."""
    best_score, best = -np.inf, None
    for _ in range(FATIGUE_VISITS):
        index = int(relevance.argmax())
        upper = relevance[index]
        # Nothing further down can beat the best: lower, or equal from a later index (argmax gives the first of
        # equals; an equal bound from an earlier index, unfatigued, would tie and win as the first).
        if upper == -np.inf or upper < best_score or (upper == best_score and index > best):
            return best
        relevance[index] = -np.inf
        score = upper * ARTIST_FATIGUE ** artist_plays(played_artists, artists[index])
        if score > best_score or (score == best_score and index < best):
            best_score, best = score, index
    scores = relevance * ARTIST_FATIGUE ** artist_plays(played_artists, artists)
    if best is not None:
        scores[best] = best_score  # the visited best competes again; argmax takes the first on ties
    index = int(scores.argmax())
    return None if scores[index] == -np.inf else index
