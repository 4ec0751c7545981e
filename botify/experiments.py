"""Experiment assignment: a few pure functions anyone can read and re-implement.

The arm of a user is the course's botify assignment: `seed = mmh3.hash(name)`,
`arm = mmh3.hash(str(user), seed, signed=False) % arms`. The course pinned mmh3 3.0.0, which took the
negative seed and used its low 32 bits; current mmh3 rejects negative seeds, so the seed
is spelled out as an unsigned 32-bit number, which hashes identically.

Beyond the course: `coverage` enrols only a fraction of users (raising it only adds users),
and a `namespace` with a hash range makes experiments in the same namespace mutually exclusive.
With full coverage and no namespace, the assignment is exactly the course's.
"""

from __future__ import annotations

from dataclasses import dataclass

import mmh3

HASH_SPACE = 2**32


def experiment_seed(name: str) -> int:
    """The course's seed `mmh3.hash(name)`, read as an unsigned 32-bit number."""
    return mmh3.hash(name) & 0xFFFFFFFF


def user_hash(user: int, name: str) -> int:
    """Unsigned 32-bit hash of a user under a name."""
    return mmh3.hash(str(user), experiment_seed(name), signed=False)


def unit_interval(user: int, name: str) -> float:
    """The user's position in [0, 1) under a name, for coverage and namespace ranges."""
    return user_hash(user, name) / HASH_SPACE


def arm_label(index: int) -> str:
    """`C` for the control, then `T1`, `T2`, ..."""
    return "C" if index == 0 else f"T{index}"


@dataclass(frozen=True)
class Namespace:
    """A hash range [start, end) of a shared namespace; experiments with disjoint ranges never share users."""

    name: str
    start: float
    end: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.start < self.end <= 1.0:
            raise ValueError(f"namespace range [{self.start}, {self.end}) must lie within [0, 1]")

    def contains(self, user: int) -> bool:
        return self.start <= unit_interval(user, f"namespace:{self.name}") < self.end


@dataclass(frozen=True)
class Experiment:
    """A named experiment: one recommender per arm (arm 0 is the control `C`)."""

    name: str
    recommenders: tuple[str, ...]
    coverage: float = 1.0
    namespace: Namespace | None = None

    def __post_init__(self) -> None:
        if len(self.recommenders) < 2:
            raise ValueError(f"experiment {self.name} needs at least two arms")
        if not 0.0 <= self.coverage <= 1.0:
            raise ValueError(f"experiment {self.name}: coverage must be in [0, 1]")

    @property
    def arms(self) -> tuple[str, ...]:
        return tuple(arm_label(i) for i in range(len(self.recommenders)))

    def enrolled(self, user: int) -> bool:
        if self.namespace is not None and not self.namespace.contains(user):
            return False
        return self.coverage >= 1.0 or unit_interval(user, f"coverage:{self.name}") < self.coverage

    def arm(self, user: int) -> str | None:
        """The user's arm, or None when the user is not enrolled."""
        if not self.enrolled(user):
            return None
        return arm_label(user_hash(user, self.name) % len(self.recommenders))

    def recommender_for(self, arm: str) -> str:
        return self.recommenders[self.arms.index(arm)]
