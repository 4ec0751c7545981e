"""`python -m ab simulate` and `aa` on bad input: one line, exit 2, and nothing written or lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from ab.cli import main
from ab.synthetic import MAX_FILES


def _files(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (hidden ones too) by its relative path, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _one_line_error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(list(args)) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1, captured.err
    return captured.err.rstrip("\n")


def test_a_folder_that_holds_a_log_is_refused_and_kept_as_it_was(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Worker files were added beside it (`ab report` reads them all), and a rerun with fewer files left the rest."""
    out = tmp_path / "log"
    assert main(["simulate", "--out", str(out), "--users", "50", "--files", "3"]) == 0
    capsys.readouterr()
    earlier = _files(out)
    assert sorted(earlier) == ["worker-0.jsonl", "worker-1.jsonl", "worker-2.jsonl"]
    error = _one_line_error(capsys, "simulate", "--out", str(out), "--users", "60", "--files", "2", "--seed", "1")
    assert error == (
        f"error: {out} already holds 3 file(s), e.g. worker-0.jsonl, and `ab report` reads every file in a folder: "
        "give a new or empty one"
    )
    assert _files(out) == earlier


@pytest.mark.parametrize("pre", ["log", "log/pre"])
def test_a_pre_period_folder_that_overlaps_the_logs_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], pre: str
) -> None:
    """The same folder: the pre-period's files overwrote the experiment's; one inside the other: read as one log."""
    out, pre_out = tmp_path / "log", tmp_path / pre
    error = _one_line_error(capsys, "simulate", "--out", str(out), "--pre-out", str(pre_out), "--users", "50")
    assert error == f"error: the log folders {out} and {pre_out} overlap: `ab report` would read one log with the other"
    assert not out.exists()


def test_a_write_that_fails_midway_leaves_no_partial_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The experiment's log was complete before the pre-period's failed (and 100,000 files ran out of descriptors)."""
    (tmp_path / "file").write_text("not a folder\n")
    out, pre_out = tmp_path / "log", tmp_path / "file" / "pre"
    error = _one_line_error(capsys, "simulate", "--out", str(out), "--pre-out", str(pre_out), "--users", "50")
    assert error == f"error: [Errno 20] Not a directory: '{pre_out}'"
    assert _files(tmp_path) == {"file": b"not a folder\n"}


def test_more_worker_files_than_a_service_runs_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "log"
    error = _one_line_error(capsys, "simulate", "--out", str(out), "--users", "50", "--files", str(MAX_FILES + 1))
    assert error == f"error: files must be at most {MAX_FILES:,}, got {MAX_FILES + 1:,}"
    assert not out.exists()
