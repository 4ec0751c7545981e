"""botify.event_log: the writer every worker logs with, and the reading side ab and models share (one parser of a
line, one reader of a file)."""

from __future__ import annotations

import gzip
import json
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from botify.event_log import (
    PROGRESS_LINES,
    Event,
    EventLog,
    EventLogError,
    LogReading,
    bytes_on_disk,
    parse_event,
    read_lines,
)

VALID = {
    "message": "next",
    "timestamp": 1_767_225_600_000,
    "user": 3,
    "track": 7,
    "time": 0.5,
    "latency": 0.001,
    "recommendation": 8,
    "experiment": "HW_2",
    "experiments": {"HW_2": "T1"},
}


def _line(**changes: object) -> str:
    return json.dumps({**VALID, **changes})


def _without(name: str) -> str:
    return json.dumps({k: v for k, v in VALID.items() if k != name})


def test_a_valid_line_is_one_event_with_every_field() -> None:
    event, reason = parse_event(_line().encode() + b"\n")
    assert reason == ""
    assert event == Event(3, 1_767_225_600_000, "next", 7, 0.5, 0.001, {"HW_2": "T1"}, 8, "HW_2")
    assert event.experiments == {"HW_2": "T1"} and event.recommendation == 8 and event.experiment == "HW_2"


def test_the_edges_of_the_contract_are_valid() -> None:
    """Whole-number time and latency, no recommendation or experiments, ids at the ends of int64; the course's
    logger writes `"recommendation": null` on `last` lines, which is no recommendation either."""
    line = json.dumps(
        {"message": "last", "timestamp": 0, "user": 2**63 - 1, "track": -(2**63), "time": 1, "latency": 0}
    )
    event, reason = parse_event(line)
    assert (event, reason) == (Event(2**63 - 1, 0, "last", -(2**63), 1, 0, {}, None, None), "")
    course_last = parse_event(_line(message="last", recommendation=None))[0]
    assert course_last is not None and course_last.recommendation is None


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("{not json", "not JSON"),
        (b'{"user": "\xff"}', "not JSON"),  # not UTF-8
        ("[" * 100_000, "not JSON"),  # deeper than any parser should recurse
        (_line(time=0.5).replace("0.5", "NaN"), "not JSON"),
        (_line().replace('"timestamp": 1767225600000', '"timestamp": 1' + "0" * 400), "not JSON"),
        ("[1, 2]", "not a JSON object"),
        (_line(message=["next"]), "message is missing or not a string"),
        (_without("message"), "message is missing or not a string"),
        (_line(message="skip"), "message is 'skip', not 'next' or 'last'"),
        (_line(user=True), "user is missing or not a 64-bit integer"),
        (_line(user=2**63), "user is missing or not a 64-bit integer"),
        (_line(user=-(2**63) - 1), "user is missing or not a 64-bit integer"),
        (_line(user=-1), "user is negative: not an id /next takes"),  # a model trained on it could not be loaded
        (_line(user="3"), "user is missing or not a 64-bit integer"),
        (_line(track=2**64), "track is missing or not a 64-bit integer"),
        (_line(track=7.0), "track is missing or not a 64-bit integer"),
        (_line(timestamp=2**64 - 1), "timestamp is missing or not a 64-bit number of milliseconds"),
        (_line(timestamp=1e300), "timestamp is missing or not a 64-bit number of milliseconds"),
        (_line(timestamp="now"), "timestamp is missing or not a 64-bit number of milliseconds"),
        (_line(time=1.5), "time is missing or outside [0, 1]"),
        (_line(time=False), "time is missing or outside [0, 1]"),
        (_without("time"), "time is missing or outside [0, 1]"),
        (_line(latency=-0.1), "latency is missing, negative or not finite"),
        (_line(recommendation="8"), "recommendation is not a 64-bit integer"),
        (_line(recommendation=2**64), "recommendation is not a 64-bit integer"),
        (_line(experiment=["HW_2"]), "experiment is not a string"),
        (_line(experiments=["HW_2"]), "experiments is not an object"),
        (_line(experiments=None), "experiments is not an object"),
    ],
)
def test_a_malformed_line_is_rejected_with_its_reason(line: str | bytes, reason: str) -> None:
    assert parse_event(line) == (None, reason)


def test_a_long_wrong_message_is_cut_short_in_the_reason() -> None:
    event, reason = parse_event(_line(message="x" * 10_000))
    assert event is None
    assert reason == f"message is {'x' * 10_000!r:.40}, not 'next' or 'last'" and len(reason) < 80


