"""Writing a report's files into one folder: table (Markdown, CSV), all numbers (JSON), plot (PNG).

The files are written to temporary names beside their own and renamed only once all are complete, so a report that
fails leaves the earlier one's files as they were (never this report's table beside the earlier one's plot).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from ab.plot import plot_effects
from ab.table import effects_frame, render_markdown
from models.atomic import atomic_files

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
    """`ab_table.md`, `ab_table.csv`, `ab_report.json`, `ab_test.png` (+ `ab_test_cuped.png` with CUPED), all or none;
    an earlier report's CUPED plot goes once this report without one is in place (it would pass for this one's)."""
    paths = {kind: out / name for kind, name in OUTPUTS.items() if kind != "plot_cuped" or report.cuped_effects}
    with atomic_files() as files:  # renamed together once all are written; a folder in the way stops it before
        tmp = {kind: files.path(path) for kind, path in paths.items()}
        tmp["markdown"].write_text(render_markdown(report, title))
        effects_frame(report.effects).to_csv(tmp["csv"], index=False)
        tmp["json"].write_text(json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n")
        plot_effects(report, tmp["plot"], title=title)
        if "plot_cuped" in tmp:
            plot_effects(report, tmp["plot_cuped"], cuped=True, title=title)
    if "plot_cuped" not in paths:
        (out / OUTPUTS["plot_cuped"]).unlink(missing_ok=True)
    return paths
