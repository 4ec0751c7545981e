"""Sample-ratio mismatch: are users split across arms the way the design says?

A mismatch (chi-square p below 0.001, the usual threshold) means the assignment or the
logging is broken, and the effects are not to be trusted whatever they say.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scipy import stats

from ab.arms import CONTROL
from ab.errors import ABInputError
from botify.experiments import arm_label

SRM_THRESHOLD = 0.001


@dataclass(frozen=True)
class SRMCheck:
    observed: dict[str, int]
    expected_share: dict[str, float]
    chi2: float
    p_value: float
    threshold: float = SRM_THRESHOLD

    @property
    def mismatch(self) -> bool:
        return self.p_value < self.threshold

    def line(self) -> str:
        """One line for the terminal and the report."""
        counts = " / ".join(f"{arm} {n:,}" for arm, n in self.observed.items())
        design = " / ".join(f"{share:.0%}" for share in self.expected_share.values())
        verdict = "SAMPLE RATIO MISMATCH" if self.mismatch else "ok"
        fit = f"chi2={self.chi2:.2f}, p={self.p_value:.3g}"
        return f"SRM check: users {counts} vs design {design}: {fit} -> {verdict}"


def _malformed(text: str) -> ABInputError:
    return ABInputError(f"--split {text!r} is not like C=50,T1=50 or 50/50")


def _share(text: str, part: str) -> float:
    try:
        value = float(part)
    except ValueError:
        raise _malformed(text) from None
    if not math.isfinite(value):
        raise ABInputError(f"--split {text!r} has a share that is not a finite number: {part.strip()!r}")
    return value


def parse_split(text: str, arms: Sequence[str] = ()) -> dict[str, float]:
    """`C=50,T1=50` (named) or `50/50` (the same, its parts naming C, T1, T2, ... in order) -> shares that sum to 1.

    `arms`: those the logs have users in, each of which needs a share; an arm of the split absent from the logs
    counts 0 users, which the SRM check flags."""
    if "=" in text:
        pairs = [part.partition("=") for part in text.split(",") if part.strip()]
        if any(not sep or not name.strip() for name, sep, _ in pairs):
            raise _malformed(text)
        names = [name.strip() for name, _, _ in pairs]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:  # the last share would win silently, and the SRM check (or a simulated design) be another
            raise ABInputError(f"--split {text!r} gives arm(s) {', '.join(twice)} more than one share")
        weights = {name.strip(): _share(text, value) for name, _, value in pairs}
    else:
        weights = {arm_label(i): _share(text, part) for i, part in enumerate(text.split("/"))}
    unknown = ", ".join(sorted(set(arms) - set(weights)))
    if unknown:
        raise ABInputError(f"--split {text!r} gives no share for arm(s) {unknown} seen in the logs")
    _check_positive(text, weights, arms, "no positive share")
    top = max(weights.values())  # scaled by the largest first: a sum of shares near the float maximum is inf
    scaled = {arm: weight / top for arm, weight in weights.items()}
    total = sum(scaled.values())
    shares = {arm: weight / total for arm, weight in scaled.items()}
    _check_positive(text, shares, arms, "a share too small beside the largest to count")  # it rounded to 0
    return shares


def _check_positive(text: str, shares: dict[str, float], arms: Sequence[str], reason: str) -> None:
    """Every arm of a design expects users: one the logs have users in needs a share, one they lack is dropped."""
    bad = [arm for arm, share in shares.items() if not share > 0]
    seen = [arm for arm in bad if arm in arms]
    if seen:
        raise ABInputError(f"--split {text!r} gives arm(s) {', '.join(seen)} {reason}, yet the logs have users in "
                           "them: every arm needs a positive share")  # fmt: skip
    if bad:
        droppable = " (drop an arm the design lacks)" if CONTROL not in bad else ""  # never the control
        raise ABInputError(f"--split {text!r} gives arm(s) {', '.join(bad)} {reason}: every arm of a design needs a "
                           f"positive share{droppable}")  # fmt: skip


def srm_check(users_per_arm: Mapping[str, int], split: Mapping[str, float] | None = None) -> SRMCheck:
    """Chi-square goodness of fit of users per arm against the design split (`parse_split`'s; equal if None)."""
    arms = list(split) if split is not None else list(users_per_arm)
    shares = dict(split) if split is not None else {arm: 1 / len(arms) for arm in arms}
    observed = {arm: int(users_per_arm.get(arm, 0)) for arm in arms}
    total = sum(observed.values())
    result = stats.chisquare(list(observed.values()), [shares[arm] * total for arm in arms])
    return SRMCheck(observed, shares, float(result.statistic), float(result.pvalue))
