from __future__ import annotations

import numpy as np
from scipy import stats

from ab.aa import simulate_aa
from ab.metrics import METRICS
from ab.synthetic import SyntheticDesign

RUNS = 400


def test_aa_experiments_are_significant_at_the_nominal_rate() -> None:
    result = simulate_aa(RUNS, np.random.default_rng(2026), SyntheticDesign(users=400))
    # 99.9% of Binomial(400, 0.05) falls in this range: a sound test lands inside, a miscalibrated
    # one (e.g. session-level instead of user-level variance) does not.
    low, high = stats.binom.interval(0.999, RUNS, 0.05)
    for metric in METRICS:
        assert low <= result.false_positives(metric) <= high, (metric, result.false_positives(metric))
        # under no effect p-values are uniform
        assert stats.kstest(result.p_values[metric], "uniform").pvalue > 0.001, metric
    # without correction six metrics give far more than 5% of experiments a "winner"; Holm brings it back
    assert result.any_significant > high
    assert result.any_significant_holm <= high
