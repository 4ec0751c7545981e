"""Reading event logs: every file of a folder, malformed lines counted and skipped."""

from __future__ import annotations

import gzip
import json
import logging
import os
import re
from pathlib import Path

import numpy as np
import pytest

from botify.event_log import parse_event
from models.errors import InputError
from models.logs import read_listens

from .conftest import event, write_lines


def test_next_and_last_lines_are_both_listens(tmp_path: Path) -> None:
    write_lines(tmp_path / "log" / "events.jsonl", [event(1, 5, 0.8, 1000), event(1, 6, 0.25, 2000, "last")])
    listens = read_listens([tmp_path / "log"])
    assert listens.user.tolist() == [1, 1]
    assert listens.track.tolist() == [5, 6]
    assert listens.time.tolist() == [0.8, 0.25]
    assert listens.timestamp.tolist() == [1000, 2000]
    assert (listens.lines, listens.bad_lines, listens.files) == (2, 0, 1)


def test_a_folder_linked_into_a_log_folder_is_read_and_a_link_back_up_once(tmp_path: Path) -> None:
    """Replicas' folders gathered by links: their files were passed over without a word (`Path.rglob` does not
    follow links to folders), while a linked file was read."""
    write_lines(tmp_path / "replica1" / "events.jsonl", [event(1, 1, 1.0, 1)])
    write_lines(tmp_path / "replica2" / "events.jsonl", [event(2, 2, 1.0, 2)])
    log = tmp_path / "log"
    write_lines(log / "events.jsonl", [event(3, 3, 1.0, 3)])
    (log / "replica1").symlink_to(tmp_path / "replica1")
    (log / "replica2").symlink_to(tmp_path / "replica2")
    (tmp_path / "replica2" / "up").symlink_to(log)  # a loop
    listens = read_listens([log])
    assert sorted(listens.user.tolist()) == [1, 2, 3]
    assert (listens.files, listens.bad_lines) == (3, 0)


def test_a_pipe_given_as_a_log_is_refused_as_what_it_is(tmp_path: Path) -> None:
    """`--logs <(zcat ...)` named a pipe that exists: "log path does not exist"."""
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    with pytest.raises(InputError, match=f"^log path is not a file or a folder: {re.escape(str(pipe))}$"):
        read_listens([pipe])


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


def test_the_same_log_collected_twice_is_read_once_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lines = [event(1, 1, 1.0, 1), event(1, 2, 1.0, 2), event(1, 3, 1.0, 3)]
    mon = write_lines(tmp_path / "mon" / "events.jsonl", lines[:2])  # collected while the file still grew
    tue = write_lines(tmp_path / "tue" / "events.jsonl.1", lines)  # the same file, rotated, collected again
    write_lines(tmp_path / "tue" / "events.jsonl", [event(2, 1, 1.0, 1), event(2, 2, 1.0, 2)])  # another file
    with caplog.at_level(logging.WARNING):
        listens = read_listens([tmp_path / "mon", tmp_path / "tue"])
    pairs = sorted(zip(listens.user.tolist(), listens.track.tolist(), strict=True))
    assert pairs == [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2)]
    assert f"{tue}: its first 2 lines are those of {mon}, read once (the same log collected twice?)" in caplog.text


@pytest.mark.parametrize(
    "line",
    [
        "not json",
        "[1, 2]",
        json.dumps({**event(1, 1, 0.5, 1), "message": "hello"}),
        json.dumps({k: v for k, v in event(1, 1, 0.5, 1).items() if k != "track"}),
        json.dumps({**event(1, 1, 0.5, 1), "time": 1.5}),
        json.dumps({**event(1, 1, 0.5, 1), "time": "0.5"}),
        json.dumps({**event(1, 1, 0.5, 1), "user": True}),
        json.dumps({**event(1, 1, 0.5, 1), "user": 2**70}),
        json.dumps(event(1, 1, 0.5, 1)).replace("0.5", "NaN"),
        json.dumps({**event(1, 1, 0.5, 1), "message": ["next"]}),
        json.dumps({**event(1, 1, 0.5, 1), "timestamp": 2**64 - 1}),
        json.dumps(event(1, 1, 0.5, 1)).replace('"timestamp": 1', '"timestamp": 1' + "0" * 400),
        json.dumps({**event(1, 1, 0.5, 1), "track": 2**63}),
        "[" * 100_000,
    ],
)
def test_malformed_lines_are_rejected(line: str) -> None:
    event, reason = parse_event(line)
    assert event is None and reason


def test_malformed_lines_are_counted_and_skipped_and_blank_ones_passed_over(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "events.jsonl", [event(1, 1, 0.9, 1), "", "{oops", event(2, 2, 0.1, 2)])
    listens = read_listens([path])
    assert len(listens) == 2
    assert (listens.lines, listens.bad_lines) == (3, 1)  # as `ab` counts them
    assert listens.user.dtype == np.int64


def test_missing_or_empty_log_location_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_listens([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no log files"):
        read_listens([tmp_path / "empty"])


def test_a_valid_line_is_user_track_time_and_an_integer_timestamp(tmp_path: Path) -> None:
    listens = read_listens([write_lines(tmp_path / "events.jsonl", [event(2**63 - 1, 4, 1, 1_767_225_600_000)])])
    assert (listens.user.tolist(), listens.track.tolist(), listens.time.tolist(), listens.timestamp.tolist()) == (
        [2**63 - 1],
        [4],
        [1.0],
        [1_767_225_600_000],
    )


def test_a_gzip_cut_short_keeps_its_lines_and_counts_as_one_bad_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = tmp_path / "log"
    write_lines(log / "events.jsonl", [event(0, 0, 1.0, 0)])
    cut = log / "events.jsonl.1.gz"
    with gzip.open(cut, "wt") as f:
        f.writelines(json.dumps(event(1, t % 50, 1.0, t)) + "\n" for t in range(1, 20_001))
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    with caplog.at_level(logging.WARNING):
        listens = read_listens([log])
    kept = listens.lines - 1
    assert 0 < kept < 20_000 and len(listens) == 1 + kept
    assert sorted(listens.timestamp.tolist()) == list(range(kept + 1))
    assert (listens.bad_lines, listens.files) == (1, 2)
    assert f"{cut}: gzip data cut short or corrupt (Compressed file ended" in caplog.text
    assert caplog.text.rstrip().endswith(f"the {kept} lines before it were read")
