from __future__ import annotations

import csv
import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from ab.cli import main
from ab.errors import ABInputError
from ab.metrics import METRICS, user_metrics
from ab.plot import BETTER, FLAT, WORSE, effect_color, effect_label, legend, marker_face, plot_effects, plot_title
from ab.report import ABReport, analyze, build_report
from ab.synthetic import SyntheticDesign, draw_traits, generate_events, write_log
from ab.table import render_markdown

# One seeded four-arm experiment serves most tests: T1 listens 15% longer and is 50% slower,
# T2 is the control again (an A/A arm), T3 listens 20% less. A pre-period feeds CUPED.
EFFECTS = {"T1": 0.15, "T3": -0.20}


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    design = SyntheticDesign(
        users=8000, split={"C": 1, "T1": 1, "T2": 1, "T3": 1}, effect=EFFECTS, latency_effect={"T1": 0.5}
    )
    rng = np.random.default_rng(1)
    traits = draw_traits(design, rng)
    root = tmp_path_factory.mktemp("four_arms")
    write_log(generate_events(design, rng, traits), root / "log", design.experiment, files=3)
    (root / "log" / "worker-2.jsonl").rename(root / "log" / "worker.jsonl.1")  # rotated files are read too
    with (root / "log" / "worker-0.jsonl").open("a") as handle:
        handle.write("{broken\n")
    write_log(generate_events(design, rng, traits, period=0), root / "pre", design.experiment)
    return root / "log", root / "pre"


