"""Writing a report's files into one folder: table (Markdown, CSV), all numbers (JSON), plot (PNG)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from ab.plot import plot_effects
from ab.table import effects_frame, render_markdown

if TYPE_CHECKING:
    from ab.report import ABReport


OUTPUTS = {  # every file a report may write, by kind
    "markdown": "ab_table.md",
    "csv": "ab_table.csv",
    "json": "ab_report.json",
    "plot": "ab_test.png",
    "plot_cuped": "ab_test_cuped.png",  # only with CUPED
}


def write_outputs(report: ABReport, out: Path, *, title: str | None = None) -> dict[str, Path]:
    """`ab_table.md`, `ab_table.csv`, `ab_report.json`, `ab_test.png` (+ `ab_test_cuped.png` with CUPED)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {kind: out / name for kind, name in OUTPUTS.items() if kind != "plot_cuped"}
    paths["markdown"].write_text(render_markdown(report, title))
    effects_frame(report.effects).to_csv(paths["csv"], index=False)
    paths["json"].write_text(json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n")
    plot_effects(report, paths["plot"], title=title)
    if report.cuped_effects:
        paths["plot_cuped"] = plot_effects(report, out / OUTPUTS["plot_cuped"], cuped=True, title=title)
    else:  # an earlier report's in the same folder would pass for this one's
        (out / OUTPUTS["plot_cuped"]).unlink(missing_ok=True)
    return paths
