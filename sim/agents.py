"""In-process agents: the recommenders the simulator can drive without a service.

An agent answers ``recommend_next(user, prev_track, prev_track_time)`` -- botify's recommender
interface -- so any botify recommender object plugs in through ``RecommenderAgent``.
``begin`` hands the agent the episode's own generator (results do not depend on which
process ran the episode); ``end`` tells it the session is over.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np

from sim.catalog import World
from sim.env import RecEnv, Session
from sim.errors import AgentError
from sim.listener import appeal

T = TypeVar("T")


class Agent:
    """Base: keeps the episode's generator; nothing to do when a session ends."""

    def begin(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def recommend_next(self, user: int, prev_track: int, prev_track_time: float) -> int:
        raise NotImplementedError

    def end(self, user: int, last_track: int, last_time: float) -> None:
        return None


class RandomAgent(Agent):
    """A uniformly random track: the floor. Draws in blocks (one generator call per block is cheaper)."""

    BLOCK = 32

    def __init__(self, n_tracks: int) -> None:
        self.n_tracks = n_tracks

    def begin(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self._drawn: list[int] = []

    def recommend_next(self, user: int, prev_track: int, prev_track_time: float) -> int:
        if not self._drawn:
            self._drawn = self.rng.integers(self.n_tracks, size=self.BLOCK).tolist()[::-1]
        return self._drawn.pop()


class TopPopAgent(Agent):
    """A random track among the ``k`` most popular, as the course's TopPop."""

    def __init__(self, top_tracks: np.ndarray, k: int = 100) -> None:
        self.top = top_tracks[:k]

    def recommend_next(self, user: int, prev_track: int, prev_track_time: float) -> int:
        return int(self.top[self.rng.integers(self.top.shape[0])])


class StickyArtistAgent(Agent):
    """A random track by the previous track's artist: the course's A/B control."""

    def __init__(self, world: World) -> None:
        self.artists = world.artists
        self.by_artist = world.artist_tracks()

    def recommend_next(self, user: int, prev_track: int, prev_track_time: float) -> int:
        tracks = self.by_artist[self.artists[prev_track]]
        return int(tracks[self.rng.integers(tracks.shape[0])])


class OracleAgent(Agent):
    """Knows the session's interest embedding: the best unplayed track after artist fatigue.

    Greedy and exact: it ranks a shortlist of the closest tracks, and widens the shortlist
    only when its best (after fatigue) could be beaten by a track outside it.
    """

    def __init__(self, env: RecEnv, shortlist: int = 256) -> None:
        self.env = env
        self.shortlist = shortlist
        self._session: Session | None = None

    def _prepare(self, session: Session, size: int) -> None:
        world = self.env.world
        scores = world.embeddings @ session.embedding
        if size >= scores.shape[0]:
            top, bound = np.arange(scores.shape[0]), -1.0
        else:
            top = np.argpartition(scores, -size - 1)[-size - 1 :]
            top = top[np.argsort(-scores[top], kind="stable")]
            top, bound = top[:size], float(appeal(scores[top[size]], session.listener))
        self._candidates = top
        self._artists = world.artists[top]
        self._appeal = appeal(scores[top], session.listener)
        self._bound = bound
        self._discount = session.listener.artist_discount_gamma ** np.arange(64, dtype=np.float64)
        self._session = session

    def recommend_next(self, user: int, prev_track: int, prev_track_time: float) -> int:
        session = self.env.session
        if session is None:
            raise RuntimeError("the oracle needs a running environment session")
        if session is not self._session:
            self._prepare(session, self.shortlist)
        while True:
            plays = np.minimum(session.artist_plays[self._artists], self._discount.shape[0] - 1)
            value = self._appeal * self._discount[plays]
            best = int(np.argmax(value))
            while value[best] >= 0.0 and int(self._candidates[best]) in session.played:
                self._appeal[best] = value[best] = -1.0
                best = int(np.argmax(value))
            if value[best] >= self._bound:
                return int(self._candidates[best])
            self._prepare(session, 4 * self._candidates.shape[0])


def _own_code(name: str, method: Callable[..., T], *args: object) -> T:
    """Call a recommender's own `method`: whatever it raises becomes one AgentError line saying what it raised."""
    try:
        return method(*args)
    except Exception as error:  # noqa: BLE001 (the recommender's own code)
        raise AgentError(f"{name} raised {type(error).__name__}: {error}") from None


class RecommenderAgent(Agent):
    """Any object with botify's ``recommend_next(user, prev_track, prev_track_time)``
    (and optionally ``end_session(user)``, and ``begin(rng)`` to draw its random picks from the episode's
    generator, which makes its results independent of how episodes are spread over processes), run in-process."""

    def __init__(self, recommender: object) -> None:
        if not callable(getattr(recommender, "recommend_next", None)):
            raise TypeError(f"{recommender!r} has no recommend_next(user, prev_track, prev_track_time)")
        self.recommender = recommender

    def begin(self, rng: np.random.Generator) -> None:
        super().begin(rng)
        begin = getattr(self.recommender, "begin", None)
        if callable(begin):
            _own_code("begin", begin, rng)

    def recommend_next(self, user: int, prev_track: int, prev_track_time: float) -> int:
        track = _own_code("recommend_next", self.recommender.recommend_next, user, prev_track, prev_track_time)
        if isinstance(track, bool) or not isinstance(track, (int, np.integer)):  # 3.7 is no track, nor is True
            raise AgentError(f"recommend_next returned {track!r}, not a track id (an int)")
        return int(track)

    def end(self, user: int, last_track: int, last_time: float) -> None:
        end_session = getattr(self.recommender, "end_session", None)
        if callable(end_session):
            _own_code("end_session", end_session, user)
