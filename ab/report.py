"""The A/B report: logs -> user metrics -> every treatment vs `C` on every metric, and its files.

`analyze` is the pure part (user metrics in, numbers out; the A/A simulation calls it many
times); `build_report` adds reading the logs and writing `ab_table.md`, `ab_table.csv`,
`ab_report.json` and `ab_test.png` into the output folder.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ab.arms import CONTROL, arm_key, sorted_arms
from ab.cuped import CupedFit, cuped_adjust
from ab.errors import ABInputError
from ab.events import LogStats, read_events
from ab.metrics import METRICS, UserMetrics, user_metrics
from ab.outputs import write_outputs
from ab.srm import SRMCheck, parse_split, srm_check
from ab.stats import Comparison, compare, holm, mde_pct, users_per_arm

TARGET_EFFECT = 0.05  # the relative effect the power section sizes the experiment for
POWER = 0.8
MIN_ALPHA = 1e-15  # a round floor: below ~2e-16, 1 - alpha / 2 rounds to 1.0 and the CIs and the power are infinite


@dataclass(frozen=True)
class Effect:
    """One row of the course's table (`significant`: this test alone, unadjusted), with the raw and Holm-adjusted
    p-values and Holm's verdict (`significant_holm`, what the plot's colours show) beside it."""

    treatment: str
    metric: str
    control_mean: float
    treatment_mean: float
    effect_pct: float
    lower_pct: float
    upper_pct: float
    significant: bool
    p_value: float
    p_holm: float
    significant_holm: bool
    welch_p_value: float
    control_n: int
    treatment_n: int
    dof: float
    ci_method: str


@dataclass(frozen=True)
class Power:
    """Users per arm a `TARGET_EFFECT` needs, and the smallest effect this test could detect."""

    treatment: str
    metric: str
    users_per_arm: int | None
    mde_pct: float
    users_per_arm_cuped: int | None = None
    mde_pct_cuped: float | None = None


@dataclass
class ABReport:
    experiment: str
    arms: list[str]
    users: dict[str, int]
    sessions: dict[str, int]
    alpha: float
    ci_method: str
    effects: list[Effect]
    srm: SRMCheck
    power: list[Power]
    cuped_effects: list[Effect] = field(default_factory=list)
    cuped_fits: list[CupedFit] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    log_stats: LogStats | None = None
    outputs: dict[str, Path] = field(default_factory=dict)

    @property
    def treatments(self) -> list[str]:
        return [arm for arm in self.arms if arm != CONTROL]

    def effect(self, metric: str, treatment: str = "T1", *, cuped: bool = False) -> Effect:
        """The row of `metric` for `treatment` (CUPED-adjusted when asked and available)."""
        rows = self.cuped_effects if cuped else self.effects
        for row in rows:
            if row.metric == metric and row.treatment == treatment:
                return row
        raise KeyError(f"no {'CUPED ' if cuped else ''}effect for {metric} / {treatment}")

    def to_dict(self) -> dict[str, object]:
        stats = None
        if self.log_stats is not None:
            stats = asdict(self.log_stats)
            stats["experiments_seen"] = sorted(self.log_stats.experiments_seen)
            stats["routed_by"] = sorted(self.log_stats.routed_by)
        return _jsonable(
            {
                "experiment": self.experiment,
                "arms": self.arms,
                "users": self.users,
                "sessions": self.sessions,
                "alpha": self.alpha,
                "ci_method": self.ci_method,
                "multiple_testing": f"Holm over {len(self.effects)} tests (metrics x treatments)",
                "effects": [asdict(e) for e in self.effects],
                "srm": {**asdict(self.srm), "mismatch": self.srm.mismatch},
                "power": {
                    "target_effect_pct": TARGET_EFFECT * 100,
                    "power": POWER,
                    "rows": [asdict(p) for p in self.power],
                },
                "cuped": {
                    "fits": [asdict(f) for f in self.cuped_fits],
                    "effects": [asdict(e) for e in self.cuped_effects],
                }
                if self.cuped_fits
                else None,
                "warnings": self.warnings,
                "logs": stats,
            }
        )


def _jsonable(value: object) -> object:
    """Plain JSON: NaN/inf -> null, numpy scalars -> Python numbers."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def course_order(rows: Sequence[Effect]) -> list[Effect]:
    """The course notebook's order: `sort_values(["metric", "treatment"], ascending=False)`."""
    return sorted(rows, key=lambda row: (row.metric, arm_key(row.treatment)), reverse=True)


def _effects(comparisons: dict[tuple[str, str], Comparison], alpha: float) -> list[Effect]:
    adjusted = holm([c.p_value for c in comparisons.values()])
    rows = [
        Effect(
            treatment=treatment,
            metric=metric,
            control_mean=c.control_mean,
            treatment_mean=c.treatment_mean,
            effect_pct=c.effect_pct,
            lower_pct=c.lower_pct,
            upper_pct=c.upper_pct,
            significant=c.significant,
            p_value=c.p_value,
            p_holm=float(p_holm),
            significant_holm=bool(p_holm < alpha),
            welch_p_value=c.welch_p_value,
            control_n=c.control_n,
            treatment_n=c.treatment_n,
            dof=c.dof,
            ci_method=c.ci_method,
        )
        for ((treatment, metric), c), p_holm in zip(comparisons.items(), adjusted, strict=True)
    ]
    return course_order(rows)


