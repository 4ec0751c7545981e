"""Arm names: `C` is the control, `T1`, `T2`, ... the treatments (botify's `arm_label`)."""

from __future__ import annotations

import re
from collections.abc import Iterable

CONTROL = "C"


def arm_key(arm: str) -> tuple[str, int, str]:
    """Natural order: C, T1, T2, ..., T10 (not T1, T10, T2)."""
    match = re.fullmatch(r"([A-Za-z_]*)(\d*)", arm)
    if match is None:
        return (arm, -1, arm)
    letters, digits = match.groups()
    return (letters, int(digits) if digits else -1, arm)


def sorted_arms(arms: Iterable[str]) -> list[str]:
    return sorted(set(arms), key=arm_key)
