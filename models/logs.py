"""Botify event logs -> listens: one (user, track, time, timestamp) per well-formed log line.

Both `next` and `last` lines say "the user listened to `track` for fraction `time`", so every
valid line is one listen. A log folder may hold rotated files (`*.jsonl`, `*.jsonl.1`, `*.gz`):
every regular file in it is read (hidden ones excepted). Blank lines are passed over; malformed ones are counted
and skipped (`botify.event_log.LogReading`, as `ab` reads the log).
"""

from __future__ import annotations

import logging
from array import array
from collections.abc import Sequence
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


def read_listens(paths: Sequence[Path], progress: bool = False) -> Listens:
    """Read every listen in the given log files/folders; malformed lines are counted, not fatal, and so is
    a gzipped file cut short (its lines before the damage are read; the damage counts as one bad line)."""
    files = log_files(paths)
    users, tracks, timestamps = array("q"), array("q"), array("q")
    times = array("d")
    reading = event_log.LogReading()
    total = event_log.bytes_on_disk(files)
    with tqdm(total=total, unit="B", unit_scale=True, desc="read logs", disable=not progress) as bar:
        for event in reading.events(files, bar.update):
            users.append(event.user)
            tracks.append(event.track)
            times.append(event.time)
            timestamps.append(int(event.timestamp))
    for note in reading.damaged:
        log.warning("%s", note)
    for copy in reading.copies:
        log.warning("%s (the same log collected twice?)", copy)
    return Listens(
        user=np.frombuffer(users, dtype=np.int64).copy(),
        track=np.frombuffer(tracks, dtype=np.int64).copy(),
        time=np.frombuffer(times, dtype=np.float64).copy(),
        timestamp=np.frombuffer(timestamps, dtype=np.int64).copy(),
        lines=reading.lines,
        bad_lines=reading.skipped,
        files=len(files),
    )
