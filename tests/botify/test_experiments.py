"""Assignment is the course's: pinned against an independent MurmurHash3 and the course's negative seed."""

from __future__ import annotations

import numpy as np
import pytest

from botify.experiments import Experiment, Namespace, experiment_seed, user_hash
from botify.registry import EXPERIMENTS, experiment_arms


def murmur3_32(data: bytes, seed: int) -> int:
    """MurmurHash3 x86_32 written out from the reference algorithm (independent of the mmh3 package)."""
    c1, c2, mask = 0xCC9E2D51, 0x1B873593, 0xFFFFFFFF
    h = seed & mask
    rotl = lambda x, r: ((x << r) | (x >> (32 - r))) & mask  # noqa: E731
    whole = len(data) // 4 * 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = rotl((k * c1) & mask, 15) * c2 & mask
        h = (rotl(h ^ k, 13) * 5 + 0xE6546B64) & mask
    tail = data[whole:]
    if tail:
        k = int.from_bytes(tail, "little")
        h ^= rotl((k * c1) & mask, 15) * c2 & mask
    h ^= len(data)
    h = ((h ^ (h >> 16)) * 0x85EBCA6B) & mask
    h = ((h ^ (h >> 13)) * 0xC2B2AE35) & mask
    return h ^ (h >> 16)


def signed(value: int) -> int:
    return value - 2**32 if value >= 2**31 else value


def course_arm(user: int, name: str, arms: int) -> int:
    """The course's formula with mmh3 3.0.0: a signed seed, passed on as its low 32 bits."""
    negative_or_not_seed = signed(murmur3_32(name.encode(), 0))
    return murmur3_32(str(user).encode(), negative_or_not_seed) % arms


def test_reference_murmur_matches_published_vectors():
    assert murmur3_32(b"", 0) == 0
    assert murmur3_32(b"hello", 0) == 0x248BFA47
    assert murmur3_32(b"The quick brown fox jumps over the lazy dog", 0) == 0x2E4FF723


def test_hw2_seed_is_negative_in_the_course_and_wraps_to_unsigned():
    assert signed(murmur3_32(b"HW_2", 0)) < 0
    assert experiment_seed("HW_2") == murmur3_32(b"HW_2", 0)


@pytest.mark.parametrize("name", ["HW_2", "EXPLORE", "HW_2_ARMS", "some other test"])
def test_assignment_equals_course_formula(name):
    for user in [0, 1, 2, 3, 10, 99, 12345, 999_999, 2**40]:
        assert user_hash(user, name) == murmur3_32(str(user).encode(), experiment_seed(name))
        experiment = Experiment(name, ("a", "b", "c"))
        assert experiment.arm(user) == ("C", "T1", "T2")[course_arm(user, name, 3)]


def test_hw2_fixed_vectors():
    hw2 = EXPERIMENTS["HW_2"]
    arms = [hw2.arm(user) for user in range(12)]
    assert arms == [("C", "T1")[course_arm(user, "HW_2", 2)] for user in range(12)]
    assert set(arms) == {"C", "T1"}


def test_hw2_splits_users_about_evenly():
    hw2 = EXPERIMENTS["HW_2"]
    treated = sum(hw2.arm(user) == "T1" for user in range(100_000))
    assert abs(treated - 50_000) < 4 * np.sqrt(25_000)  # within 4 sigma of a fair split


def test_coverage_enrols_a_fraction_and_raising_it_only_adds_users():
    users = range(20_000)
    small = Experiment("X", ("a", "b"), coverage=0.2)
    large = Experiment("X", ("a", "b"), coverage=0.5)
    enrolled_small = {u for u in users if small.arm(u) is not None}
    enrolled_large = {u for u in users if large.arm(u) is not None}
    assert abs(len(enrolled_small) / 20_000 - 0.2) < 0.02
    assert enrolled_small < enrolled_large
    full = Experiment("X", ("a", "b"))
    assert all(large.arm(u) == full.arm(u) for u in enrolled_large)  # enrolment never changes an arm


def test_namespace_ranges_make_experiments_exclusive():
    left = Experiment("L", ("a", "b"), namespace=Namespace("music", 0.0, 0.5))
    right = Experiment("R", ("a", "b"), namespace=Namespace("music", 0.5, 1.0))
    users = range(10_000)
    in_left = {u for u in users if left.arm(u) is not None}
    in_right = {u for u in users if right.arm(u) is not None}
    assert not in_left & in_right
    assert len(in_left | in_right) == 10_000
    assert 4_500 < len(in_left) < 5_500


def test_bad_experiment_definitions_are_refused():
    with pytest.raises(ValueError, match="experiment one arm needs at least two arms"):
        Experiment("one arm", ("a",))
    with pytest.raises(ValueError, match=r"experiment X: coverage must be in \[0, 1\]"):
        Experiment("X", ("a", "b"), coverage=1.5)
    with pytest.raises(ValueError, match=r"namespace range \[0.6, 0.4\)"):
        Namespace("n", 0.6, 0.4)
    with pytest.raises(ValueError, match=r"namespace range \[0.5, 0.5\)"):
        Namespace("n", 0.5, 0.5)  # empty: an experiment that enrols nobody


def test_events_carry_arms_of_every_registered_experiment():
    assert set(experiment_arms(7)) == set(EXPERIMENTS)
