"""Writing a report's files into one folder: table (Markdown, CSV), all numbers (JSON), plot (PNG)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from ab.plot import plot_effects
from ab.table import effects_frame, render_markdown

if TYPE_CHECKING:
    from ab.report import ABReport


def write_outputs(report: ABReport, out: Path, *, title: str | None = None) -> dict[str, Path]:
    """`ab_table.md`, `ab_table.csv`, `ab_report.json`, `ab_test.png` (+ `ab_test_cuped.png` with CUPED)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "markdown": out / "ab_table.md",
        "csv": out / "ab_table.csv",
        "json": out / "ab_report.json",
        "plot": out / "ab_test.png",
    }
    paths["markdown"].write_text(render_markdown(report, title))
    effects_frame(report.effects).to_csv(paths["csv"], index=False)
    paths["json"].write_text(json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n")
    plot_effects(report, paths["plot"], title=title)
    if report.cuped_effects:
        paths["plot_cuped"] = plot_effects(report, out / "ab_test_cuped.png", cuped=True, title=title)
    return paths
