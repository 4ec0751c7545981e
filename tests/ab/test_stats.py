from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from ab.errors import ABInputError
from ab.stats import compare, holm, mde_pct, users_per_arm


def test_course_ci_is_welchs_absolute_ci_over_the_control_mean() -> None:
    rng = np.random.default_rng(0)
    control, treatment = rng.gamma(2.0, 3.0, 400), rng.gamma(2.0, 3.3, 300)
    result = compare(control, treatment, ci="course")
    vc, vt = control.var(ddof=1) / 400, treatment.var(ddof=1) / 300
    dof = (vc + vt) ** 2 / (vc**2 / 399 + vt**2 / 299)  # Welch-Satterthwaite, written out
    half = stats.t.ppf(0.975, dof) * math.sqrt(vc + vt)
    diff = treatment.mean() - control.mean()
    assert result.dof == pytest.approx(dof)
    assert result.lower_pct == pytest.approx((diff - half) / control.mean() * 100)
    assert result.upper_pct == pytest.approx((diff + half) / control.mean() * 100)
    assert result.p_value == pytest.approx(2 * stats.t.sf(abs(diff) / math.sqrt(vc + vt), dof))
    assert result.effect_pct == pytest.approx((treatment.mean() / control.mean() - 1) * 100)
    assert result.significant == (result.p_value < 0.05)


def _coverage(ci: str, runs: int = 1000) -> float:
    """Share of CIs covering the true +50% effect with a small, noisy control arm."""
    rng = np.random.default_rng(1)
    hits = 0
    for _ in range(runs):
        control = rng.normal(10.0, 6.0, 30)
        treatment = rng.normal(15.0, 1.0, 2000)
        result = compare(control, treatment, ci=ci)
        hits += result.lower_pct <= 50.0 <= result.upper_pct
    return hits / runs


def test_delta_ci_covers_the_relative_effect_where_the_course_ci_does_not() -> None:
    delta, course = _coverage("delta"), _coverage("course")
    # Binomial sd at 95% over 1000 runs is 0.7 points; the delta CI is at its nominal level,
    # the course's ignores the control mean's own noise and covers far less often.
    assert 0.925 <= delta <= 0.975
    assert course < 0.88


def test_delta_and_course_agree_on_small_effects_with_large_samples() -> None:
    rng = np.random.default_rng(2)
    control, treatment = rng.normal(10, 3, 5000), rng.normal(10.1, 3, 5000)
    delta, course = compare(control, treatment), compare(control, treatment, ci="course")
    assert delta.lower_pct == pytest.approx(course.lower_pct, abs=0.02)
    assert delta.upper_pct == pytest.approx(course.upper_pct, abs=0.02)
    assert delta.welch_p_value == course.p_value


def test_nans_are_dropped_and_too_few_values_is_an_input_error() -> None:
    result = compare([1.0, 2.0, np.nan, 3.0], [2.0, 3.0, 4.0])
    assert (result.control_n, result.treatment_n) == (3, 3)
    with pytest.raises(ABInputError, match="need at least 2"):
        compare([1.0, np.nan], [1.0, 2.0], metric="time")
    with pytest.raises(ABInputError, match="unknown CI method"):
        compare([1.0, 2.0], [1.0, 2.0], ci="bootstrap")


def test_constant_arms_give_an_exact_answer_not_nan() -> None:
    same = compare([1.0, 1.0, 1.0], [1.0, 1.0])
    assert same.effect_pct == 0.0 and same.p_value == 1.0 and not same.significant
    moved = compare([1.0, 1.0, 1.0], [2.0, 2.0])
    assert moved.effect_pct == pytest.approx(100.0) and moved.significant


def test_an_arm_of_one_value_against_a_varying_one_warns_nothing(recwarn) -> None:
    """scipy warned of precision loss on stderr (two lines in every report) when all of an arm's users had one
    value, as `sessions` does when each user has one session: that arm's variance is exactly 0."""
    result = compare([1.0, 2.0, 3.0, 2.0], [1.0, 1.0, 1.0])
    assert [str(warning.message) for warning in recwarn] == []
    assert result.effect_pct == pytest.approx(-50.0) and result.treatment_n == 3
    t = -1.0 / math.sqrt(np.var([1.0, 2.0, 3.0, 2.0], ddof=1) / 4)  # Welch's, the treatment's variance 0: df 3
    assert result.welch_p_value == pytest.approx(2 * stats.t.sf(abs(t), 3))


