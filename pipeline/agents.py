"""botify's own recommenders as in-process simulator agents (`--agent pipeline.agents:lightfm`).

They read the same Redis the service uses (`REDIS_URL`), so the simulator can compare them with its
oracle on identical sessions, without HTTP in between.
"""

from __future__ import annotations

import numpy as np

from botify.connection import redis_client
from botify.recommenders.base import Recommender
from botify.settings import Settings
from botify.store import Store
from botify.wiring import build_recommenders


class EpisodeSeeded:
    """A botify recommender whose random picks (its fallbacks') come from each episode's own generator."""

    def __init__(self, recommender: Recommender, rng: np.random.Generator) -> None:
        self.recommender, self.rng = recommender, rng

    def begin(self, rng: np.random.Generator) -> None:
        self.rng.bit_generator.state = type(self.rng.bit_generator)(rng.integers(2**63)).state

    def recommend_next(self, user: int, prev_track: int, prev_track_time: float) -> int:
        return self.recommender.recommend_next(user, prev_track, prev_track_time)

    def end_session(self, user: int) -> None:
        end_session = getattr(self.recommender, "end_session", None)
        if callable(end_session):
            end_session(user)


def recommender(name: str) -> EpisodeSeeded:
    settings = Settings.from_env()
    store = Store(redis_client(settings), settings.session_ttl)
    rng = np.random.default_rng(settings.seed)  # shared by the recommender and its fallback picks
    return EpisodeSeeded(build_recommenders(store, rng, settings.fallback)[name], rng)


def lightfm(world: object) -> EpisodeSeeded:
    return recommender("lightfm")


def lightfm_in_order(world: object) -> EpisodeSeeded:
    return recommender("lightfm_in_order")
