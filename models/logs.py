"""Botify event logs -> listens: one (user, track, time, timestamp) per well-formed log line.

Both `next` and `last` lines say "the user listened to `track` for fraction `time`", so every
valid line is one listen. A log folder may hold rotated files (`*.jsonl`, `*.jsonl.1`, `*.gz`):
every regular file in it is read. Lines that are empty or malformed are counted and skipped.
"""

from __future__ import annotations

import json
import math
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from botify import event_log
from models.errors import InputError

MESSAGES = frozenset({"next", "last"})
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


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


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_line(line: str | bytes) -> tuple[int, int, float, int] | None:
    """(user, track, time, timestamp) of one event line, or None when the line is not a valid listen."""
    try:
        event = json.loads(line)
        message = event["message"]
        user = event["user"]
        track = event["track"]
        time = event["time"]
        timestamp = event["timestamp"]
    except (ValueError, TypeError, KeyError):
        return None
    if message not in MESSAGES or not _is_int(user) or not _is_int(track):
        return None
    if not isinstance(time, int | float) or isinstance(time, bool) or not 0.0 <= time <= 1.0:
        return None
    if not isinstance(timestamp, int | float) or isinstance(timestamp, bool) or not math.isfinite(timestamp):
        return None
    if not all(_INT64_MIN <= v <= _INT64_MAX for v in (user, track, timestamp)):
        return None
    return user, track, float(time), int(timestamp)


def _read_lines(files: Iterable[Path], progress: bool) -> Iterable[bytes]:
    total = sum(f.stat().st_size for f in files)
    with tqdm(total=total, unit="B", unit_scale=True, desc="read logs", disable=not progress) as bar:
        for path in files:
            with event_log.open_log(path) as stream:
                pending = 0
                for line in stream:
                    pending += len(line)
                    if pending >= 1 << 20:
                        bar.update(pending)
                        pending = 0
                    yield line
                bar.update(pending)


def read_listens(paths: Sequence[Path], progress: bool = False) -> Listens:
    """Read every listen in the given log files/folders; malformed lines are counted, not fatal."""
    files = log_files(paths)
    users, tracks, timestamps = array("q"), array("q"), array("q")
    times = array("d")
    lines = bad = 0
    for raw in _read_lines(files, progress):
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
    return Listens(
        user=np.frombuffer(users, dtype=np.int64).copy(),
        track=np.frombuffer(tracks, dtype=np.int64).copy(),
        time=np.frombuffer(times, dtype=np.float64).copy(),
        timestamp=np.frombuffer(timestamps, dtype=np.int64).copy(),
        lines=lines,
        bad_lines=bad,
        files=len(files),
    )
