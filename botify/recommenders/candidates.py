"""Recommenders over a published per-user candidate list (e.g. LightFM's top-100).

Both never return a track already played or recommended in the session, and fall back down a
chain of picks when they have nothing left to offer. `InOrder` serves the list as stored.
`SessionAware` widens the user's list with the tracks nearest to the session's context track (the one
listened to longest lately) in the model's item space, so it also serves users without a list, and
re-ranks the unplayed candidates in one pass: cosine similarity to the context track times an
artist-fatigue discount per play of the candidate's artist in the session.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from botify.catalog import Catalog
from botify.item_space import ItemSpace
from botify.recommenders.base import Pick, first_not_in
from botify.session import Session
from botify.store import Store

ARTIST_FATIGUE = 0.8  # score multiplier per play of the same artist in the session


class CandidateRecommender:
    """Shared flow: read candidates + session (one round trip), choose, fall back, save the session."""

    def __init__(self, store: Store, recommendation_set: str, fallback: Sequence[Pick]) -> None:
        self.store = store
        self.recommendation_set = recommendation_set
        self.fallback = fallback

    def recommend_next(self, user: int, prev_track: int, prev_track_time: float) -> int:
        context = self.store.candidate_context(user, self.recommendation_set)
        catalog = self.store.catalog()
        session = context.session
        session.listened(prev_track, prev_track_time)
        track = self.choose(context.candidates, context.items, session, catalog)
        if track is None:
            track = self.fall_back(catalog, prev_track, session)
        session.recommended(track)
        self.store.save_session(user, session)
        return track

    def end_session(self, user: int) -> None:
        self.store.end_session(user)

    def fall_back(self, catalog: Catalog, prev_track: int, session: Session) -> int:
        exclude = set(session.seen)
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
        return first_not_in(candidates, set(session.seen))


class SessionAware(CandidateRecommender):
    """The unplayed candidate most similar to the session's context, discounted by artist fatigue."""

    def choose(self, candidates: np.ndarray, items: ItemSpace | None, session: Session, catalog: Catalog) -> int | None:
        context = session.context_track()
        if items is None or len(items) != catalog.size or context is None:
            items = None  # no usable vectors: the list's order is the relevance
        else:
            candidates = np.concatenate([candidates, items.nearest(context)])
            candidates = candidates[np.sort(np.unique(candidates, return_index=True)[1])]
        candidates = candidates[(candidates >= 0) & (candidates < catalog.size)]
        unplayed = candidates[~np.isin(candidates, session.seen)]
        if len(unplayed) == 0:
            return None
        if items is None:
            relevance = 1.0 - np.arange(len(unplayed)) / len(unplayed)
        else:
            relevance = (1.0 + items.similarity(unplayed, context)) / 2.0
        plays = Counter(catalog.artist_of[session.seen].tolist())
        fatigue = ARTIST_FATIGUE ** np.array([plays[a] for a in catalog.artist_of[unplayed].tolist()])
        return int(unplayed[int(np.argmax(relevance * fatigue))])
