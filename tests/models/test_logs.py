"""Reading event logs: every file of a folder, malformed lines counted and skipped."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from models.errors import InputError
from models.logs import parse_line, read_listens

from .conftest import event, write_lines


def test_next_and_last_lines_are_both_listens(tmp_path: Path) -> None:
    write_lines(tmp_path / "log" / "events.jsonl", [event(1, 5, 0.8, 1000), event(1, 6, 0.25, 2000, "last")])
    listens = read_listens([tmp_path / "log"])
    assert listens.user.tolist() == [1, 1]
    assert listens.track.tolist() == [5, 6]
    assert listens.time.tolist() == [0.8, 0.25]
    assert listens.timestamp.tolist() == [1000, 2000]
    assert (listens.lines, listens.bad_lines, listens.files) == (2, 0, 1)


def test_rotated_and_gzipped_files_are_all_read(tmp_path: Path) -> None:
    log = tmp_path / "log"
    write_lines(log / "events.jsonl", [event(1, 1, 1.0, 3)])
    write_lines(log / "events.jsonl.1", [event(2, 2, 1.0, 2)])
    with gzip.open(log / "events.jsonl.2.gz", "wt") as f:
        f.write(json.dumps(event(3, 3, 1.0, 1)) + "\n")
    (log / ".hidden").write_text("not a log\n")
    listens = read_listens([log])
    assert sorted(listens.user.tolist()) == [1, 2, 3]
    assert (listens.files, listens.bad_lines) == (3, 0)


@pytest.mark.parametrize(
    "line",
    [
        "",
        "not json",
        "[1, 2]",
        json.dumps({**event(1, 1, 0.5, 1), "message": "hello"}),
        json.dumps({k: v for k, v in event(1, 1, 0.5, 1).items() if k != "track"}),
        json.dumps({**event(1, 1, 0.5, 1), "time": 1.5}),
        json.dumps({**event(1, 1, 0.5, 1), "time": "0.5"}),
        json.dumps({**event(1, 1, 0.5, 1), "user": True}),
        json.dumps({**event(1, 1, 0.5, 1), "user": 2**70}),
        json.dumps(event(1, 1, 0.5, 1)).replace("0.5", "NaN"),
    ],
)
def test_malformed_lines_are_rejected(line: str) -> None:
    assert parse_line(line) is None


def test_malformed_lines_are_counted_and_skipped(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "events.jsonl", [event(1, 1, 0.9, 1), "", "{oops", event(2, 2, 0.1, 2)])
    listens = read_listens([path])
    assert len(listens) == 2
    assert (listens.lines, listens.bad_lines) == (4, 2)
    assert listens.user.dtype == np.int64


def test_missing_or_empty_log_location_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_listens([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no log files"):
        read_listens([tmp_path / "empty"])
