"""The report as text: the course's table (Markdown for people, CSV for programs) and its notes."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pandas as pd

from ab.arms import CONTROL

if TYPE_CHECKING:
    from ab.report import ABReport, Effect

# The course notebook's columns, then what this report adds.
COLUMNS = ("treatment", "metric", "effect", "upper", "lower", "control_mean", "treatment_mean", "significant")
EXTRA_COLUMNS = (
    "p_value",
    "p_holm",
    "significant_holm",
    "welch_p_value",
    "control_n",
    "treatment_n",
    "dof",
    "ci_method",
)
CI_NAMES = {
    "delta": "delta method (accounts for the control mean's variance)",
    "course": "course's Welch CI divided by the control mean",  # after "by the"
}


def _pct(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:+.2f}%"


def _num(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.4g}"


def _mde(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.2f}%"


def _p(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.2g}" if value >= 1e-4 else "<1e-4"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _markdown(header: list[str], rows: list[list[str]], align: str) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def effects_frame(effects: list[Effect]) -> pd.DataFrame:
    """The effects as the CSV holds them: the course's columns first, numbers unrounded."""
    records = [
        {
            "treatment": e.treatment,
            "metric": e.metric,
            "effect": e.effect_pct,
            "upper": e.upper_pct,
            "lower": e.lower_pct,
            "control_mean": e.control_mean,
            "treatment_mean": e.treatment_mean,
            "significant": e.significant,
            "p_value": e.p_value,
            "p_holm": e.p_holm,
            "significant_holm": e.significant_holm,
            "welch_p_value": e.welch_p_value,
            "control_n": e.control_n,
            "treatment_n": e.treatment_n,
            "dof": e.dof,
            "ci_method": e.ci_method,
        }
        for e in effects
    ]
    return pd.DataFrame.from_records(records, columns=[*COLUMNS, *EXTRA_COLUMNS])


VERDICT_COLUMNS = ("significant", "p_value", "p_holm", "significant_holm")  # closing both effect tables
VERDICT_ALIGN = "lrrl"


def _verdict(e: Effect) -> list[str]:
    """The VERDICT_COLUMNS of an effect's row."""
    return [_yes(e.significant), _p(e.p_value), _p(e.p_holm), _yes(e.significant_holm)]


def _effect_rows(effects: list[Effect]) -> list[list[str]]:
    return [
        [
            e.treatment,
            e.metric,
            _pct(e.effect_pct),
            _pct(e.upper_pct),
            _pct(e.lower_pct),
            _num(e.control_mean),
            _num(e.treatment_mean),
            *_verdict(e),
        ]
        for e in effects
    ]


def headline(report: ABReport) -> str:
    """`HW_2: 2,000 users (C 1,003 / T1 997), 6,012 sessions` — the plot's title says the same."""
    per_arm = " / ".join(f"{arm} {report.users[arm]:,}" for arm in report.arms)
    return (
        f"{report.experiment}: {sum(report.users.values()):,} users ({per_arm}), "
        f"{sum(report.sessions.values()):,} sessions"
    )


def render_markdown(report: ABReport, title: str | None = None) -> str:
    """The whole report as Markdown (also what the CLI prints)."""
    confidence = f"{1 - report.alpha:.0%}"
    lines = [
        f"# {title or f'A/B test {report.experiment}'}",
        "",
        headline(report) + ".",
        f"Every treatment vs `{CONTROL}`: Welch's t-test; {confidence} CI of the relative effect by the "
        f"{CI_NAMES[report.ci_method]}, and `p_value` from the test that CI inverts (so `significant` and "
        f"p < {report.alpha:g} agree; scipy's Welch p-value is `welch_p_value` in the CSV); Holm's correction over "
        f"{len(report.effects)} tests (`p_holm`). `significant` is each test alone, unadjusted (the course's "
        f"column); `significant_holm` is after Holm (`p_holm` < {report.alpha:g}), the verdict the plot's colours "
        "show. Rows in the course's order; mean_request_latency in ms per request (`/next` and `/last`).",
        "",
        report.srm.line() + ("  **<- the split is broken: do not trust the effects**" if report.srm.mismatch else ""),
        "",
    ]
    header = [
        "treatment",
        "metric",
        "effect",
        "upper",
        "lower",
        "control_mean",
        "treatment_mean",
        *VERDICT_COLUMNS,
    ]
    lines += _markdown(header, _effect_rows(report.effects), "llrrrrr" + VERDICT_ALIGN)
    if report.cuped_fits:
        fits = {fit.metric: fit for fit in report.cuped_fits}
        covered = max(fit.covered_users for fit in report.cuped_fits)
        lines += [
            "",
            "## CUPED (adjusted by each metric's pre-period value)",
            "",
            f"{covered:,} of {sum(report.users.values()):,} users have pre-period sessions.",
            "",
        ]
        rows = [
            [
                e.treatment,
                e.metric,
                f"{fits[e.metric].variance_reduction:.1%}",
                _pct(e.effect_pct),
                _pct(e.upper_pct),
                _pct(e.lower_pct),
                *_verdict(e),
            ]
            for e in report.cuped_effects
        ]
        header = [
            "treatment",
            "metric",
            "variance reduction",
            "effect",
            "upper",
            "lower",
            *VERDICT_COLUMNS,
        ]
        lines += _markdown(header, rows, "llrrrr" + VERDICT_ALIGN)
    lines += ["", f"## Power: users per arm to detect a 5% effect (alpha {report.alpha:g}, power 80%)", ""]
    cuped = bool(report.cuped_fits)
    header = ["treatment", "metric", "users per arm", "MDE now"] + (
        ["users per arm with CUPED", "MDE with CUPED"] if cuped else []
    )
    order = {(e.treatment, e.metric): i for i, e in enumerate(report.effects)}
    rows = []
    for p in sorted(report.power, key=lambda p: order[(p.treatment, p.metric)]):
        row = [p.treatment, p.metric, _count(p.users_per_arm), _mde(p.mde_pct)]
        if cuped:
            row += [_count(p.users_per_arm_cuped), _mde(p.mde_pct_cuped)]
        rows.append(row)
    lines += _markdown(header, rows, "llrrrr" if cuped else "llrr")
    if report.warnings:
        lines += ["", *[f"- {w}" for w in report.warnings]]
    return "\n".join(lines) + "\n"


def _count(value: int | None) -> str:
    return "n/a" if value is None else f"{value:,}"
