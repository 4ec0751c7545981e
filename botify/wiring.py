"""Builds the recommenders the registry names, over one store and one random generator."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from botify.recommenders.base import Pick, Recommender
from botify.recommenders.candidates import InOrder, SessionAware
from botify.recommenders.random_track import RandomTrack
from botify.recommenders.sticky_artist import StickyArtist
from botify.recommenders.top_pop import TopPop
from botify.registry import RECOMMENDERS, check_fallback
from botify.store import Store

SIMPLE = {"random": RandomTrack, "toppop": TopPop, "sticky_artist": StickyArtist}
CANDIDATE_LISTS = {"in_order": InOrder, "session_aware": SessionAware}


def fallback_chain(names: Sequence[str], store: Store, rng: np.random.Generator) -> list[Pick]:
    check_fallback(names)
    return [SIMPLE[name](store.serving_catalog, rng) for name in names]


def build_recommenders(store: Store, rng: np.random.Generator, fallback: Sequence[str]) -> dict[str, Recommender]:
    """Every recommender of the registry, by name."""
    chain = fallback_chain(fallback, store, rng)
    recommenders: dict[str, Recommender] = {}
    for name, spec in RECOMMENDERS.items():
        if spec.kind in SIMPLE:
            recommenders[name] = SIMPLE[spec.kind](store.serving_catalog, rng)
        else:
            recommenders[name] = CANDIDATE_LISTS[spec.kind](store, spec.recommendation_set, chain)
    return recommenders
