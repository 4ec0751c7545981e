"""botify's own recommenders as in-process simulator agents (`--agent pipeline.agents:lightfm`).

They read the same Redis the service uses (`REDIS_URL`), so the simulator can compare them with its
oracle on identical sessions, without HTTP in between.
"""

from __future__ import annotations

import numpy as np

from botify.app import redis_client
from botify.recommenders.base import Recommender
from botify.settings import Settings
from botify.store import Store
from botify.wiring import build_recommenders


def recommender(name: str) -> Recommender:
    settings = Settings.from_env()
    store = Store(redis_client(settings), settings.session_ttl)
    return build_recommenders(store, np.random.default_rng(settings.seed), settings.fallback)[name]


def lightfm(world: object) -> Recommender:
    return recommender("lightfm")


def lightfm_in_order(world: object) -> Recommender:
    return recommender("lightfm_in_order")