def _compare_all(
    frame: pd.DataFrame, treatments: list[str], alpha: float, ci: str
) -> dict[tuple[str, str], Comparison]:
    by_arm = {arm: part for arm, part in frame.groupby("arm")}
    return {
        (treatment, metric): compare(
            by_arm[CONTROL][metric].to_numpy(),
            by_arm[treatment][metric].to_numpy(),
            alpha=alpha,
            ci=ci,
            metric=metric,
            arms=(CONTROL, treatment),
        )
        for treatment in treatments
        for metric in METRICS
    }


def _variances(frame: pd.DataFrame) -> dict[str, pd.Series]:
    """Each arm's variance of each metric over its users with a finite value (as `compare` counts them)."""
    finite = frame[list(METRICS)].replace([np.inf, -np.inf], np.nan)
    return {arm: part.var() for arm, part in finite.groupby(frame["arm"])}


def analyze(
    users: pd.DataFrame,
    experiment: str,
    *,
    alpha: float = 0.05,
    ci: str = "delta",
    split: str | None = None,
    pre: pd.DataFrame | None = None,
) -> ABReport:
    """Every treatment vs `C` on every metric of `users` (index: user; columns: `arm` + METRICS).

    `pre`: the same metrics from a pre-experiment period (index: user) for CUPED.
    """
    if not MIN_ALPHA <= alpha < 1.0:
        raise ABInputError(f"alpha must be in [{MIN_ALPHA:g}, 1), got {alpha}")
    frame = users[users["arm"].notna()]
    arms = sorted_arms(frame["arm"].astype(str))
    if not arms:
        raise ABInputError(f"no user of experiment {experiment} has an ended session")
    if CONTROL not in arms:
        raise ABInputError(
            f"experiment {experiment} has no control arm '{CONTROL}' (arms in the logs: {', '.join(arms)})"
        )
    treatments = [arm for arm in arms if arm != CONTROL]
    if not treatments:
        raise ABInputError(f"experiment {experiment} has only the control arm '{CONTROL}': nothing to compare")
    counts = frame.groupby("arm")["sessions"].agg(["size", "sum"])
    users_per_arm_ = {arm: int(counts.loc[arm, "size"]) for arm in arms}
    srm = srm_check(users_per_arm_, parse_split(split, arms) if split else None)
    comparisons = _compare_all(frame, treatments, alpha, ci)
    report = ABReport(
        experiment=experiment,
        arms=arms,
        users=users_per_arm_,
        sessions={arm: int(counts.loc[arm, "sum"]) for arm in arms},
        alpha=alpha,
        ci_method=ci,
        effects=_effects(comparisons, alpha),
        srm=srm,
        power=[],
    )
    if srm.mismatch:
        report.warnings.append(f"warning: {srm.line()}: the split is not the design's, do not trust the effects")
    cuped_var: dict[str, pd.Series] = {}
    if pre is not None:
        adjusted = _cuped(frame, pre, report)
        report.cuped_effects = _effects(_compare_all(adjusted, treatments, alpha, ci), alpha)
        cuped_var = _variances(adjusted)
    raw_var = _variances(frame)
    report.power = [
        _power(treatment, metric, c, raw_var, cuped_var, alpha) for (treatment, metric), c in comparisons.items()
    ]
    return report


def _cuped(frame: pd.DataFrame, pre: pd.DataFrame, report: ABReport) -> pd.DataFrame:
    """Every metric adjusted by its pre-period value; the fits (and a coverage warning) go to `report`."""
    adjusted = frame.copy()
    for metric in METRICS:
        adjusted[metric], fit = cuped_adjust(frame[metric], pre[metric], frame["arm"], metric)
        report.cuped_fits.append(fit)
    covered = max(fit.covered_users for fit in report.cuped_fits)
    if covered < 0.5 * len(frame):
        report.warnings.append(
            f"warning: only {covered:,} of {len(frame):,} users have pre-period data; CUPED adjusts only them"
        )
    return adjusted


def _power(
    treatment: str,
    metric: str,
    c: Comparison,
    raw: dict[str, pd.Series],
    cuped: dict[str, pd.Series],
    alpha: float,
) -> Power:
    """Users per arm for TARGET_EFFECT and today's MDE, from the arms' variances (raw, and CUPED's if any)."""
    values: dict[str, float | int | None] = {}
    for suffix, variances in (("", raw), ("_cuped", cuped)):
        if variances:
            vc, vt = float(variances[CONTROL][metric]), float(variances[treatment][metric])
            values[f"users_per_arm{suffix}"] = users_per_arm(
                vc, vt, c.control_mean, effect=TARGET_EFFECT, alpha=alpha, power=POWER
            )
            values[f"mde_pct{suffix}"] = mde_pct(
                vc, c.control_n, vt, c.treatment_n, c.control_mean, alpha=alpha, power=POWER
            )
    return Power(treatment=treatment, metric=metric, **values)  # type: ignore[arg-type]


