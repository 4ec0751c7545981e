"""Seeded synthetic event logs in botify's event-log format, with a known effect per arm.

Users differ (how much of a track they listen to, how many sessions, how long a session is),
so the metrics are as skewed and heterogeneous as real ones. A treatment multiplies each
listen's expected fraction by (1 + effect): with session lengths independent of listening,
`time` and `mean_time_per_session` move by exactly `effect` in expectation, and `tracks`,
`sessions`, `mean_tracks_per_session` do not move. `latency_effect` scales request latency.
The same users' pre-period (no treatment yet) is drawn from the same traits, for CUPED.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ab.errors import ABInputError
from ab.events import events_frame, log_files
from models.atomic import atomic_files

DAY_MS = 86_400_000
EPOCH_MS = 1_767_225_600_000  # 2026-01-01, where synthetic experiments start
MAX_USERS = 1_000_000  # ~24 events a user: ~4.5 GB of log, ~9 GB of memory to draw it
MAX_FILES = 1_000  # worker files of one log (a service runs a few workers)


@dataclass(frozen=True)
class SyntheticDesign:
    users: int = 2000
    split: Mapping[str, float] = field(default_factory=lambda: {"C": 0.5, "T1": 0.5})
    effect: Mapping[str, float] = field(default_factory=dict)  # relative effect on listen time per arm
    latency_effect: Mapping[str, float] = field(default_factory=dict)
    experiment: str = "HW_2"
    mean_sessions: float = 3.0
    mean_tracks: float = 8.0
    mean_listen: float = 0.35  # population mean fraction of a track listened
    tracks_in_catalog: int = 10_000

    def __post_init__(self) -> None:
        if self.users > MAX_USERS:
            raise ABInputError(f"users must be at most {MAX_USERS:,}, got {self.users:,}")
        top = self.mean_listen * 2.0 * (1 + max([0.0, *self.effect.values()]))
        if not 0.0 < top < 1.0 or min([0.0, *self.effect.values()]) <= -1.0:
            raise ABInputError(
                "need 0 < mean_listen * 2 * (1 + effect) < 1 and effect > -1, so a listen's "
                "expected fraction stays inside (0, 1)"
            )
        if min([0.0, *self.latency_effect.values()]) <= -1.0:
            raise ABInputError("need a latency effect > -1, so a request's latency stays positive")


@dataclass(frozen=True)
class Traits:
    """Per-user traits that hold across periods (that is what CUPED exploits)."""

    arm: np.ndarray
    listen: np.ndarray
    sessions: np.ndarray
    tracks: np.ndarray
    latency_ms: np.ndarray


def draw_traits(design: SyntheticDesign, rng: np.random.Generator) -> Traits:
    arms = list(design.split)
    shares = np.asarray([design.split[a] for a in arms], dtype=float)
    n = design.users
    # listen fraction in (0, 2 * mean): a scaled Beta with the population mean `mean_listen`
    listen = design.mean_listen * 2.0 * rng.beta(2.0, 2.0, size=n)
    return Traits(
        arm=np.asarray(arms, dtype=object)[rng.choice(len(arms), size=n, p=shares / shares.sum())],
        listen=listen,
        sessions=rng.gamma(2.0, (design.mean_sessions - 1) / 2.0, size=n),
        tracks=rng.gamma(3.0, (design.mean_tracks - 1) / 3.0, size=n),
        latency_ms=rng.lognormal(np.log(0.6), 0.3, size=n),
    )


def generate_events(
    design: SyntheticDesign, rng: np.random.Generator, traits: Traits | None = None, *, period: int = 1
) -> pd.DataFrame:
    """Events of one period (1: the experiment, 0: before it, no effect) as `ab.events` reads them."""
    traits = draw_traits(design, rng) if traits is None else traits
    n = design.users
    treated = period >= 1
    effect = np.array([design.effect.get(a, 0.0) if treated else 0.0 for a in traits.arm])
    latency_effect = np.array([design.latency_effect.get(a, 0.0) if treated else 0.0 for a in traits.arm])
    sessions = 1 + rng.poisson(traits.sessions)
    session_user = np.repeat(np.arange(n), sessions)
    lengths = 1 + rng.poisson(traits.tracks[session_user])
    user = np.repeat(session_user, lengths)
    size = user.size
    last = np.zeros(size, dtype=bool)
    last[np.cumsum(lengths) - 1] = True
    mean = traits.listen[user] * (1 + effect[user])
    concentration = 3.0
    time = np.round(rng.beta(mean * concentration, (1 - mean) * concentration), 2)
    latency = traits.latency_ms[user] * (1 + latency_effect[user]) * rng.lognormal(0.0, 0.25, size=size) / 1000
    gaps = rng.integers(2_000, 240_000, size=size)
    clock = np.cumsum(gaps)
    first = np.r_[0, np.cumsum(np.bincount(user, minlength=n))[:-1]]
    start = EPOCH_MS + (period - 1) * DAY_MS + rng.integers(0, DAY_MS // 4, size=n)
    timestamp = start[user] + clock - clock[first[user]]
    order = rng.permutation(size)  # a real log interleaves users
    return events_frame(
        {
            "user": user[order],
            "timestamp": timestamp[order],
            "message": np.where(last, "last", "next")[order],
            "track": rng.integers(0, design.tracks_in_catalog, size=size)[order],
            "time": time[order],
            "latency": latency[order],
            "arm": traits.arm[user][order] if treated else np.full(size, None, dtype=object),
        }
    )


def write_log(events: pd.DataFrame, folder: Path, experiment: str, *, files: int = 2) -> list[Path]:
    """Write `events` as botify event-log JSON lines into `folder` (new, or without a file `ab report` would read),
    spread over `files` worker files in time order."""
    return write_logs([folder], [events], experiment, files=files)


def write_logs(folders: Sequence[Path], logs: Iterable[pd.DataFrame], experiment: str, *, files: int = 2) -> list[Path]:
    """`write_log` each of `logs` (drawn only once every folder is checked) into its folder; every file is renamed into
    place only once all are written, so a failure leaves no partial log."""
    if files < 1:
        raise ABInputError(f"files must be at least 1, got {files}")
    if files > MAX_FILES:
        raise ABInputError(f"files must be at most {MAX_FILES:,}, got {files:,}")
    check_log_folders(folders)
    written: list[Path] = []
    with atomic_files() as renamed_together:
        for folder, events in zip(folders, logs, strict=True):
            for i, lines in enumerate(_worker_lines(events, experiment, files)):
                path = folder / f"worker-{i}.jsonl"
                with renamed_together.path(path).open("w") as handle:
                    handle.writelines(lines)
                written.append(path)
    return written


def check_log_folders(folders: Sequence[Path]) -> None:
    """Each folder new or without a file `ab report` would read (it reads every file in a folder), none in another."""
    for folder in folders:
        if folder.exists() and not folder.is_dir():
            raise ABInputError(f"{folder} is not a folder")
        found = log_files([folder]) if folder.exists() else []
        if found:
            raise ABInputError(
                f"{folder} already holds {len(found):,} file(s), e.g. {found[0].name}, and `ab report` reads every "
                "file in a folder: give a new or empty one"
            )
    for one, other in itertools.permutations(folders, 2):
        if one.resolve() == other.resolve() or one.resolve() in other.resolve().parents:
            raise ABInputError(
                f"the log folders {one} and {other} overlap: `ab report` would read one log with the other"
            )


def _worker_lines(events: pd.DataFrame, experiment: str, files: int) -> list[Iterator[str]]:
    """Each worker file's JSON lines: the events in time order, dealt over the files as a service's workers log them."""
    ordered = events.sort_values("timestamp", kind="stable")
    columns = [ordered[name].tolist() for name in ("message", "timestamp", "user", "track", "time", "latency")]
    arms = ordered["arm"].astype(object).where(ordered["arm"].notna(), None).tolist()
    worker = (ordered["user"].to_numpy(dtype=np.int64) + np.arange(len(ordered))) % files
    by_worker = np.argsort(worker, kind="stable")
    bounds = np.searchsorted(worker[by_worker], np.arange(files + 1)).tolist()

    def lines(rows: list[int]) -> Iterator[str]:
        for row in rows:
            message, timestamp, user, track, time, latency = (column[row] for column in columns)
            event: dict[str, object] = {
                "message": message,
                "timestamp": int(timestamp),
                "user": user,
                "track": track,
                "time": time,
                "latency": latency,
            }
            if message == "next":
                event["recommendation"] = (track * 7919 + 1) % 10_000
            event["experiment"] = experiment
            event["experiments"] = {experiment: arms[row]} if arms[row] is not None else {}
            yield json.dumps(event) + "\n"

    return [lines(by_worker[bounds[i] : bounds[i + 1]].tolist()) for i in range(files)]
