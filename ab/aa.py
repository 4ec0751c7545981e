"""A/A simulation: the same "recommender" in both arms, many seeded times, in-process.

With no true effect a sound analysis calls about `alpha` of the metrics significant, and
Holm's correction keeps the chance of any false call per experiment at about `alpha` or below.
This is the analysis' own calibration check; `python -m ab aa` prints it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from tqdm import tqdm

from ab.errors import ABInputError
from ab.metrics import METRICS, user_metrics
from ab.report import analyze
from ab.synthetic import SyntheticDesign, generate_events

MAX_RUNS = 100_000  # ~3 hours at 1,000 users a run
# Users fall into the arms at random: with fewer, a run can leave an arm fewer than 2 users (no variance) and stop
# the whole simulation, at 20 users about once in 25,000 runs; at 40 about once in 10**10.
MIN_USERS = 40


@dataclass(frozen=True)
class AAResult:
    runs: int
    alpha: float
    ci_method: str
    p_values: dict[str, np.ndarray]  # per metric, one p-value per run (T1 vs C)
    any_significant: int  # runs with at least one significant metric (no correction)
    any_significant_holm: int  # runs with at least one Holm-significant metric

    def false_positives(self, metric: str) -> int:
        return int((self.p_values[metric] < self.alpha).sum())

    def rate(self, metric: str) -> float:
        return self.false_positives(metric) / self.runs

    def render(self) -> str:
        lines = [
            f"A/A: {self.runs} simulated experiments, alpha {self.alpha:g}, CI {self.ci_method}",
            "| metric | false positives | rate |",
            "|---|---:|---:|",
        ]
        lines += [f"| {m} | {self.false_positives(m)} | {self.rate(m):.1%} |" for m in METRICS]
        lines += [
            f"| any metric (no correction) | {self.any_significant} | {self.any_significant / self.runs:.1%} |",
            f"| any metric (Holm) | {self.any_significant_holm} | {self.any_significant_holm / self.runs:.1%} |",
        ]
        return "\n".join(lines) + "\n"


def simulate_aa(
    runs: int,
    rng: np.random.Generator,
    design: SyntheticDesign | None = None,
    *,
    alpha: float = 0.05,
    ci: str = "delta",
    progress: bool = False,
) -> AAResult:
    """Analyse `runs` synthetic experiments whose arms are identical (any effect in `design` is removed)."""
    if runs < 1:
        raise ABInputError(f"runs must be at least 1, got {runs}")
    if runs > MAX_RUNS:
        raise ABInputError(f"runs must be at most {MAX_RUNS:,}, got {runs:,}")
    design = replace(design or SyntheticDesign(), effect={}, latency_effect={})
    if design.users < MIN_USERS:
        raise ABInputError(
            f"users must be at least {MIN_USERS} (an arm of fewer than 2 has no variance), got {design.users}"
        )
    p_values: dict[str, list[float]] = {m: [] for m in METRICS}
    any_raw = any_holm = 0
    for _ in tqdm(range(runs), desc="A/A runs", disable=not progress):
        child = rng.spawn(1)[0]  # the children rng.spawn(runs) would give, one at a time
        users = user_metrics(generate_events(design, child)).frame
        report = analyze(users, design.experiment, alpha=alpha, ci=ci)
        first = report.treatments[0]
        for e in report.effects:
            if e.treatment == first:
                p_values[e.metric].append(e.p_value)
        any_raw += any(e.significant for e in report.effects)
        any_holm += any(e.significant_holm for e in report.effects)
    return AAResult(runs, alpha, ci, {m: np.asarray(v) for m, v in p_values.items()}, any_raw, any_holm)
