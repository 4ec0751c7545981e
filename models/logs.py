"""Botify event logs -> listens: one (user, track, time, timestamp) per well-formed log line.

Both `next` and `last` lines say "the user listened to `track` for fraction `time`", so every
valid line is one listen. A log folder may hold rotated files (`*.jsonl`, `*.jsonl.1`, `*.gz`):
every regular file in it is read (hidden ones excepted). Lines that are empty or malformed are counted and skipped.
"""

from __future__ import annotations

import logging
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from botify import event_log
from models.errors import InputError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Listens:
    """Column arrays of valid listens plus how many lines were read and skipped."""

    user: np.ndarray  # int64
    track: np.ndarray  # int64
    time: np.ndarray  # float64, fraction of the track listened, in [0, 1]
    timestamp: np.ndarray  # int64, milliseconds
    lines: int
    bad_lines: int
    files: int

    def __len__(self) -> int:
        return len(self.user)


def log_files(paths: Sequence[Path]) -> list[Path]:
    """Every file of the logs (see `botify.event_log.log_files`); none at all is an input error too."""
    try:
        files = event_log.log_files(paths)
    except FileNotFoundError as error:
        raise InputError(str(error)) from None
    if not files:
        raise InputError(f"no log files in {', '.join(str(p) for p in paths)}")
    return files


def parse_line(line: str | bytes) -> tuple[int, int, float, int] | None:
    """(user, track, time, timestamp) of one event line, or None when the line is not a valid event
    (`botify.event_log.parse_event` decides)."""
    event, _ = event_log.parse_event(line)
    if event is None:
        return None
    return event.user, event.track, float(event.time), int(event.timestamp)


def _read_lines(files: Iterable[Path], progress: bool, damaged: list[str]) -> Iterable[bytes]:
    """Every line of the files; a file whose lines end early (a gzip cut short) is described in `damaged`."""

    def note(path: Path, read: int, reason: str) -> None:
        damaged.append(f"{path}: {reason} after {read} lines")

    total = sum(f.stat().st_size for f in files)
    with tqdm(total=total, unit="B", unit_scale=True, desc="read logs", disable=not progress) as bar:
        for path in files:
            pending = 0
            for line in event_log.read_lines(path, note):
                pending += len(line)
                if pending >= 1 << 20:
                    bar.update(pending)
                    pending = 0
                yield line
            bar.update(pending)


def read_listens(paths: Sequence[Path], progress: bool = False) -> Listens:
    """Read every listen in the given log files/folders; malformed lines are counted, not fatal, and so is
    a gzipped file cut short (its lines before the damage are read; the damage counts as one bad line)."""
    files = log_files(paths)
    users, tracks, timestamps = array("q"), array("q"), array("q")
    times = array("d")
    lines = bad = 0
    damaged: list[str] = []
    for raw in _read_lines(files, progress, damaged):
        lines += 1
        parsed = parse_line(raw)
        if parsed is None:
            bad += 1
            continue
        user, track, time, timestamp = parsed
        users.append(user)
        tracks.append(track)
        times.append(time)
        timestamps.append(timestamp)
    for note in damaged:
        log.warning("%s", note)
    return Listens(
        user=np.frombuffer(users, dtype=np.int64).copy(),
        track=np.frombuffer(tracks, dtype=np.int64).copy(),
        time=np.frombuffer(times, dtype=np.float64).copy(),
        timestamp=np.frombuffer(timestamps, dtype=np.int64).copy(),
        lines=lines,
        bad_lines=bad + len(damaged),
        files=len(files),
    )
