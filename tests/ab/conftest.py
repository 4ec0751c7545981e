"""Fixtures for the A/B tests: seeded synthetic logs written as real files in botify's event-log format."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pytest

from ab.synthetic import SyntheticDesign, draw_traits, generate_events, write_log

WriteLogs = Callable[..., tuple[Path, Path]]


@pytest.fixture
def write_logs(tmp_path: Path) -> WriteLogs:
    """`write_logs(seed, users=..., effect=..., ...) -> (experiment log dir, pre-period log dir)`."""

    def write(
        seed: int,
        *,
        users: int = 2000,
        split: Mapping[str, float] | None = None,
        effect: Mapping[str, float] | None = None,
        latency_effect: Mapping[str, float] | None = None,
        experiment: str = "HW_2",
        name: str = "run",
    ) -> tuple[Path, Path]:
        design = SyntheticDesign(
            users=users,
            split=split or {"C": 0.5, "T1": 0.5},
            effect=effect or {},
            latency_effect=latency_effect or {},
            experiment=experiment,
        )
        rng = np.random.default_rng(seed)
        traits = draw_traits(design, rng)
        logs, pre = tmp_path / name / "log", tmp_path / name / "pre"
        write_log(generate_events(design, rng, traits), logs, experiment)
        write_log(generate_events(design, rng, traits, period=0), pre, experiment)
        return logs, pre

    return write
