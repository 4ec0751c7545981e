"""The offline report: a Markdown table + JSON of validation metrics, and the learning-curve plot."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen before pyplot loads)

from models.atomic import AtomicFiles, joined, write_text  # noqa: E402
from models.training import Epoch  # noqa: E402

METRIC_COLUMNS = (
    ("precision", "precision@{k}"),
    ("recall", "recall@{k}"),
    ("ndcg", "NDCG@{k}"),
    ("coverage", "coverage@{k}"),
)


def markdown_table(models: Mapping[str, Mapping[str, Any]], k: int) -> str:
    """One row per model: its validation metrics, best epoch and training speed when it has them."""
    header = ["model", *(title.format(k=k) for _, title in METRIC_COLUMNS), "best epoch", "fit s/epoch"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, row in models.items():
        cells = [name, *(f"{row[key]:.4f}" for key, _ in METRIC_COLUMNS)]
        cells.append(str(row["best_epoch"]) if "best_epoch" in row else "")
        cells.append(f"{row['fit_seconds_per_epoch']:.2f}" if "fit_seconds_per_epoch" in row else "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def markdown(report: Mapping[str, Any]) -> str:
    """The whole report.md: data, parameters, metrics table, timings."""
    data, timings = report["data"], report["timings"]
    parts = [
        "# LightFM offline report\n",
        f"Validation split: {data['split']}. Tuning and early stopping watch {data['monitored_users']} validation "
        f"users after every epoch; the table scores {data['eval_users']} others, held out from every choice. "
        f"Metrics at k={report['k']} rank every catalog track except the user's training positives.\n",
        markdown_table(report["models"], report["k"]),
        "## Data\n",
        f"- log lines: {data['lines']} in {data['files']} files, malformed skipped: {data['bad_lines']}",
        f"- listens: {data['listens']}, with time >= {data['min_time']}: {data['positive_listens']}; "
        f"distinct (user, track) positives after the >= {data['min_positives']}-positives filter: "
        f"{data['train'] + data['valid']} (train {data['train']}, validation {data['valid']})",
        f"- users: {data['users']}, catalog tracks: {data['tracks']}, item feature groups: "
        f"{', '.join(data['feature_groups']) or 'none'} (+ identity)\n",
        "## Parameters (Optuna's best per model)\n" if report["tuning"] else "## Parameters\n",
        *(
            f"- {name}: trials finished {t['finished_trials']} (pruned {t['pruned_trials']}, new in this run "
            f"{t['new_trials']}), best validation precision@{report['k']} {t['value']:.4f} at epoch {t['best_epoch']}"
            for name, t in report["tuning"].items()
        ),
        "",
        "```json\n" + json.dumps(report["params"], indent=2) + "\n```\n",
        "## Timings (seconds)\n",
        *(f"- {name}: {value:.2f}" for name, value in timings.items()),
        "",
    ]
    return "\n".join(parts)


def write_report(out_dir: Path, report: Mapping[str, Any], files: AtomicFiles | None = None) -> None:
    """report.json (everything) and report.md (for people), replaced together (with `files`: when they are)."""
    with joined(files) as into:
        write_text(out_dir / "report.json", json.dumps(report, indent=2) + "\n", into)
        write_text(out_dir / "report.md", markdown(report), into)


def plot_learning_curves(
    curves: Mapping[str, list[Epoch]],
    baselines: Mapping[str, float],
    path: Path,
    users: int,
    k: int = 10,
    files: AtomicFiles | None = None,
) -> None:
    """Validation precision per epoch for each trained model, baselines as horizontal lines (written atomically;
    with `files`: renamed when they are)."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, curve in curves.items():
        points = [(e.epoch, e.metrics.precision) for e in curve if e.metrics is not None]
        if points:
            ax.plot(*zip(*points, strict=True), marker="o", label=name)
    for name, value in baselines.items():
        ax.axhline(value, linestyle="--", color="grey", label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"validation precision@{k} ({users} users)")
    ax.set_title("LightFM learning curve")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    try:
        with joined(files) as into:
            fig.savefig(into.path(path), format="png", dpi=100)
    finally:
        plt.close(fig)
