"""`python -m ab simulate`, `aa` (and `report`'s paths) on bad input: one line, exit 2, nothing written or lost."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ab.cli import main
from ab.errors import ABInputError
from ab.report import build_report
from ab.synthetic import MAX_FILES, SyntheticDesign, generate_events, write_logs


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


def test_a_write_that_fails_midway_leaves_no_partial_log(tmp_path: Path) -> None:
    """The experiment's log is complete when drawing the pre-period's fails: none of its files may be left."""

    def logs() -> Iterator[pd.DataFrame]:
        yield generate_events(SyntheticDesign(users=50), np.random.default_rng(0))
        raise ABInputError("the pre-period could not be drawn")

    (tmp_path / "file").write_text("not a folder\n")
    with pytest.raises(ABInputError, match="the pre-period could not be drawn"):
        write_logs([tmp_path / "log", tmp_path / "pre"], logs(), "HW_2")
    assert _files(tmp_path) == {"file": b"not a folder\n"}  # no worker file, no temporary one
    assert sorted(path.name for path in tmp_path.iterdir()) == ["file"]  # nor the two folders made for them


def test_more_worker_files_than_a_service_runs_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "log"
    error = _one_line_error(capsys, "simulate", "--out", str(out), "--users", "50", "--files", str(MAX_FILES + 1))
    assert error == f"error: files must be at most {MAX_FILES:,}, got {MAX_FILES + 1:,}"
    assert not out.exists()


NO_ARM = "in the design (arms: C, T1); --split sets the arms, e.g. --split 1/1/1 for C, T1, T2"
CONTROL = "C is the control, the baseline effects are relative to; give the effect to a treatment"
NEEDS_A_SHARE = "every arm of a design needs a positive share"
POSITIVE = f"{NEEDS_A_SHARE} (drop an arm the design lacks)"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--effect", "T9=0.1"], f"--effect T9=0.1: no arm 'T9' {NO_ARM}"),
        (["--effect", "T1=0.1", "T2=0.2", "--split", "C=1,T1=1"], f"--effect T2=0.2: no arm 'T2' {NO_ARM}"),
        (["--effect", "C=0.1"], f"--effect C=0.1: {CONTROL} (T1)"),
        (["--latency-effect", "C=0.5", "--split", "1/1/1"], f"--latency-effect C=0.5: {CONTROL} (T1, T2)"),
        (["--effect", "T1=0.1", "T1=0.2"], "--effect names arm T1 twice"),
        (["--split", "T1=1,T2=1"], "--split 'T1=1,T2=1' needs the control arm C and a treatment, e.g. C=50,T1=50"),
        (["--split", "0/1"], f"--split '0/1' gives arm(s) C no positive share: {NEEDS_A_SHARE}"),
        (["--split", "C=1,T1=1,T2=0"], f"--split 'C=1,T1=1,T2=0' gives arm(s) T2 no positive share: {POSITIVE}"),
    ],
)
def test_an_effect_on_an_arm_the_design_lacks_or_on_the_control_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], error: str
) -> None:
    """They were ignored (T9 in a 2-arm design became its only treatment, C=0.1 shifted the baseline), exit 0."""
    out = tmp_path / "log"
    assert _one_line_error(capsys, "simulate", "--out", str(out), "--users", "50", *args) == f"error: {error}"
    assert not out.exists()


def test_a_positional_split_sets_the_arms_an_effect_may_name(tmp_path: Path) -> None:
    """1/1/1 is C, T1, T2 whichever arms the effects name (it had to have as many parts as they named arms + C)."""
    out = tmp_path / "log"
    assert main(["simulate", "--out", str(out), "--users", "3000", "--split", "1/1/1", "--effect", "T2=0.3"]) == 0
    report = build_report(out)
    assert report.arms == ["C", "T1", "T2"]
    assert report.effect("time", "T2").significant and report.effect("time", "T2").effect_pct > 15
    assert not report.effect("time", "T1").significant


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["simulate", "--users", "100000000000000"], "users must be at most 1,000,000, got 100,000,000,000,000"),
        (
            ["aa", "--runs", "2", "--users", "100000000000000"],
            "users must be at most 1,000,000, got 100,000,000,000,000",
        ),
        (["aa", "--runs", "100000000000", "--users", "10"], "runs must be at most 100,000, got 100,000,000,000"),
    ],
)
def test_counts_too_large_to_draw_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], error: str
) -> None:
    """A MemoryError and an OverflowError with their tracebacks."""
    out = ["--out", str(tmp_path / "log")] if args[0] == "simulate" else []
    assert _one_line_error(capsys, *args, *out) == f"error: {error}"
    assert not (tmp_path / "log").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["report", "--logs", "LOG", "--out", ""],
        ["report", "--logs", "", "--out", "OUT"],
        ["report", "--logs", "LOG", "--pre-logs", "", "--out", "OUT"],
        ["simulate", "--out", ""],
        ["simulate", "--out", "OUT", "--pre-out", ""],
    ],
)
def test_an_empty_path_is_a_one_line_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    """It was the current folder: the report or the log went there, or every file under it was read as a log."""
    assert main(["simulate", "--out", str(tmp_path / "log"), "--users", "200"]) == 0
    monkeypatch.chdir(tmp_path)
    before = _files(tmp_path)
    flag = args[args.index("") - 1]
    args = [{"LOG": str(tmp_path / "log"), "OUT": str(tmp_path / "out")}.get(arg, arg) for arg in args]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.endswith(f"error: argument {flag}: an empty path\n")
    assert _files(tmp_path) == before
