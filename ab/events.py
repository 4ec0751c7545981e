"""Reading botify event logs (JSON lines, README "Event log") into one events table.

A log is a set of folders; every non-hidden file under them is part of it (one file per
service worker, rotated ones such as `events.jsonl.1`, optionally gzipped). A line that is
not a valid event is counted and skipped, never guessed at: the analysis says how many.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from ab.errors import ABInputError
from botify import event_log
from botify.event_log import LogReading

EVENT_COLUMNS = ("user", "timestamp", "message", "track", "time", "latency", "recommendation", "arm")
UNKNOWN = -1  # the `recommendation` of a `last`, or of a `next` in a log that lacks it; a `source` not known
MESSAGES = event_log.MESSAGES


@dataclass
class LogStats:
    """What was read: how many files and lines, how many were skipped and why (a few examples)."""

    files: int = 0
    lines: int = 0
    events: int = 0
    malformed: int = 0
    without_experiment: int = 0
    routed_elsewhere: int = 0
    experiments_seen: set[str] = field(default_factory=set)
    routed_by: set[str] = field(default_factory=set)
    examples: list[str] = field(default_factory=list)
    copies: list[str] = field(default_factory=list)  # files whose first lines repeat another's: read once


def log_files(paths: Iterable[Path | str]) -> list[Path]:
    """Every file of the logs (see `botify.event_log.log_files`); a missing path is a one-line input error."""
    try:
        return event_log.log_files(paths)
    except FileNotFoundError as error:
        raise ABInputError(str(error)) from None


def read_events(
    paths: Iterable[Path | str], experiment: str | None = None, *, progress: bool = False
) -> tuple[pd.DataFrame, LogStats]:
    """All valid events of the logs, with the user's arm in `experiment` (None: arm column is empty).

    Events that do not carry `experiment` are not part of it (users outside its coverage)
    and are left out; they are counted in `LogStats.without_experiment`. So are events another
    experiment routed (a log folder holding several days): every event carries every experiment's
    arm, but only those the service served under `experiment` measure it (`LogStats.routed_elsewhere`;
    logs that do not say which experiment routed them are taken whole).
    """
    files = log_files(paths)
    stats = LogStats(files=len(files))
    rows: list[tuple] = []
    recommendations: list[int] = []
    arms: list[str | None] = []
    sources: list[int] = []  # the file each event comes from: one worker writes a file, in the order it served
    seen = stats.experiments_seen
    reading = LogReading()
    total = event_log.bytes_on_disk(files)
    with tqdm(total=total, unit="B", unit_scale=True, desc="reading logs", disable=not progress) as bar:
        for source, event in ((s, e) for s, path in enumerate(files) for e in reading.events([path], bar.update)):
            seen.update(event.experiments)
            if event.experiment is not None:
                stats.routed_by.add(event.experiment)
            arm = None
            if experiment is not None:
                if event.experiment is not None and event.experiment != experiment:
                    stats.routed_elsewhere += 1
                    continue
                arm = event.experiments.get(experiment)
                if type(arm) is not str:
                    stats.without_experiment += 1
                    continue
            rows.append(event[:6])  # the first six fields of an Event are EVENT_COLUMNS' first six
            recommendations.append(UNKNOWN if event.recommendation is None else event.recommendation)
            arms.append(arm)
            sources.append(source)
    stats.lines, stats.malformed, stats.examples = reading.lines, reading.skipped, reading.examples
    stats.copies = reading.copies
    stats.events = len(rows)
    fields = EVENT_COLUMNS[:6]
    values = list(zip(*rows, strict=True)) if rows else [() for _ in fields]
    columns = dict(zip(fields, values, strict=True))
    return events_frame({**columns, "recommendation": recommendations, "arm": arms, "source": sources}), stats


def events_frame(columns: dict[str, list[object]] | dict[str, np.ndarray]) -> pd.DataFrame:
    """The events table with its canonical dtypes (shared by the reader and the synthetic generator), in the
    order the logs were read; without a `recommendation` column, every recommendation is UNKNOWN, and without a
    `source` (the file an event was read from), every source."""
    recommendation = columns.get("recommendation")
    if recommendation is None:
        recommendation = np.full(len(columns["user"]), UNKNOWN)
    source = columns.get("source")
    if source is None:
        source = np.full(len(columns["user"]), UNKNOWN)
    return pd.DataFrame(
        {
            "user": np.asarray(columns["user"], dtype=np.int64),
            "timestamp": np.asarray(columns["timestamp"], dtype=np.float64),
            "message": pd.Categorical(columns["message"], categories=sorted(MESSAGES)),
            "track": np.asarray(columns["track"], dtype=np.int64),
            "time": np.asarray(columns["time"], dtype=np.float64),
            "latency": np.asarray(columns["latency"], dtype=np.float64),
            "recommendation": np.asarray(recommendation, dtype=np.int64),
            "arm": pd.array(columns["arm"], dtype="string"),
            "source": np.asarray(source, dtype=np.int64),
        }
    )