def _gzipped_log(path: Path, lines: int, varied: bool = False) -> list[bytes]:
    """`varied`: random 62-bit users and tracks, so that the lines compress to ~27 bytes each, not ~3."""
    rng = random.Random(0)
    ids = (dict(user=rng.randrange(2**62), track=rng.randrange(2**62)) if varied else {} for _ in range(lines))
    written = [_line(timestamp=i, **changes).encode() + b"\n" for i, changes in enumerate(ids)]
    with gzip.open(path, "wb") as handle:
        handle.writelines(written)
    return written


def test_a_whole_gzipped_file_is_read_without_damage(tmp_path: Path) -> None:
    written = _gzipped_log(tmp_path / "events.jsonl.1.gz", 50)
    damage: list[tuple[Path, int, str]] = []
    assert list(read_lines(tmp_path / "events.jsonl.1.gz", lambda *report: damage.append(report))) == written
    assert damage == []


def test_a_gzip_cut_short_yields_the_lines_before_the_damage_then_reports_it(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl.1.gz"
    written = _gzipped_log(path, 20_000)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    damage: list[tuple[Path, int, str]] = []
    lines = list(read_lines(path, lambda *report: damage.append(report)))
    assert 0 < len(lines) < len(written)
    assert lines == written[: len(lines)]  # whole lines only, in order
    assert len(damage) == 1
    where, read, reason = damage[0]
    assert (where, read) == (path, len(lines))
    assert reason.startswith("gzip data cut short or corrupt (Compressed file ended")


def test_a_file_with_gzip_magic_that_is_not_gzip_is_reported_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\x1f\x8bnot gzip at all\n")
    damage: list[tuple[Path, int, str]] = []
    assert list(read_lines(path, lambda *report: damage.append(report))) == []
    assert [(where, read) for where, read, _ in damage] == [(path, 0)]


@pytest.mark.parametrize("gzipped", [False, True])
def test_progress_follows_the_file_on_disk_and_adds_up_to_its_size(tmp_path: Path, gzipped: bool) -> None:
    path = tmp_path / ("events.jsonl.1.gz" if gzipped else "events.jsonl")
    if gzipped:
        _gzipped_log(path, 3 * PROGRESS_LINES, varied=True)
        # Several of gzip's reads of the file on disk: 128 KiB each since Python 3.12 (8 KiB before); lines that
        # compress to almost nothing would be read whole by the first, and progress reported in a single step.
        assert path.stat().st_size > 4 * getattr(gzip, "READ_BUFFER_SIZE", 8192)
    else:
        path.write_text("".join(_line(timestamp=i) + "\n" for i in range(3 * PROGRESS_LINES)))
    steps: list[int] = []
    assert len(list(read_lines(path, lambda *report: None, steps.append))) == 3 * PROGRESS_LINES
    assert sum(steps) == path.stat().st_size  # compressed bytes for the gzipped file, not its lines' lengths
    assert len(steps) > 1 and all(step >= 0 for step in steps) and steps[0] < path.stat().st_size


def test_a_reading_passes_blank_lines_over_and_counts_and_describes_the_malformed_and_the_damaged(
    tmp_path: Path,
) -> None:
    plain = tmp_path / "a.jsonl"
    plain.write_text(_line(user=1) + "\n\n   \n{oops\n" + _line(user=2) + "\n")
    cut = tmp_path / "b.jsonl.gz"
    _gzipped_log(cut, 20_000)
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    reading = LogReading()
    events = list(reading.events([plain, cut]))
    kept = len(events) - 2
    assert 0 < kept < 20_000 and [e.user for e in events[:2]] == [1, 2]
    assert (reading.lines, reading.skipped) == (3 + kept, 2)
    assert reading.examples[0] == "a.jsonl:4: not JSON"
    assert reading.examples[1].startswith(f"b.jsonl.gz:{kept + 1}: gzip data cut short or corrupt")
    assert reading.damaged == [f"{cut}: {reading.examples[1].split(': ', 1)[1]}"]


def test_a_file_gone_before_it_is_read_is_reported_and_the_others_are_read(tmp_path: Path) -> None:
    kept, gone = tmp_path / "events.jsonl", tmp_path / "events.jsonl.33"  # rotated away after it was listed
    kept.write_text(_line() + "\n" + _line() + "\n")
    assert bytes_on_disk([kept, gone]) == kept.stat().st_size
    reading = LogReading()
    assert len(list(reading.events([gone, kept]))) == 2
    assert (reading.lines, reading.skipped) == (2, 1)
    assert reading.damaged == [f"{gone}: gone before it was read (rotated away or deleted meanwhile)"]


# ---- the writer --------------------------------------------------------------------------------------


def _lines(folder: Path) -> list[int]:
    """The `user` of every line in every file of `folder`, in file then line order (each line must parse)."""
    users = []
    for path in sorted(folder.iterdir()):
        for line in path.read_bytes().splitlines():
            event, reason = parse_event(line)
            assert event is not None, (path.name, reason)
            users.append(event.user)
    return users


def _write(log: EventLog, users: range) -> None:
    for user in users:
        log.write({**VALID, "user": user})


def test_a_log_file_moved_or_deleted_under_the_writer_is_started_afresh_and_nothing_is_lost(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "log", max_bytes=2_000, backups=100, check_seconds=0)  # checked at every line
    _write(log, range(5))
    moved = tmp_path / "rotated-by-hand.jsonl"
    log.path.rename(moved)  # logrotate's `create` method, or an operator
    _write(log, range(5, 10))
    assert _lines(tmp_path / "log") == list(range(5, 10)) and len(moved.read_bytes().splitlines()) == 5
    log.path.unlink()
    _write(log, range(10, 60))  # past max_bytes: size rotation of the new file works too
    log.close()
    assert sorted(_lines(tmp_path / "log")) == list(range(10, 60))
    assert len(list((tmp_path / "log").iterdir())) > 2


def test_while_no_file_can_be_opened_at_its_path_every_line_fails_and_none_goes_elsewhere(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "log", check_seconds=0.5)
    _write(log, range(2))
    log.path.unlink()
    log.path.mkdir()  # nothing can be opened there now
    time.sleep(0.6)  # the next line checks the path; those right after it must not wait for the next check
    for user in range(2, 5):
        with pytest.raises(EventLogError, match="the event log cannot take the listen"):
            log.write({**VALID, "user": user})
    log.path.rmdir()
    _write(log, range(5, 7))
    log.close()
    assert _lines(tmp_path / "log") == [5, 6]


def test_a_file_emptied_in_place_by_copytruncate_fills_to_the_size_limit_before_it_rotates(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "log", max_bytes=2_000, backups=5, check_seconds=0)
    _write(log, range(12))
    size = log.path.stat().st_size
    assert 1_000 < size < 2_000
    (tmp_path / "copy.jsonl").write_bytes(log.path.read_bytes())  # logrotate's copytruncate: copy, then empty
    log.path.write_bytes(b"")
    lines_that_fit = 2_000 // (size // 12)
    _write(log, range(12, 12 + lines_that_fit))
    log.close()
    assert [path.name for path in (tmp_path / "log").iterdir()] == [log.path.name]  # not rotated early
    assert _lines(tmp_path / "log") == list(range(12, 12 + lines_that_fit))


def test_log_backups_beyond_the_setting_are_dropped_oldest_first(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "log", max_bytes=1_000, backups=2)
    _write(log, range(40))
    log.close()
    names = sorted(path.name for path in (tmp_path / "log").iterdir())
    assert names == [log.path.name, f"{log.path.name}.1", f"{log.path.name}.2"]
    assert all(900 < path.stat().st_size <= 1_000 for path in (tmp_path / "log").iterdir() if path != log.path)
    users = _lines(tmp_path / "log")
    assert max(users) == 39 and min(users) > 0 and sorted(users) == list(range(min(users), 40))


WRITER_AT_A_FILE_SIZE_LIMIT = """
import json, resource, signal, sys
from pathlib import Path
from botify.event_log import EventLog, EventLogError
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing us
log = EventLog(Path(sys.argv[1]), max_bytes=10**9)
if sys.argv[2] == "copytruncate":  # logrotate copied the file and emptied it in place; the writer has not looked yet
    for user in range(100, 108):
        log.write({"message": "last", "timestamp": 1, "user": user, "track": 1, "time": 0.5, "latency": 0.001})
    log.path.write_bytes(b"")
resource.setrlimit(resource.RLIMIT_FSIZE, (1_000, resource.RLIM_INFINITY))
answered = 0
for user in range(100):
    try:
        log.write({"message": "last", "timestamp": 1, "user": user, "track": 1, "time": 0.5, "latency": 0.001})
        answered += 1
    except EventLogError as error:
        print(json.dumps({"answered": answered, "error": str(error), "failing": log.failing}))
        break
"""


@pytest.mark.parametrize("before", ["nothing", "copytruncate"])
def test_a_line_the_disk_takes_only_part_of_is_cut_off_and_reported(tmp_path: Path, before: str) -> None:
    # RLIMIT_FSIZE makes the kernel take only part of the write that crosses 1,000 bytes, then refuse (EFBIG):
    # what a filling disk does. The part must not stay behind for the next line to be glued to, nor may the cut
    # grow the file back to the size it had before logrotate's copytruncate emptied it.
    run = subprocess.run(
        [sys.executable, "-c", WRITER_AT_A_FILE_SIZE_LIMIT, str(tmp_path / "log"), before],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    result = json.loads(run.stdout)
    assert result["error"] == "the event log cannot take the listen (File too large)"
    assert result["failing"] == "File too large"
    [path] = (tmp_path / "log").iterdir()
    assert path.stat().st_size < 1_000 and path.read_bytes().endswith(b"\n")
    assert _lines(tmp_path / "log") == list(range(result["answered"]))


WRITER_UNTIL_THE_FILE_SIZE_LIMIT = """
import json, resource, sys
from pathlib import Path
from botify.event_log import EventLog, EventLogError
log = EventLog(Path(sys.argv[1]), max_bytes=10**9)
resource.setrlimit(resource.RLIMIT_FSIZE, (6_000, resource.RLIM_INFINITY))  # `ulimit -f`; Python ignores SIGXFSZ
def write(user):
    try:
        log.write({"message": "last", "timestamp": 1, "user": user, "track": 1, "time": 0.5, "latency": 0.001})
        return True
    except EventLogError:
        return False
users = 0
while write(users):
    users += 1
state = {"users": users, "healthy": [log.healthy(), log.healthy()], "failing": log.failing}
if sys.argv[2] == "limit lifted":
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
else:  # logrotate's `create`: the full file moved away, a new one to start
    log.path.rename(log.path.with_name("rotated.jsonl"))
state["healthy again"] = log.healthy()
state["written again"] = write(users)
print(json.dumps(state))
"""


@pytest.mark.parametrize("then", ["limit lifted", "file moved away"])
def test_a_log_that_cannot_take_a_line_is_unhealthy_though_the_disk_has_room_until_a_write_works(
    tmp_path: Path, then: str
) -> None:
    # A file size limit (as a quota or an I/O error) leaves free space on the disk: only a write tells.
    run = subprocess.run(
        [sys.executable, "-c", WRITER_UNTIL_THE_FILE_SIZE_LIMIT, str(tmp_path / "log"), then],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    state = json.loads(run.stdout)
    assert (state["healthy"], state["failing"]) == ([False, False], "File too large")
    assert state["healthy again"] is True and state["written again"] is True
    assert sorted(_lines(tmp_path / "log")) == list(range(state["users"] + 1))  # the probes left no blank line


@pytest.mark.parametrize("cut", ["after a newline", "before a newline"])
def test_a_copy_taken_while_the_file_grew_has_its_lines_read_once(tmp_path: Path, cut: str) -> None:
    lines = [(_line(user=user) + "\n").encode() for user in range(5)]
    early = b"".join(lines[:3])
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "events.jsonl").write_bytes(early if cut == "after a newline" else early[:-1])
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "events.jsonl.1").write_bytes(b"".join(lines))  # the same file, whole, collected later
    reading = LogReading()
    users = [
        event.user for event in reading.events([tmp_path / "a" / "events.jsonl", tmp_path / "b" / "events.jsonl.1"])
    ]
    assert users == [0, 1, 2, 3, 4] and reading.skipped == 0
    assert reading.copies == [
        f"{tmp_path / 'b' / 'events.jsonl.1'}: its first 3 lines are those of {tmp_path / 'a' / 'events.jsonl'}, "
        "read once"
    ]


def test_files_that_share_only_a_blank_first_line_are_no_copies(tmp_path: Path) -> None:
    first, second = tmp_path / "x.jsonl", tmp_path / "y.jsonl"
    first.write_text("\n" + _line(user=1) + "\n")
    second.write_text("\n" + _line(user=2) + "\n")
    reading = LogReading()
    assert [event.user for event in reading.events([first, second])] == [1, 2] and reading.copies == []