@pytest.fixture(scope="module")
def report(logs: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> ABReport:
    out = tmp_path_factory.mktemp("report")
    return build_report(logs[0], "HW_2", out, pre_logs=[logs[1]], title="HW_2 synthetic")


def earlier_report_in(folder: Path, report: ABReport) -> Path:
    """`folder` holding the files of the module's report (with CUPED): an earlier report's, without the ~8 s of
    building one again."""
    shutil.copytree(report.outputs["plot"].parent, folder, dirs_exist_ok=True)
    return folder


def test_a_known_effect_is_detected_with_the_right_sign_and_size(report: ABReport) -> None:
    up = report.effect("mean_time_per_session", "T1")
    assert up.significant and up.significant_holm and up.effect_pct > 0
    assert up.lower_pct < 15.0 < up.upper_pct
    time = report.effect("time", "T1", cuped=True)
    assert time.significant_holm and time.lower_pct < 15.0 < time.upper_pct
    latency = report.effect("mean_request_latency", "T1")
    assert latency.significant_holm and latency.lower_pct < 50.0 < latency.upper_pct
    down = report.effect("mean_time_per_session", "T3")
    assert down.significant_holm and down.upper_pct < 0 and down.lower_pct < -20.0 < down.upper_pct
    for arm in ("T1", "T3"):  # the design moves listening, not how many tracks or sessions
        for metric in ("tracks", "sessions", "mean_tracks_per_session"):
            assert not report.effect(metric, arm).significant_holm, (arm, metric)


def test_no_effect_is_not_detected(report: ABReport) -> None:
    # T2 is the control again: Holm keeps the chance of any false call in the family at 5%
    for cuped in (False, True):
        for metric in METRICS:
            assert not report.effect(metric, "T2", cuped=cuped).significant_holm, metric


def test_every_treatment_vs_control_in_the_courses_order(report: ABReport) -> None:
    assert report.arms == ["C", "T1", "T2", "T3"]
    assert [(e.metric, e.treatment) for e in report.effects] == [(m, t) for m in METRICS for t in ("T3", "T2", "T1")]
    assert sum(report.users.values()) == 8000 and not report.srm.mismatch
    assert len(report.power) == 3 * len(METRICS)
    assert report.effects[0].p_holm >= report.effects[0].p_value


def test_report_files_hold_the_table_the_numbers_and_the_plots(report: ABReport) -> None:
    assert report.log_stats is not None and report.log_stats.files == 3 and report.log_stats.malformed == 1
    assert any("malformed" in w for w in report.warnings)
    with report.outputs["csv"].open() as handle:
        rows = list(csv.DictReader(handle))
    header = list(rows[0])
    assert header[:5] == ["treatment", "metric", "effect", "upper", "lower"]
    assert header[5:8] == ["control_mean", "treatment_mean", "significant"]
    assert [(r["metric"], r["treatment"]) for r in rows] == [(e.metric, e.treatment) for e in report.effects]
    assert float(rows[0]["effect"]) == pytest.approx(report.effects[0].effect_pct)
    data = json.loads(report.outputs["json"].read_text())
    assert data["srm"]["mismatch"] is False and data["logs"]["malformed"] == 1
    assert len(data["cuped"]["effects"]) == 3 * len(METRICS)
    assert data["power"]["target_effect_pct"] == 5.0
    markdown = report.outputs["markdown"].read_text()
    assert markdown.startswith("# HW_2 synthetic") and "## CUPED" in markdown and "SRM check" in markdown
    for name in ("plot", "plot_cuped"):
        image = matplotlib.image.imread(report.outputs[name])
        assert image.shape[0] > 800 and image.shape[1] > 800


def test_course_ci_option_reports_the_same_effects_with_its_own_bounds(logs: tuple[Path, Path]) -> None:
    course = build_report(logs[0], "HW_2", ci="course")
    up = course.effect("mean_time_per_session", "T1")
    assert up.ci_method == "course" and up.significant and up.p_value == up.welch_p_value
    assert "CI of the relative effect by the course's Welch CI divided by the control mean," in render_markdown(course)


def test_srm_fires_on_a_skewed_split() -> None:
    design = SyntheticDesign(users=5000, split={"C": 0.56, "T1": 0.44})
    users = user_metrics(generate_events(design, np.random.default_rng(4))).frame
    skewed = analyze(users, "HW_2")
    assert skewed.srm.mismatch and skewed.srm.p_value < 0.001
    assert any("SAMPLE RATIO MISMATCH" in w for w in skewed.warnings)
    assert not analyze(users, "HW_2", split="C=56,T1=44").srm.mismatch


def test_the_cli_prints_the_table_and_writes_the_files(tmp_path: Path) -> None:
    write_log(generate_events(SyntheticDesign(users=400), np.random.default_rng(3)), tmp_path / "log", "HW_2")
    with (tmp_path / "log" / "worker-0.jsonl").open("a") as handle:
        handle.write('{"message": "next"}\n')
    out = tmp_path / "cli"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "ab",
            "report",
            "--logs",
            str(tmp_path / "log"),
            "--experiment",
            "HW_2",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "| T1 | mean_time_per_session |" in run.stdout
    assert run.stderr.startswith("warning: skipped 1 malformed log line(s), e.g. worker-0.jsonl:")
    assert {p.name for p in out.iterdir()} == {"ab_table.md", "ab_table.csv", "ab_report.json", "ab_test.png"}


def _one_line_error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["report", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


def test_bad_input_stops_with_a_one_line_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "events.jsonl").write_text("\n")
    out = str(tmp_path / "out")
    assert _one_line_error(capsys, "--logs", str(empty), "--out", out) == (
        f"error: the logs are empty: no event in {empty}"
    )
    design = SyntheticDesign(users=60, split={"T1": 1, "T2": 1})
    write_log(generate_events(design, np.random.default_rng(0)), tmp_path / "no_control", "HW_2")
    error = _one_line_error(capsys, "--logs", str(tmp_path / "no_control"), "--out", out)
    assert error == "error: experiment HW_2 has no control arm 'C' (arms in the logs: T1, T2)"
    error = _one_line_error(capsys, "--logs", str(tmp_path / "no_control"), "--experiment", "HW_3", "--out", out)
    where = tmp_path / "no_control"
    assert error == f"error: no event in {where} was served under experiment HW_3 (the service ran: HW_2)"
    assert "does not exist" in _one_line_error(capsys, "--logs", str(tmp_path / "missing"), "--out", out)
    assert not (tmp_path / "out").exists()
    run = subprocess.run(
        [sys.executable, "-m", "ab", "report", "--logs", str(empty)], capture_output=True, text=True, check=False
    )
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and "Traceback" not in run.stderr


def test_an_out_folder_inside_a_log_folder_or_under_a_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every file under a log folder is read: a report written there would be read as log lines by the next one."""
    write_log(generate_events(SyntheticDesign(users=60), np.random.default_rng(0)), tmp_path / "log", "HW_2")
    before = sorted(path.name for path in (tmp_path / "log").iterdir())
    inside = tmp_path / "log" / "report"
    assert _one_line_error(capsys, "--logs", str(tmp_path / "log"), "--out", str(inside)) == (
        f"error: --out {inside} is inside the log folder {tmp_path / 'log'}: write the report elsewhere"
    )
    files = [str(path) for path in sorted((tmp_path / "log").iterdir())]  # the same log given file by file
    assert _one_line_error(capsys, "--logs", *files, "--out", str(tmp_path / "log")) == (
        f"error: --out {tmp_path / 'log'} is inside the log folder {tmp_path / 'log'}: write the report elsewhere"
    )
    assert sorted(path.name for path in (tmp_path / "log").iterdir()) == before
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "--logs", str(tmp_path / "log"), "--out", str(tmp_path / "file" / "out")])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.endswith(f"argument --out: {tmp_path / 'file'} is a file, not a folder\n")


def test_an_out_folder_inside_a_folder_linked_into_the_log_folder_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A replica's folder linked into the log folder is read with it: a report written under it was accepted, and
    the next report read its files as malformed log lines."""
    write_log(generate_events(SyntheticDesign(users=60), np.random.default_rng(0)), tmp_path / "replica", "HW_2")
    (tmp_path / "log").mkdir()
    (tmp_path / "log" / "replica").symlink_to(tmp_path / "replica")
    before = sorted(path.name for path in (tmp_path / "replica").iterdir())
    inside = tmp_path / "replica" / "report"
    assert _one_line_error(capsys, "--logs", str(tmp_path / "log"), "--out", str(inside)) == (
        f"error: --out {inside} is inside the log folder {tmp_path / 'log' / 'replica'}: write the report elsewhere"
    )
    assert sorted(path.name for path in (tmp_path / "replica").iterdir()) == before
    assert main(["report", "--logs", str(tmp_path / "log"), "--out", str(tmp_path / "out")]) == 0
    assert json.loads((tmp_path / "out" / "ab_report.json").read_text())["users"] == {"C": 25, "T1": 35}


def test_a_log_file_given_alone_lets_the_report_go_to_a_folder_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only the named file is read: `ab report --logs events.jsonl` in the folder of the file (the default --out,
    results/ab, under it) was refused as "inside the log folder ."."""
    (log,) = write_log(generate_events(SyntheticDesign(users=60), np.random.default_rng(0)), tmp_path, "HW_2", files=1)
    monkeypatch.chdir(tmp_path)
    assert main(["report", "--logs", log.name]) == 0
    assert json.loads((tmp_path / "results" / "ab" / "ab_report.json").read_text())["users"] == {"C": 25, "T1": 35}
    assert "error" not in capsys.readouterr().err


def test_logs_given_twice_are_both_read_and_none_given_is_the_log_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--logs A --logs B` analysed B alone, without a word (argparse kept the last)."""
    first, second = write_log(
        generate_events(SyntheticDesign(users=60), np.random.default_rng(0)), tmp_path / "log", "HW_2"
    )
    monkeypatch.chdir(tmp_path)
    assert main(["report", "--logs", str(first), "--logs", str(second), "--out", "twice"]) == 0
    assert main(["report", "--out", "default"]) == 0
    capsys.readouterr()
    for out in ("twice", "default"):
        assert json.loads((tmp_path / out / "ab_report.json").read_text())["users"] == {"C": 25, "T1": 35}


def test_only_a_control_arm_is_an_input_error() -> None:
    users = user_metrics(generate_events(SyntheticDesign(users=50, split={"C": 1.0}), np.random.default_rng(0)))
    with pytest.raises(ABInputError, match="only the control arm"):
        analyze(users.frame, "HW_2")


def test_a_gzipped_worker_file_cut_short_is_reported_and_the_rest_analysed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_log(generate_events(SyntheticDesign(users=400), np.random.default_rng(3)), tmp_path / "log", "HW_2")
    plain = tmp_path / "log" / "worker-1.jsonl"
    cut = plain.with_name("worker-1.jsonl.gz")
    cut.write_bytes(gzip.compress(plain.read_bytes())[: plain.stat().st_size // 8])
    plain.unlink()
    assert main(["report", "--logs", str(tmp_path / "log"), "--out", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    assert "| T1 | mean_time_per_session |" in captured.out
    assert captured.err.startswith("warning: skipped 1 malformed log line(s), e.g. worker-1.jsonl.gz:")
    assert "gzip data cut short or corrupt" in captured.err.splitlines()[0]


def test_the_same_log_collected_twice_is_read_once_and_said(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_log(generate_events(SyntheticDesign(users=300), np.random.default_rng(5)), tmp_path / "mon", "HW_2")
    files = sorted(path.name for path in (tmp_path / "mon").iterdir())
    assert len(files) > 1
    shutil.copytree(tmp_path / "mon", tmp_path / "tue")  # collected again, one file while it was still written:
    earlier = (tmp_path / "tue" / files[1]).read_bytes().splitlines(keepends=True)
    (tmp_path / "tue" / files[1]).write_bytes(b"".join(earlier[: len(earlier) // 2]))
    (tmp_path / "tue" / files[0]).write_bytes(gzip.compress((tmp_path / "tue" / files[0]).read_bytes()))  # and gzipped
    once = build_report(tmp_path / "mon", "HW_2")
    assert main(["report", "--logs", str(tmp_path / "mon"), str(tmp_path / "tue"), "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"warning: {len(files)} log file(s) repeat lines of another (the same log collected")
    first_lines = len((tmp_path / "mon" / files[0]).read_bytes().splitlines())
    assert err[0].endswith(f"tue/{files[0]}: its first {first_lines} lines are those of {tmp_path / 'mon' / files[0]}, "
                           "read once")  # fmt: skip
    twice = json.loads((tmp_path / "out" / "ab_report.json").read_text())
    assert (twice["users"], twice["sessions"]) == (once.users, once.sessions)


@pytest.mark.parametrize(
    ("split", "error"),
    [
        ("C=50,T1", "error: --split 'C=50,T1' is not like C=50,T1=50 or 50/50"),
        ("C=nan,T1=50", "error: --split 'C=nan,T1=50' has a share that is not a finite number: 'nan'"),
    ],
)
def test_a_bad_split_on_the_command_line_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], split: str, error: str
) -> None:
    write_log(generate_events(SyntheticDesign(users=60), np.random.default_rng(0)), tmp_path / "log", "HW_2")
    args = ("--logs", str(tmp_path / "log"), "--out", str(tmp_path / "out"), "--split", split)
    assert _one_line_error(capsys, *args) == error
    assert not (tmp_path / "out").exists()


def test_a_positional_split_naming_an_arm_the_logs_lack_is_the_named_one_and_a_mismatch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--split 1/1/1` over logs of C and T1 stopped with "has 3 parts", while `C=1,T1=1,T2=1` reported T2's 0 users."""
    write_log(generate_events(SyntheticDesign(users=60), np.random.default_rng(0)), tmp_path / "log", "HW_2")
    checks = []
    for split in ("1/1/1", "C=1,T1=1,T2=1"):
        out = tmp_path / split.replace("/", "_")
        assert main(["report", "--logs", str(tmp_path / "log"), "--out", str(out), "--split", split]) == 0
        checks.append(json.loads((out / "ab_report.json").read_text())["srm"])
    assert checks[0] == checks[1]
    assert checks[0]["observed"]["T2"] == 0 and checks[0]["expected_share"]["T2"] == pytest.approx(1 / 3)
    assert checks[0]["mismatch"] is True and "SAMPLE RATIO MISMATCH" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["aa", "--runs", "0"], "error: runs must be at least 1, got 0"),
        (["aa", "--runs", "-3"], "error: runs must be at least 1, got -3"),
        (["simulate", "--files", "0"], "error: files must be at least 1, got 0"),
        (["simulate", "--files", "-1"], "error: files must be at least 1, got -1"),
    ],
)
def test_counts_below_one_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], error: str
) -> None:
    out = ["--out", str(tmp_path / "log")] if args[0] == "simulate" else []
    assert main([*args, *out, "--users", "50"]) == 2
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", error + "\n")
    assert not (tmp_path / "log").exists()


@pytest.mark.parametrize(
    ("flag", "value", "error"),
    [
        ("--effect", "T1=nan", "error: --effect 'T1=nan' is not a finite number"),
        ("--latency-effect", "T1=inf", "error: --latency-effect 'T1=inf' is not a finite number"),
        ("--latency-effect", "T1=-2", "error: need a latency effect > -1, so a request's latency stays positive"),
    ],
)
def test_effects_that_would_write_an_unreadable_log_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str, error: str
) -> None:
    """Those wrote NaN, Infinity or negative latencies into the log and exited 0; the reader then skipped every line of
    the arm as malformed."""
    assert main(["simulate", "--out", str(tmp_path / "log"), "--users", "50", flag, value]) == 2
    assert capsys.readouterr() == ("", error + "\n")
    assert not (tmp_path / "log").exists()


def test_a_given_title_still_marks_the_cuped_plot() -> None:
    assert plot_title("HW_2", "Day 2", cuped=True) == "Day 2 (CUPED)"
    assert plot_title("HW_2", "Day 2", cuped=False) == "Day 2"
    assert plot_title("HW_2", None, cuped=True) == "A/B test HW_2 (CUPED)"


@pytest.mark.parametrize(
    ("command", "flag", "value"),
    [("simulate", "--users", "-5"), ("simulate", "--seed", "-1"), ("aa", "--seed", "-1"), ("aa", "--users", "1")],
)  # fmt: skip
def test_out_of_range_counts_and_seeds_are_one_line_usage_errors(
    command: str, flag: str, value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = ["--out", str(tmp_path / "out")] if command == "simulate" else []
    with pytest.raises(SystemExit) as exit_info:
        main([command, *extra, flag, value])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"argument {flag}: {value} is not >=" in err
    assert not (tmp_path / "out").exists()


def test_a_listen_whose_latency_overflows_the_metric_is_left_out_of_the_power_section_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A log line may carry any finite latency; 1e308 s is infinite once in ms. The comparison leaves that user out of
    the metric; the power section summed every user's variance and stopped the report with a traceback (NaN ->
    math.ceil)."""
    write_log(generate_events(SyntheticDesign(users=200), np.random.default_rng(7)), tmp_path / "log", "HW_2")
    arms = {"user": 10**9, "time": 0.5, "experiment": "HW_2", "experiments": {"HW_2": "C"}}
    listens = [{"message": "next", "timestamp": 1, "track": 1, "latency": 1e308, "recommendation": 2, **arms},
               {"message": "last", "timestamp": 2, "track": 2, "latency": 0.1, **arms}]  # fmt: skip
    (tmp_path / "log" / "slow.jsonl").write_text("".join(json.dumps(listen) + "\n" for listen in listens))
    assert main(["report", "--logs", str(tmp_path / "log"), "--out", str(tmp_path / "out")]) == 0
    power = json.loads((tmp_path / "out" / "ab_report.json").read_text())["power"]["rows"]
    latency = next(row for row in power if row["metric"] == "mean_request_latency")
    assert latency["users_per_arm"] > 0 and "| T1 | mean_request_latency |" in capsys.readouterr().out


@pytest.mark.parametrize("alpha", ["1e-320", "1e-17"])
def test_an_alpha_too_small_for_a_float_quantile_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], alpha: str
) -> None:
    """1 - alpha / 2 rounds to 1.0: the quantiles were infinite and the report ended with a traceback."""
    write_log(generate_events(SyntheticDesign(users=60), np.random.default_rng(0)), tmp_path / "log", "HW_2")
    args = ("--logs", str(tmp_path / "log"), "--out", str(tmp_path / "out"), "--alpha", alpha)
    assert _one_line_error(capsys, *args) == f"error: alpha must be in [1e-15, 1), got {float(alpha)}"


def test_pre_logs_that_overlap_the_experiment_give_cuped_only_what_came_before_it(logs, report) -> None:
    """A `--pre-logs` folder holding the test's own days (their parent folder, say) would put the treatment's
    effect into CUPED's covariate, and CUPED would subtract part of it."""
    overlapping = build_report(logs[0], "HW_2", pre_logs=[logs[1], logs[0]])
    for metric in METRICS:
        for arm in ("T1", "T3"):
            expected = report.effect(metric, arm, cuped=True)
            assert overlapping.effect(metric, arm, cuped=True).effect_pct == pytest.approx(expected.effect_pct)
    note = "--pre-logs event(s) at or after the experiment's start were left out"
    assert any(note in warning for warning in overlapping.warnings)
    with pytest.raises(ABInputError, match="no event before the experiment's first one"):
        build_report(logs[0], "HW_2", pre_logs=[logs[0]])


def test_an_arm_with_events_but_no_ended_session_is_named_in_a_warning(tmp_path) -> None:
    """An arm whose recommender crashed served listens that never ended a session: the table and the SRM check
    (over the arms with users) cannot show it, so the report says so."""
    design = SyntheticDesign(users=600, split={"C": 1, "T1": 1, "T2": 1})
    rng = np.random.default_rng(5)
    events = generate_events(design, rng)
    crashed = events[~((events["arm"] == "T2") & (events["message"] == "last"))]
    write_log(crashed, tmp_path / "log", design.experiment)
    report = build_report(tmp_path / "log", "HW_2")
    assert report.arms == ["C", "T1"]
    assert any("arm(s) T2 logged events but no ended session" in warning for warning in report.warnings)
    whole = tmp_path / "whole"
    write_log(events, whole, design.experiment)
    assert not any("no ended session" in warning for warning in build_report(whole, "HW_2").warnings)


@pytest.mark.parametrize("crashed_arm", ["T1", "C"])
def test_a_two_arm_test_whose_arm_never_ended_a_session_says_so(tmp_path: Path, crashed_arm: str) -> None:
    """With one of two arms' recommender crashed, the report said the experiment had only the control arm, or no
    control arm, as if the routing were wrong, though the logs held both arms' events."""
    design = SyntheticDesign(users=200)
    events = generate_events(design, np.random.default_rng(5))
    write_log(events[~((events["arm"] == crashed_arm) & (events["message"] == "last"))], tmp_path, design.experiment)
    with pytest.raises(ABInputError) as error:
        build_report(tmp_path, "HW_2")
    assert str(error.value) == (
        f"arm(s) {crashed_arm} of experiment HW_2 logged events but never ended a session: too few arms left to compare"
    )


def test_a_zero_control_mean_is_n_a_in_the_power_table_and_its_rise_is_green_in_the_plot(tmp_path: Path) -> None:
    """A control arm that listened nothing has no relative effect: the power table printed `nan%`, and the plot drew
    a significant rise in red (the sign of a NaN effect) with a `+nan%` label."""
    rng = np.random.default_rng(0)
    users = pd.DataFrame({"arm": pd.array(["C"] * 30 + ["T1"] * 30, dtype="string")})
    for metric in METRICS:
        users[metric] = rng.gamma(2.0, 2.0, size=60) + 1.0
    users.loc[users["arm"] == "C", ["time", "mean_time_per_session"]] = 0.0
    report = analyze(users, "HW_2")
    table = render_markdown(report)
    power_row = [line for line in table.splitlines() if line.startswith("| T1 | time |")][-1]  # the power section's
    assert power_row == "| T1 | time | n/a | n/a |" and "nan" not in table
    rise = report.effect("time")
    assert (
        rise.significant
        and effect_color(rise) == BETTER
        and effect_label(rise) == f"n/a: control mean 0, treatment {rise.treatment_mean:.4g}"
    )
    assert matplotlib.image.imread(plot_effects(report, tmp_path / "ab_test.png")).shape[0] > 0


def test_a_row_significant_only_before_holm_is_grey_and_hollow_in_the_plot_and_says_which_in_the_table(
    tmp_path: Path,
) -> None:
    """Of six tests, one crossing p < 0.05 alone is no finding after Holm: the plot drew it green all the same, and the
    table's only verdict was the unadjusted `significant`."""
    rng = np.random.default_rng(4)
    users = pd.DataFrame({"arm": pd.array(["C"] * 200 + ["T1"] * 200, dtype="string")})
    for metric in METRICS:
        users[metric] = rng.gamma(2.0, 2.0, size=400) + 1.0
    users.loc[users["arm"] == "T1", "time"] *= 1.12
    users.loc[users["arm"] == "T1", "mean_request_latency"] *= 2.0
    report = analyze(users, "HW_2")
    time, latency = report.effect("time"), report.effect("mean_request_latency")
    assert time.significant and time.p_value < 0.05 < time.p_holm and not time.significant_holm
    assert latency.significant_holm
    assert (effect_color(time), marker_face(time)) == (FLAT, "white")
    assert (effect_color(latency), marker_face(latency)) == (WORSE, WORSE)  # twice as slow: no win, whatever its sign
    assert legend(report) == (
        "after Holm over 6 tests: green significantly better, red significantly worse (mean_request_latency: lower "
        "is better),\ngrey not significant (hollow: p < 0.05 before Holm only)"
    )
    table = render_markdown(report)
    assert "`significant` is each test alone, unadjusted (the course's column); `significant_holm` is after" in table
    lines = [line.strip(" |").split(" | ") for line in table.splitlines() if line.startswith("| T1 |")]
    rows = {cells[1]: cells for cells in lines[: len(METRICS)]}  # the effects' table, above the power table
    assert rows["time"][7:] == ["yes", f"{time.p_value:.2g}", f"{time.p_holm:.2g}", "no"]
    assert rows["mean_request_latency"][7:] == ["yes", "<1e-4", "<1e-4", "yes"]
    assert matplotlib.image.imread(plot_effects(report, tmp_path / "ab_test.png")).shape[0] > 0


def test_a_report_without_cuped_removes_the_cuped_plot_an_earlier_report_left(logs, report, tmp_path: Path) -> None:
    """It would pass for this report's in the same folder."""
    assert (earlier_report_in(tmp_path, report) / "ab_test_cuped.png").exists()
    without = build_report(logs[0], "HW_2", out=tmp_path)
    assert "plot_cuped" not in without.outputs and not (tmp_path / "ab_test_cuped.png").exists()


def test_a_report_that_fails_to_write_a_file_leaves_the_earlier_reports_files_as_they_were(
    logs, report, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The table, CSV and JSON were rewritten one by one before the plot failed: new numbers beside the old plots."""
    out = earlier_report_in(tmp_path / "out", report)
    (out / "ab_test.png").unlink()
    (out / "ab_test.png").mkdir()
    earlier = {path.name: path.read_bytes() for path in out.iterdir() if path.is_file()}
    assert set(earlier) == {"ab_table.md", "ab_table.csv", "ab_report.json", "ab_test_cuped.png"}
    again = ("--logs", str(logs[0]), "--out", str(out), "--alpha", "0.1", "--title", "second")
    assert _one_line_error(capsys, *again) == (
        f"error: cannot replace {out / 'ab_test.png'}: it is a folder (no file of this run was written)"
    )
    assert {path.name: path.read_bytes() for path in out.iterdir() if path.is_file()} == earlier
    assert sorted(path.name for path in out.iterdir()) == sorted([*earlier, "ab_test.png"])  # no temporary file left


@pytest.mark.parametrize("existed", [False, True])
def test_a_report_that_fails_to_write_leaves_no_folder_it_made_and_keeps_one_that_was_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, existed: bool
) -> None:
    """The folder was made for the report's first file: a plot that then failed left it behind, empty."""
    write_log(generate_events(SyntheticDesign(users=200), np.random.default_rng(2)), tmp_path / "log", "HW_2")
    out = tmp_path / "results" / "ab"
    if existed:
        out.mkdir(parents=True)

    def no_space(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("ab.outputs.plot_effects", no_space)
    assert _one_line_error(capsys, "--logs", str(tmp_path / "log"), "--out", str(out)) == (
        "error: [Errno 28] No space left on device"
    )
    assert out.is_dir() == existed and (tmp_path / "results").exists() == existed
    assert not existed or list(out.iterdir()) == []


def test_a_title_with_a_dollar_sign_is_plotted_as_it_is(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """matplotlib read `$...$` as TeX math: an unknown command stopped the report with a traceback."""
    write_log(generate_events(SyntheticDesign(users=200), np.random.default_rng(2)), tmp_path / "log", "HW_2")
    out = tmp_path / "out"
    assert main(["report", "--logs", str(tmp_path / "log"), "--out", str(out), "--title", r"cost in $\euro$"]) == 0
    assert capsys.readouterr().out.startswith("# cost in $\\euro$\n")
    assert matplotlib.image.imread(out / "ab_test.png").shape[0] > 0
