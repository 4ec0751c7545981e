"""The one readable place where experiments and recommenders are declared.

Recommenders are named here once; experiments refer to them by name. A recommendation set
(`lightfm`, `lightfm_nofeat`) is what `botify load --recs NAME=FILE` publishes.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from botify.experiments import Experiment


@dataclass(frozen=True)
class RecommenderSpec:
    """How to build a recommender: its kind and, for candidate lists, which published set."""

    kind: str  # random | toppop | sticky_artist | in_order | session_aware
    recommendation_set: str | None = None


RECOMMENDERS: dict[str, RecommenderSpec] = {
    "random": RecommenderSpec("random"),
    "toppop": RecommenderSpec("toppop"),
    "sticky_artist": RecommenderSpec("sticky_artist"),
    # LightFM with item features, candidates re-ranked by the session (HW_2's treatment).
    "lightfm": RecommenderSpec("session_aware", "lightfm"),
    # The same list served in its stored order: what a static per-user list gives.
    "lightfm_in_order": RecommenderSpec("in_order", "lightfm"),
    # LightFM without item features, session-aware: what the features add.
    "lightfm_nofeat": RecommenderSpec("session_aware", "lightfm_nofeat"),
}

# The sets `botify load --recs NAME=FILE` may publish: those a recommender reads.
RECOMMENDATION_SETS = tuple(dict.fromkeys(s.recommendation_set for s in RECOMMENDERS.values() if s.recommendation_set))

DEFAULT_RECOMMENDER = "sticky_artist"  # for users an experiment does not enrol

EXPERIMENTS: dict[str, Experiment] = {
    experiment.name: experiment
    for experiment in (
        # Collects training data with the course's baselines.
        Experiment("EXPLORE", ("sticky_artist", "toppop", "random")),
        Experiment("HW_2", ("sticky_artist", "lightfm")),
        # A/A: the same recommender in both arms, to check the analysis finds no effect (`python -m ab report`).
        Experiment("AA", ("sticky_artist", "sticky_artist")),
        # Where HW_2's win comes from, arm by arm.
        Experiment("HW_2_ARMS", ("sticky_artist", "lightfm_in_order", "lightfm_nofeat", "lightfm")),
    )
}


@functools.lru_cache(maxsize=2**16)
def experiment_arms(user: int) -> dict[str, str]:
    """The user's arm in every registered experiment (logged with every event; shared, not to be changed)."""
    arms = {name: experiment.arm(user) for name, experiment in EXPERIMENTS.items()}
    return {name: arm for name, arm in arms.items() if arm is not None}
