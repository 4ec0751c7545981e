"""The one readable place where experiments and recommenders are declared.

Recommenders are named here once; experiments refer to them by name. A recommendation set
(`lightfm`, `lightfm_nofeat`) is what `botify load --recs NAME=FILE` publishes.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from botify.experiments import Experiment
from botify.settings import Settings


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

# The kinds that need no published set (`botify.wiring` builds them): BOTIFY_FALLBACK chains them.
SIMPLE_KINDS = ("random", "toppop", "sticky_artist")

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


def check_fallback(names: Sequence[str]) -> None:
    """ValueError unless `names` is a chain of known recommenders: an empty one would serve the top track again and
    again to a user without a list once every other pick is played."""
    if not names:
        raise ValueError(f"BOTIFY_FALLBACK names no fallback recommender; choose from {sorted(SIMPLE_KINDS)}")
    unknown = [name for name in names if name not in SIMPLE_KINDS]
    if unknown:
        raise ValueError(f"unknown fallback recommender(s) {unknown}; choose from {sorted(SIMPLE_KINDS)}")


def check_settings(settings: Settings) -> None:
    """ValueError naming what is wrong with settings a service could not start with (numpy-free: gunicorn's master
    checks them before any worker starts)."""
    if settings.experiment not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {settings.experiment!r}; registered: {sorted(EXPERIMENTS)}")
    unknown = [name for name in EXPERIMENTS[settings.experiment].recommenders if name not in RECOMMENDERS]
    if unknown:  # its arm would answer every request with a 500
        raise ValueError(
            f"experiment {settings.experiment} names unknown recommender(s) {unknown}; "
            f"registered: {sorted(RECOMMENDERS)}"
        )
    check_fallback(settings.fallback)


@functools.lru_cache(maxsize=2**16)
def experiment_arms(user: int) -> dict[str, str]:
    """The user's arm in every registered experiment (logged with every event; shared, not to be changed)."""
    arms = {name: experiment.arm(user) for name, experiment in EXPERIMENTS.items()}
    return {name: arm for name, arm in arms.items() if arm is not None}
