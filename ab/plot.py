"""`ab_test.png`: each metric's relative effect with its CI, one panel per metric, one bar per treatment.

The colours are Holm's verdict over the report's tests (metrics x treatments): green significantly better, red
significantly worse (up is better, but for latency), grey not significant; a hollow grey dot is significant only
before Holm (one test alone, the table's `significant`). Panels keep their own x scale so a +100% latency change
does not flatten a +3% time change.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import PercentFormatter  # noqa: E402

from ab.metrics import LOWER_IS_BETTER, METRICS  # noqa: E402
from ab.table import headline  # noqa: E402

if TYPE_CHECKING:
    from ab.report import ABReport, Effect

BETTER, WORSE, FLAT = "#1a9641", "#d7191c", "#8c8c8c"
KEY_INCHES = 0.4  # the key's two lines at the bottom


def effect_color(effect: Effect) -> str:
    """Green (better) or red (worse) when significant after Holm, grey otherwise: over many rows, some pass
    p < alpha by chance. Better is up, but for LOWER_IS_BETTER metrics (latency): a slower service is no win."""
    if not effect.significant_holm:
        return FLAT
    up = effect.treatment_mean > effect.control_mean  # also when a zero control mean has no %
    return BETTER if up != (effect.metric in LOWER_IS_BETTER) else WORSE


def marker_face(effect: Effect) -> str:
    """Hollow (white) when significant only before Holm, else filled in the effect's colour."""
    return "white" if effect.significant and not effect.significant_holm else effect_color(effect)


def effect_label(effect: Effect) -> str:
    """The effect and its CI in %, or the means where there is no % effect (a control mean of 0)."""
    if not math.isfinite(effect.effect_pct):
        return f"n/a: control mean {effect.control_mean:.4g}, treatment {effect.treatment_mean:.4g}"
    return f"{effect.effect_pct:+.2f}%  [{effect.lower_pct:+.2f}, {effect.upper_pct:+.2f}]"


def legend(report: ABReport) -> str:
    """The plot's key: which verdict the colours show."""
    return (
        f"after Holm over {len(report.effects)} tests: green significantly better, red significantly worse "
        f"({', '.join(sorted(LOWER_IS_BETTER))}: lower is better),\ngrey not significant (hollow: p < {report.alpha:g} "
        "before Holm only)"
    )


def plot_title(experiment: str, title: str | None, cuped: bool) -> str:
    """The plot's title: the caller's or the experiment's, marked when the effects are CUPED-adjusted."""
    return (title or f"A/B test {experiment}") + (" (CUPED)" if cuped else "")


def plot_effects(report: ABReport, path: Path, *, cuped: bool = False, title: str | None = None) -> Path:
    """Write the forest plot of `report`'s effects (CUPED-adjusted ones with `cuped=True`) to `path`."""
    effects = report.cuped_effects if cuped else report.effects
    metrics = [m for m in METRICS if any(e.metric == m for e in effects)]
    treatments = report.treatments
    height = 0.55 + 0.42 * len(treatments)
    fig, axes = plt.subplots(len(metrics), 1, figsize=(10, 1.5 + height * len(metrics)), squeeze=False)
    for ax, metric in zip(axes[:, 0], metrics, strict=True):
        rows = sorted((e for e in effects if e.metric == metric), key=lambda e: treatments.index(e.treatment))
        for y, e in enumerate(reversed(rows)):
            color = effect_color(e)
            if math.isfinite(e.effect_pct):
                ax.errorbar(
                    e.effect_pct,
                    y,
                    xerr=[[e.effect_pct - e.lower_pct], [e.upper_pct - e.effect_pct]],
                    fmt="o",
                    color=color,
                    ecolor=color,
                    elinewidth=3,
                    capsize=5,
                    markersize=7,
                    markerfacecolor=marker_face(e),
                )
            ax.annotate(
                effect_label(e),
                (1.02, y),
                xycoords=("axes fraction", "data"),
                va="center",
                fontsize=10,
                color=color,
            )
        ax.axvline(0.0, color="black", linewidth=1)
        ax.set_yticks(range(len(rows)), [e.treatment for e in reversed(rows)])
        ax.set_ylim(-0.7, len(rows) - 0.3)
        ax.set_title(metric, loc="left", fontsize=11, fontweight="bold")
        ax.grid(axis="x", alpha=0.3)
        ax.xaxis.set_major_formatter(PercentFormatter(decimals=None))
        ax.margins(x=0.08)
        left, right = ax.get_xlim()
        ax.set_xlim(min(left, -0.05 * (right - left)), max(right, 0.05 * (right - left)))
    axes[-1, 0].set_xlabel(f"effect vs C, % of the control mean ({1 - report.alpha:.0%} CI)")
    fig.suptitle(  # the caller's text as it is: a `$` would start TeX math, and an unmatched one fail the plot
        f"{plot_title(report.experiment, title, cuped)}\n{headline(report)}", fontsize=12, parse_math=False
    )
    fig.text(
        0.5,
        0.005,
        legend(report),
        ha="center",
        va="bottom",
        fontsize=9,
        color=FLAT,
    )
    fig.tight_layout(rect=(0, KEY_INCHES / fig.get_figheight(), 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, format="png")  # `path` may be a temporary name without .png
    plt.close(fig)
    return path
