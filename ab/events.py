"""Reading botify event logs (JSON lines, DESIGN.md) into one events table.

A log is a set of folders; every non-hidden file under them is part of it (one file per
service worker, rotated ones such as `events.jsonl.1`, optionally gzipped). A line that is
not a valid event is counted and skipped, never guessed at: the analysis says how many.
"""

from __future__ import annotations

import gzip
import json
import math
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd
from tqdm import tqdm

from ab.errors import ABInputError

EVENT_COLUMNS = ("user", "timestamp", "message", "track", "time", "latency", "arm")
MESSAGES = frozenset({"next", "last"})


@dataclass
class LogStats:
    """What was read: how many files and lines, how many were skipped and why (a few examples)."""

    files: int = 0
    lines: int = 0
    events: int = 0
    malformed: int = 0
    without_experiment: int = 0
    experiments_seen: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def skip(self, where: str, reason: str) -> None:
        self.malformed += 1
        if len(self.examples) < 5:
            self.examples.append(f"{where}: {reason}")


def log_files(paths: Iterable[Path | str]) -> list[Path]:
    """Every non-hidden regular file under the given folders (or the files themselves), sorted."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files.extend(
                sorted(
                    p
                    for p in path.rglob("*")
                    if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
                )
            )
        else:
            raise ABInputError(f"log path does not exist: {path}")
    return files


def _open(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return path.open(encoding="utf-8", errors="replace")


def _number(value: object) -> float | None:
    """A finite JSON number (bools are not numbers here), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _integer(value: object) -> int | None:
    number = _number(value)
    return int(number) if number is not None and number == int(number) else None


def parse_event(line: str) -> tuple[dict[str, object] | None, str]:
    """One log line -> (event fields, "") or (None, why it is not an event)."""
    try:
        raw = json.loads(line)
    except json.JSONDecodeError:
        return None, "not JSON"
    if not isinstance(raw, dict):
        return None, "not a JSON object"
    message = raw.get("message")
    if message not in MESSAGES:
        return None, f"message is {message!r}, not 'next' or 'last'"
    user, track = _integer(raw.get("user")), _integer(raw.get("track"))
    timestamp = _number(raw.get("timestamp"))
    time, latency = _number(raw.get("time")), _number(raw.get("latency"))
    for name, value in (("user", user), ("track", track), ("timestamp", timestamp)):
        if value is None:
            return None, f"{name} is missing or not a number"
    if time is None or not 0.0 <= time <= 1.0:
        return None, "time is missing or outside [0, 1]"
    if latency is None or latency < 0:
        return None, "latency is missing or negative"
    experiments = raw.get("experiments", {})
    if not isinstance(experiments, dict):
        return None, "experiments is not an object"
    event = {"user": user, "timestamp": timestamp, "message": message, "track": track, "time": time,
             "latency": latency, "experiments": experiments}
    return event, ""


def _lines(files: list[Path], progress: bool) -> Iterator[tuple[str, str]]:
    total = sum(f.stat().st_size for f in files)
    with tqdm(total=total, unit="B", unit_scale=True, desc="reading logs", disable=not progress) as bar:
        for path in files:
            with _open(path) as handle:
                for number, line in enumerate(handle, start=1):
                    bar.update(len(line))
                    yield f"{path.name}:{number}", line


def read_events(
    paths: Iterable[Path | str], experiment: str | None = None, *, progress: bool = False
) -> tuple[pd.DataFrame, LogStats]:
    """All valid events of the logs, with the user's arm in `experiment` (None: arm column is empty).

    Events that do not carry `experiment` are not part of it (users outside its coverage)
    and are left out; they are counted in `LogStats.without_experiment`.
    """
    files = log_files(paths)
    stats = LogStats(files=len(files))
    columns: dict[str, list[object]] = {name: [] for name in EVENT_COLUMNS}
    for where, line in _lines(files, progress):
        if not line.strip():
            continue
        stats.lines += 1
        event, reason = parse_event(line)
        if event is None:
            stats.skip(where, reason)
            continue
        experiments = event.pop("experiments")
        stats.experiments_seen.update(str(name) for name in experiments)  # type: ignore[union-attr]
        arm = None
        if experiment is not None:
            arm = experiments.get(experiment)  # type: ignore[union-attr]
            if not isinstance(arm, str):
                stats.without_experiment += 1
                continue
        event["arm"] = arm
        for name in EVENT_COLUMNS:
            columns[name].append(event[name])
    stats.events = len(columns["user"])
    return events_frame(columns), stats


def events_frame(columns: dict[str, list[object]] | dict[str, np.ndarray]) -> pd.DataFrame:
    """The events table with its canonical dtypes (shared by the reader and the synthetic generator)."""
    return pd.DataFrame(
        {
            "user": np.asarray(columns["user"], dtype=np.int64),
            "timestamp": np.asarray(columns["timestamp"], dtype=np.float64),
            "message": pd.Categorical(columns["message"], categories=sorted(MESSAGES)),
            "track": np.asarray(columns["track"], dtype=np.int64),
            "time": np.asarray(columns["time"], dtype=np.float64),
            "latency": np.asarray(columns["latency"], dtype=np.float64),
            "arm": pd.array(columns["arm"], dtype="string"),
        }
    )
