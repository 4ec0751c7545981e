"""Fixtures of the models tests: a tiny hand-made world and helpers to write event-log lines."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def event(user: int, track: int, time: float, timestamp: int, message: str = "next") -> dict:
    """One botify event-log record (the format `botify.event_log.parse_event` reads)."""
    record = {
        "message": message,
        "timestamp": timestamp,
        "user": user,
        "track": track,
        "time": time,
        "latency": 0.001,
        "experiments": {"HW_2": "C"},
    }
    if message == "next":
        record["recommendation"] = 0
    return record


def write_lines(path: Path, lines: Iterable[dict | str]) -> Path:
    """A log file of records (dicts) and raw lines (strings, e.g. malformed ones)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def write_catalog(data_dir: Path, tracks: int, **fields: list) -> Path:
    """tracks.json with ids 0..tracks-1, artist/title, plus any extra per-track field columns."""
    data_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for t in range(tracks):
        row = {"track": t, "artist": f"a{t % 3}", "title": f"t{t}"}
        row.update({name: values[t] for name, values in fields.items()})
        rows.append(row)
    write_lines(data_dir / "tracks.json", rows)
    (data_dir / "top_tracks.json").write_text(json.dumps(list(range(tracks))))
    return data_dir


def run_models(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`python -m models ...` as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "models", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )


@pytest.fixture
def tiny_world(tmp_path: Path) -> Path:
    """Six tracks with every feature field."""
    return write_catalog(
        tmp_path / "data",
        6,
        genre=["rock", "rock", "pop", "pop", "jazz", "jazz"],
        duration=[100, 200, 300, 150, 250, 350],
        popularity=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
    )