def test_holm_matches_the_step_down_by_hand() -> None:
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> monotone 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, np.nan]) == pytest.approx([1.0, 1.0])
    assert holm([0.001]) == pytest.approx([0.001])


def test_users_for_a_5pct_effect_reach_80pct_power_in_simulation() -> None:
    n = users_per_arm(9.0, 9.0, 10.0, effect=0.05)
    assert n == math.ceil((stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) ** 2 * 18 / 0.25)
    rng = np.random.default_rng(3)
    control = rng.normal(10.0, 3.0, (2000, n))
    treatment = rng.normal(10.5, 3.0, (2000, n))
    power = (stats.ttest_ind(treatment, control, axis=1, equal_var=False).pvalue < 0.05).mean()
    assert power == pytest.approx(0.80, abs=0.03)
    assert mde_pct(9.0, n, 9.0, n, 10.0) == pytest.approx(5.0, abs=0.01)
    assert users_per_arm(1.0, 1.0, 0.0) is None


def test_a_metric_without_variance_needs_the_two_users_per_arm_welch_needs() -> None:
    """Every user one identical session: the report's power table said 0 users per arm."""
    assert users_per_arm(0.0, 0.0, 1.0) == 2
    assert users_per_arm(1e-6, 1e-6, 10.0) == 2


@pytest.mark.parametrize("variance", [1e308, math.inf, math.nan])
def test_users_per_arm_has_no_answer_for_variances_beyond_a_float(variance: float) -> None:
    """Finite user values can have a variance that overflows (latencies of 1e160 s): no number, not a traceback."""
    assert users_per_arm(variance, variance, 1e-3) is None


def test_the_delta_ci_and_p_value_are_the_delta_method_written_out_on_small_arms() -> None:
    control = np.array([3.0, 5.0, 4.0, 6.0, 2.0])
    treatment = np.array([6.0, 7.5, 5.0, 9.0, 6.5, 8.0])
    result = compare(control, treatment)
    mc, mt = control.mean(), treatment.mean()
    vc, vt = control.var(ddof=1) / 5, treatment.var(ddof=1) / 6  # the means' sample variances
    from_treatment, from_control = vt / mc**2, mt**2 * vc / mc**4  # the ratio's variance, by arm
    dof = (from_treatment + from_control) ** 2 / (from_treatment**2 / 5 + from_control**2 / 4)  # Satterthwaite
    se = math.sqrt(from_treatment + from_control)
    effect = mt / mc - 1
    q = stats.t.ppf(0.975, dof)
    assert result.effect_pct == pytest.approx(effect * 100)
    assert (result.lower_pct, result.upper_pct) == pytest.approx(((effect - q * se) * 100, (effect + q * se) * 100))
    assert result.p_value == pytest.approx(2 * stats.t.sf(effect / se, dof))


def test_the_delta_method_takes_its_degrees_of_freedom_from_the_ratios_terms_not_the_difference() -> None:
    """5 control users against 200 treated with a x3 effect: the treatment's spread dominates the difference's
    variance, the control's term (x mt^2 / mc^2) the ratio's, so the quantile has about the control's degrees of
    freedom (the difference's Welch dof, ~15 here, gave too narrow a CI)."""
    rng = np.random.default_rng(3)
    control, treatment = rng.normal(10, 2, size=5), rng.normal(30, 20, size=200)
    result = compare(control, treatment)
    assert 4.0 <= result.dof <= 6.0
    assert result.dof < stats.ttest_ind(treatment, control, equal_var=False).df / 2


def test_a_treatment_of_zeros_against_a_varying_control_is_not_an_exact_answer() -> None:
    result = compare([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])
    welch = stats.ttest_ind([0.0, 0.0, 0.0], [1.0, 2.0, 3.0], equal_var=False)
    assert result.effect_pct == pytest.approx(-100.0)
    assert result.p_value == pytest.approx(welch.pvalue) and result.p_value > 0.05
    assert result.lower_pct < -100.0 < result.upper_pct and not result.significant


def test_a_zero_control_mean_has_no_relative_effect_and_welchs_test_decides() -> None:
    rng = np.random.default_rng(4)
    control, treatment = np.zeros(50), rng.normal(1.0, 0.5, size=50)
    result = compare(control, treatment)
    assert math.isnan(result.effect_pct) and math.isnan(result.lower_pct)
    assert result.p_value == result.welch_p_value < 1e-6
    assert result.significant
    assert not compare(np.zeros(50), rng.normal(0.0, 0.5, size=50)).significant