def _check_read(stats: LogStats, experiment: str | None, paths: Sequence[Path | str]) -> None:
    where = ", ".join(str(p) for p in paths)
    if stats.lines == 0 and stats.malformed == 0:
        raise ABInputError(f"the logs are empty: no event in {where}")
    if stats.events == 0 and stats.routed_elsewhere > 0:
        routed = ", ".join(sorted(stats.routed_by))
        raise ABInputError(f"no event in {where} was served under experiment {experiment} (the service ran: {routed})")
    if stats.events == 0 and stats.without_experiment > 0:
        seen = ", ".join(sorted(stats.experiments_seen)) or "none"
        raise ABInputError(f"no event in {where} carries experiment {experiment} (experiments in the logs: {seen})")
    if stats.events == 0:
        example = f", e.g. {stats.examples[0]}" if stats.examples else ""
        raise ABInputError(f"no valid event in {where}: {stats.malformed:,} malformed line(s){example}")


def _read(paths: Sequence[Path | str], experiment: str | None, progress: bool) -> tuple[pd.DataFrame, LogStats]:
    events, stats = read_events(paths, experiment, progress=progress)
    _check_read(stats, experiment, paths)
    return events, stats


def _users(events: pd.DataFrame, paths: Sequence[Path | str]) -> UserMetrics:
    metrics = user_metrics(events)
    if metrics.frame.empty:
        where = ", ".join(str(p) for p in paths)
        raise ABInputError(f"no session in {where} ever ended (no 'last' event)")
    return metrics


def _pre_period(paths: Sequence[Path | str], started: float, progress: bool) -> tuple[pd.DataFrame, int]:
    """Users' metrics from the `--pre-logs` events before the experiment's first event, and how many events were
    left out for coming later (a folder overlapping the test would put the treatment's effect into the covariate,
    and CUPED would subtract part of it)."""
    events, _ = _read(paths, None, progress)
    during = events["timestamp"].to_numpy() >= started
    if during.all():
        where = ", ".join(str(p) for p in paths)
        raise ABInputError(f"--pre-logs {where}: no event before the experiment's first one, nothing to adjust by")
    return _users(events[~during], paths).frame, int(during.sum())


def build_report(
    logs: Sequence[Path | str] | Path | str,
    experiment: str = "HW_2",
    out: Path | str | None = None,
    *,
    pre_logs: Sequence[Path | str] | None = None,
    alpha: float = 0.05,
    ci: str = "delta",
    split: str | None = None,
    title: str | None = None,
    progress: bool = False,
) -> ABReport:
    """Read the logs, analyse `experiment`, and (with `out`) write the table, JSON and plot there."""
    logs = [logs] if isinstance(logs, str | Path) else list(logs)
    events, stats = _read(logs, experiment, progress)
    metrics = _users(events, logs)
    ended = set(metrics.frame["arm"].dropna().astype(str))
    unseen = sorted_arms(set(events["arm"].dropna().astype(str)) - ended)
    if CONTROL in unseen or (unseen and ended <= {CONTROL}):  # analyze would say the arm is not in the logs
        raise ABInputError(
            f"arm(s) {', '.join(unseen)} of experiment {experiment} logged events but never ended a session: "
            "too few arms left to compare"
        )
    pre, pre_left_out = None, 0
    if pre_logs:
        pre, pre_left_out = _pre_period(pre_logs, float(events["timestamp"].min()), progress)
    report = analyze(metrics.frame, experiment, alpha=alpha, ci=ci, split=split, pre=pre)
    report.log_stats = stats
    if unseen:  # e.g. an arm whose recommender crashed: it served listens, but no session of it ended
        report.warnings.append(
            f"warning: arm(s) {', '.join(unseen)} logged events but no ended session: absent from the table and "
            "from the sample-ratio check, which cannot see a missing arm unless --split names it"
        )
    if pre_left_out:
        report.warnings.append(
            f"note: {pre_left_out:,} --pre-logs event(s) at or after the experiment's start were left out of CUPED's "
            "pre-period"
        )
    if stats.malformed:
        report.warnings.append(f"warning: skipped {stats.malformed:,} malformed log line(s), e.g. {stats.examples[0]}")
    if stats.copies:
        report.warnings.append(
            f"warning: {len(stats.copies):,} log file(s) repeat lines of another (the same log collected twice?), "
            f"e.g. {stats.copies[0]}"
        )
    if stats.routed_elsewhere:
        others = ", ".join(sorted(stats.routed_by - {experiment}))
        report.warnings.append(
            f"note: {stats.routed_elsewhere:,} event(s) served under another experiment ({others}) were left out"
        )
    if metrics.open_session_events:
        report.warnings.append(
            f"note: {metrics.open_session_events:,} event(s) of sessions that never ended were left out"
        )
    if metrics.mixed_arm_users:
        report.warnings.append(
            f"warning: {metrics.mixed_arm_users:,} user(s) appear in more than one arm and were left out"
        )
    if out is not None:
        report.outputs = write_outputs(report, Path(out), title=title)
    return report
