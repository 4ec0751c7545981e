"""Two-sample statistics for one metric: Welch's test, the relative effect's CI, Holm, power.

Welch's t-test and its CI are scipy's (`ttest_ind(equal_var=False)`, `confidence_interval`).
The relative effect (treatment mean / control mean - 1) has two CIs:

* `delta` (default): the delta method, as GrowthBook does: the ratio's variance includes the
  control mean's own variance, var ~ vt / mc^2 + mt^2 vc / mc^4 (vc, vt: variances of the means),
  with the Welch-Satterthwaite degrees of freedom of those two terms for the quantile. When it has no
  spread while an arm varies (a treatment of zeros: the ratio is 0 whatever the control), the course's CI.
* `course`: the course's notebook, Welch's absolute CI divided by the control mean (treats the
  control mean as known, so it is too narrow when the effect is large: a nominal 95% CI covered a
  +300% effect in ~85% of simulated experiments with 430 users per arm, the delta method's in ~94%).

The p-value reported is the one of the test that the CI inverts, so `significant` (the CI
excludes 0) and `p_value < alpha` always agree; scipy's Welch p-value is kept beside it.
A control mean of 0 has no relative effect: the effect and CI are NaN, and Welch's test decides.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

from ab.errors import ABInputError

CI_METHODS: tuple[str, ...] = ("delta", "course")


@dataclass(frozen=True)
class Comparison:
    """Treatment vs control on one metric; effects and bounds in % of the control mean."""

    control_n: int
    treatment_n: int
    control_mean: float
    treatment_mean: float
    effect_pct: float
    lower_pct: float
    upper_pct: float
    p_value: float
    welch_p_value: float
    dof: float
    ci_method: str
    alpha: float = 0.05

    @property
    def significant(self) -> bool:
        """This test alone at `alpha`, unadjusted: a report's many tests are Holm's (`Effect.significant_holm`)."""
        if math.isnan(self.effect_pct):  # a zero control mean: no relative CI, Welch's test decides
            return bool(self.p_value < self.alpha)
        return bool(self.lower_pct > 0 or self.upper_pct < 0)


def _clean(values: np.ndarray | list[float], arm: str, metric: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    array = array[np.isfinite(array)]
    if array.size < 2:
        raise ABInputError(f"arm {arm} has {array.size} user(s) with a value of {metric}; need at least 2")
    return array


def welch_test(treatment: np.ndarray, control: np.ndarray):
    """scipy's Welch test. An arm whose users all have one value (every user one session, say) has a variance of
    exactly 0: not the precision loss scipy warns of on stderr for it."""
    with warnings.catch_warnings():
        if np.ptp(treatment) == 0.0 or np.ptp(control) == 0.0:
            warnings.filterwarnings("ignore", "Precision loss occurred in moment calculation", RuntimeWarning)
        return stats.ttest_ind(treatment, control, equal_var=False)


def compare(
    control: np.ndarray | list[float],
    treatment: np.ndarray | list[float],
    *,
    alpha: float = 0.05,
    ci: str = "delta",
    metric: str = "metric",
    arms: tuple[str, str] = ("C", "treatment"),
) -> Comparison:
    """Welch comparison of two samples of user-level values (NaNs are dropped); `arms` name them in errors."""
    if ci not in CI_METHODS:
        raise ABInputError(f"unknown CI method {ci!r}; choose one of {', '.join(CI_METHODS)}")
    c = _clean(control, arms[0], metric)
    t = _clean(treatment, arms[1], metric)
    mc, mt = float(c.mean()), float(t.mean())
    vc, vt = float(c.var(ddof=1)) / c.size, float(t.var(ddof=1)) / t.size
    test = welch_test(t, c) if vc + vt > 0.0 else None
    dof = float(test.df) if test is not None else float(c.size + t.size - 2)
    welch_p = float(test.pvalue) if test is not None else float(mt == mc)  # no variance: exact answer
    if mc == 0.0:
        nan = math.nan
        return Comparison(c.size, t.size, mc, mt, nan, nan, nan, welch_p, welch_p, dof, ci, alpha)
    effect = mt / mc - 1.0
    from_treatment, from_control = vt / mc**2, mt**2 * vc / mc**4  # the ratio's variance, term by arm
    se = math.sqrt(from_treatment + from_control)
    if test is None:  # neither arm varies: the exact answer
        lower, upper, p_value = effect, effect, float(effect == 0.0)
    elif ci == "course" or se == 0.0:  # se 0 while an arm varies: a treatment of zeros, whose ratio has no spread
        low, high = test.confidence_interval(1 - alpha)
        lower, upper = sorted((float(low) / mc, float(high) / mc))
        p_value = welch_p
    else:
        dof = (from_treatment + from_control) ** 2 / (
            from_treatment**2 / (t.size - 1) + from_control**2 / (c.size - 1)
        )  # Welch-Satterthwaite for the ratio's two terms (not the difference's: too many with unequal arms)
        q = float(stats.t.ppf(1 - alpha / 2, dof))
        lower, upper = effect - q * se, effect + q * se
        p_value = float(2 * stats.t.sf(abs(effect) / se, dof))
    effects = (effect * 100, lower * 100, upper * 100)
    return Comparison(c.size, t.size, mc, mt, *effects, p_value, welch_p, dof, ci, alpha)


def holm(p_values: list[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (a missing p-value counts as 1)."""
    p = np.nan_to_num(np.asarray(p_values, dtype=np.float64), nan=1.0)
    m = p.size
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return out


def users_per_arm(
    control_var: float,
    treatment_var: float,
    control_mean: float,
    *,
    effect: float = 0.05,
    alpha: float = 0.05,
    power: float = 0.8,
) -> int | None:
    """Users per arm for a two-sided test at `alpha` to detect a relative `effect` with `power`, at least 2 (Welch's
    test needs a variance in each arm; a metric without one needed 0); None when there is no finite answer (a zero
    mean, variances too large for a float)."""
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    delta = effect * abs(control_mean)
    if delta == 0.0:
        return None  # a relative effect of a zero mean is undefined
    users = z**2 * (control_var + treatment_var) / delta**2
    return max(2, math.ceil(users)) if math.isfinite(users) else None


def mde_pct(
    control_var: float,
    control_n: int,
    treatment_var: float,
    treatment_n: int,
    control_mean: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
) -> float:
    """Minimum detectable relative effect (%) at these sample sizes, `alpha` and `power`."""
    if control_mean == 0.0:
        return math.nan
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    se = math.sqrt(control_var / control_n + treatment_var / treatment_n)
    return float(z * se / abs(control_mean) * 100)
