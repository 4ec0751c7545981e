"""CUPED: a metric adjusted by its own pre-experiment value, same mean, less variance.

y_adj = y - theta * (x - mean(x)), theta = cov(x, y) / var(x), both estimated within arms
(each arm centred on its own means) so a treatment effect cannot leak into theta. A user
with no pre-period value gets x = mean(x), i.e. no adjustment: everyone stays in the test.
Deng, Xu, Kohavi, Walker (2013), "Improving the sensitivity of online controlled experiments
by utilizing pre-experiment data".
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class CupedFit:
    """One metric's adjustment: theta, users with a pre-period value, and the variance it removed."""

    metric: str
    theta: float
    covered_users: int
    variance_reduction: float  # 1 - var(adjusted) / var(raw), within arms, in [0, 1)


def _within_arm(values: pd.Series, arms: pd.Series) -> pd.Series:
    return values - values.groupby(arms).transform("mean")


def cuped_adjust(y: pd.Series, x: pd.Series, arms: pd.Series, metric: str) -> tuple[pd.Series, CupedFit]:
    """Adjusted `y` (index: users, aligned with `arms`) using pre-period `x` (any subset of users)."""
    x = x.reindex(y.index)
    covered = x.notna() & y.notna()
    if covered.sum() < 3:
        return y.copy(), CupedFit(metric, 0.0, int(covered.sum()), 0.0)
    pre_mean = float(x[covered].mean())
    centred_x = x.where(covered, pre_mean) - pre_mean
    yc = _within_arm(y[covered], arms[covered])
    xc = _within_arm(centred_x[covered], arms[covered])
    var_x = float((xc * xc).sum())
    theta = float((xc * yc).sum()) / var_x if var_x > 0 else 0.0
    adjusted = y - theta * centred_x
    raw_var = float(_within_arm(y, arms).var())
    reduction = 1.0 - float(_within_arm(adjusted, arms).var()) / raw_var if raw_var > 0 else 0.0
    return adjusted, CupedFit(metric, theta, int(covered.sum()), reduction)
