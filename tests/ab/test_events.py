from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from ab.errors import ABInputError
from ab.events import log_files, read_events
from ab.report import build_report
from botify.event_log import parse_event


def _event(user: int, ts: int, message: str = "next", arm: str | None = "C", **extra: object) -> str:
    event: dict[str, object] = {
        "message": message,
        "timestamp": ts,
        "user": user,
        "track": 7,
        "time": 0.5,
        "latency": 0.001,
        "experiments": {"HW_2": arm} if arm else {},
    }
    if message == "next":
        event["recommendation"] = 8
    event.update(extra)
    return json.dumps(event)


def test_every_file_of_the_folder_is_read_including_rotated_and_nested(tmp_path: Path) -> None:
    (tmp_path / "w1").mkdir()
    (tmp_path / "events.jsonl").write_text(_event(1, 10) + "\n")
    (tmp_path / "events.jsonl.1").write_text(_event(1, 5) + "\n" + _event(2, 6) + "\n")
    (tmp_path / "w1" / "events.jsonl").write_text(_event(2, 7, "last") + "\n\n")
    (tmp_path / ".hidden").write_text("not a log\n")
    events, stats = read_events([tmp_path], "HW_2")
    assert stats.files == 3
    assert stats.events == 4 and stats.malformed == 0
    assert sorted(events["timestamp"].tolist()) == [5, 6, 7, 10]
    assert set(events["arm"]) == {"C"}


def test_each_event_keeps_its_file_and_the_files_order(tmp_path: Path) -> None:
    """What orders a tie of one worker's events (ab.metrics): the file it was read from, and its place there."""
    (tmp_path / "a.jsonl").write_text(_event(1, 20, "last") + "\n" + _event(1, 20) + "\n")
    (tmp_path / "b.jsonl").write_text(_event(2, 5) + "\n")
    events, _ = read_events([tmp_path], "HW_2")
    assert events[["user", "message", "source"]].values.tolist() == [[1, "last", 0], [1, "next", 0], [2, "next", 1]]


def test_malformed_lines_are_counted_and_skipped_with_a_reason(tmp_path: Path) -> None:
    lines = [
        _event(1, 1),
        "{not json",
        "[1, 2]",
        _event(1, 2, message="skip"),
        _event(1, 3, time=1.5),
        _event(1, 4, latency=-1),
        json.dumps({"message": "next", "timestamp": 5, "track": 1, "time": 0.1, "latency": 0.1}),
        _event(True, 6),  # a bool is not a user id
        '{"message": "last", "timestamp": 7, "user": 1, "track": 1, "time": NaN, "latency": 0.1}',
        _event(1, 8, "last"),
    ]
    (tmp_path / "log.jsonl").write_text("\n".join(lines) + "\n")
    events, stats = read_events([tmp_path], "HW_2")
    assert stats.events == 2 and len(events) == 2
    assert stats.malformed == 8
    assert stats.examples[0] == "log.jsonl:2: not JSON"
    assert parse_event(lines[4]) == (None, "time is missing or outside [0, 1]")


def test_events_without_the_experiment_are_left_out_and_counted(tmp_path: Path) -> None:
    (tmp_path / "log").write_text("\n".join([_event(1, 1), _event(2, 2, arm=None), _event(3, 3, arm=None)]))
    events, stats = read_events([tmp_path], "HW_2")
    assert events["user"].tolist() == [1]
    assert stats.without_experiment == 2
    assert stats.experiments_seen == {"HW_2"}
    everything, _ = read_events([tmp_path], None)
    assert len(everything) == 3 and everything["arm"].isna().all()


def test_events_another_experiment_routed_are_left_out_and_counted(tmp_path: Path) -> None:
    # one log folder, two days: EXPLORE served the first, HW_2 the second; every event carries HW_2's arm
    lines = [_event(1, 1, experiment="EXPLORE"), _event(1, 2, "last", experiment="EXPLORE")]
    lines += [_event(1, 3, experiment="HW_2"), _event(2, 4, "last", experiment="HW_2"), _event(3, 5)]
    (tmp_path / "log").write_text("\n".join(lines))
    events, stats = read_events([tmp_path], "HW_2")
    assert events["timestamp"].tolist() == [3, 4, 5]  # a line that does not say who routed it is kept
    assert stats.routed_elsewhere == 2 and stats.routed_by == {"EXPLORE", "HW_2"}
    assert len(read_events([tmp_path], None)[0]) == 5  # without an experiment, the whole log
    with pytest.raises(ABInputError, match=r"served under experiment AA \(the service ran: EXPLORE, HW_2\)"):
        build_report([tmp_path], "AA")
    assert parse_event(_event(1, 1, experiment=7)) == (None, "experiment is not a string")


def test_a_file_the_paths_name_twice_is_read_once(tmp_path: Path) -> None:
    (tmp_path / "events.jsonl").write_text(_event(1, 1) + "\n" + _event(1, 2, "last") + "\n")
    (tmp_path / "other.jsonl").write_text(_event(2, 3, "last") + "\n")
    events, stats = read_events([tmp_path, tmp_path / "events.jsonl", tmp_path / "." / "other.jsonl"], "HW_2")
    assert stats.files == 2 and len(events) == 3


def test_a_missing_log_path_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(ABInputError, match="does not exist"):
        log_files([tmp_path / "nope"])


def test_gzipped_rotated_files_are_read_too(tmp_path: Path) -> None:
    with gzip.open(tmp_path / "events.jsonl.2.gz", "wt") as handle:
        handle.write(_event(4, 1) + "\n" + _event(4, 2, "last") + "\n")
    events, stats = read_events([tmp_path], "HW_2")
    assert stats.files == 1 and events["message"].tolist() == ["next", "last"]


def test_lines_that_once_crashed_the_reader_are_skipped_with_their_reasons(tmp_path: Path) -> None:
    lines = [
        _event(1, 1),
        _event(1, 2, message=["next"]),
        _event(1, 3).replace('"timestamp": 3', '"timestamp": 1' + "0" * 400),
        _event(2**64 - 1, 4),
        _event(1, 5, track=2**63),
        "[" * 100_000,
        _event(1, 6, "last"),
    ]
    (tmp_path / "log.jsonl").write_text("\n".join(lines) + "\n")
    events, stats = read_events([tmp_path], "HW_2")
    assert events["timestamp"].tolist() == [1, 6] and events["user"].dtype == "int64"
    assert (stats.lines, stats.malformed) == (7, 5)
    assert stats.examples == [
        "log.jsonl:2: message is missing or not a string",
        "log.jsonl:3: not JSON",
        "log.jsonl:4: user is missing or not a 64-bit integer",
        "log.jsonl:5: track is missing or not a 64-bit integer",
        "log.jsonl:6: not JSON",
    ]


def test_a_gzip_cut_short_keeps_its_lines_and_is_one_skipped_entry(tmp_path: Path) -> None:
    (tmp_path / "events.jsonl").write_text(_event(1, 0) + "\n")
    cut = tmp_path / "events.jsonl.1.gz"
    with gzip.open(cut, "wt") as handle:
        handle.writelines(_event(2, ts) + "\n" for ts in range(1, 20_001))
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    events, stats = read_events([tmp_path], "HW_2")
    kept = stats.lines - 1
    assert 0 < kept < 20_000 and len(events) == 1 + kept
    assert sorted(events["timestamp"].tolist()) == list(range(kept + 1))
    assert stats.malformed == 1
    assert stats.examples[0].startswith(f"events.jsonl.1.gz:{kept + 1}: gzip data cut short or corrupt (")
    assert stats.examples[0].endswith(f"; the {kept} lines before it were read")
