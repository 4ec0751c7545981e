from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ab.cuped import cuped_adjust
from ab.metrics import user_metrics
from ab.report import analyze
from ab.synthetic import SyntheticDesign, draw_traits, generate_events


def test_theta_is_the_within_arm_regression_slope_and_uncovered_users_are_untouched() -> None:
    rng = np.random.default_rng(0)
    users = pd.RangeIndex(400)
    arms = pd.Series(np.where(np.arange(400) < 200, "C", "T1"), index=users)
    x = pd.Series(rng.normal(5.0, 2.0, 400), index=users)
    y = 3.0 + 0.7 * x + rng.normal(0.0, 0.5, 400) + np.where(arms == "T1", 1.0, 0.0)
    pre = x.drop(index=[0, 1, 2])  # three users without a pre-period
    adjusted, fit = cuped_adjust(y, pre, arms, "m")
    centred = pd.DataFrame({"x": x, "y": y, "arm": arms}).drop(index=[0, 1, 2])
    centred[["x", "y"]] -= centred.groupby("arm")[["x", "y"]].transform("mean")
    slope = (centred["x"] * centred["y"]).sum() / (centred["x"] ** 2).sum()
    assert fit.theta == pytest.approx(slope)
    assert fit.theta == pytest.approx(0.7, abs=0.05)
    assert fit.covered_users == 397
    assert adjusted.loc[[0, 1, 2]].tolist() == y.loc[[0, 1, 2]].tolist()
    assert fit.variance_reduction > 0.85
    # the treatment effect (+1) survives the adjustment
    effect = adjusted[arms == "T1"].mean() - adjusted[arms == "C"].mean()
    assert effect == pytest.approx(1.0, abs=0.15)


def test_cuped_narrows_the_ci_and_keeps_the_effect() -> None:
    design = SyntheticDesign(users=4000, effect={"T1": 0.1})
    rng = np.random.default_rng(11)
    traits = draw_traits(design, rng)
    users = user_metrics(generate_events(design, rng, traits)).frame
    pre = user_metrics(generate_events(design, rng, traits, period=0)).frame
    report = analyze(users, "HW_2", pre=pre)
    raw, adjusted = report.effect("mean_time_per_session"), report.effect("mean_time_per_session", cuped=True)
    assert adjusted.upper_pct - adjusted.lower_pct < 0.7 * (raw.upper_pct - raw.lower_pct)
    assert adjusted.lower_pct < 10.0 < adjusted.upper_pct
    fit = next(f for f in report.cuped_fits if f.metric == "mean_time_per_session")
    assert fit.variance_reduction > 0.5 and fit.covered_users == 4000
    power = next(p for p in report.power if p.metric == "mean_time_per_session")
    assert power.users_per_arm_cuped is not None and power.users_per_arm is not None
    assert power.users_per_arm_cuped < 0.5 * power.users_per_arm
    assert power.mde_pct_cuped < power.mde_pct


def test_a_pre_period_covering_few_users_adjusts_them_and_says_so() -> None:
    design = SyntheticDesign(users=400)
    rng = np.random.default_rng(2)
    traits = draw_traits(design, rng)
    users = user_metrics(generate_events(design, rng, traits)).frame
    pre = user_metrics(generate_events(design, rng, traits, period=0)).frame
    few = pre.loc[pre.index[:100]]  # a quarter of the users
    report = analyze(users, "HW_2", pre=few)
    fit = next(f for f in report.cuped_fits if f.metric == "mean_time_per_session")
    assert fit.covered_users == 100 and fit.theta > 0  # a small pre-period still adjusts the users it covers
    assert any(w.startswith("warning: only 100 of 400 users have pre-period data") for w in report.warnings)
