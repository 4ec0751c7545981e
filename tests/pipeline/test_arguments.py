"""Bad arguments stop the run at once, with one line, before any step has started."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from botify.process import free_port


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--episodes", "0"], "--episodes must be at least 1"),
        (["--episodes", "39"], "--episodes must be at least 40 (10 per arm of the day-2 experiment"),
        (["--trials", "0"], "--trials must be at least 1"),
        (["--day1-episodes", "-5"], "--day1-episodes must be at least 1"),
        (["--epochs", "0"], "--epochs must be at least 1"),
        (["--min-positives", "0"], "--min-positives must be at least 1"),
        (["--parallel", "2"], "unrecognized arguments: 2"),
        (["--seed", "-1"], "--seed must not be negative"),
        (["--scale", "huge"], "argument --scale: invalid choice: 'huge'"),
        (["--out", ""], "argument --out: an empty path"),
    ],
)
def test_bad_arguments_exit_with_one_line_before_any_step(tmp_path, args, message):
    out = tmp_path / "run"
    finished = subprocess.run(
        [sys.executable, "-m", "pipeline", "--scale", "tiny", "--out", str(out), *args], capture_output=True, text=True
    )
    assert finished.returncode == 2
    assert finished.stderr.startswith("python -m pipeline: error: ") and finished.stderr.count("\n") == 1
    assert message in finished.stderr
    assert not out.exists()


def test_an_out_folder_that_cannot_be_made_is_one_line(tmp_path):
    (tmp_path / "file").write_text("a file, not a folder")
    out = tmp_path / "file" / "run"
    finished = subprocess.run(
        [sys.executable, "-m", "pipeline", "--scale", "tiny", "--out", str(out)], capture_output=True, text=True
    )
    assert (finished.returncode, finished.stdout) == (1, "")
    assert finished.stderr == f"pipeline: cannot use --out {out}: Not a directory\n"


def test_an_out_that_is_a_file_is_one_line_saying_so(tmp_path):
    out = tmp_path / "file"
    out.write_text("a file, not a folder")
    finished = subprocess.run(
        [sys.executable, "-m", "pipeline", "--scale", "tiny", "--out", str(out)], capture_output=True, text=True
    )
    assert (finished.returncode, finished.stdout) == (1, "")
    assert finished.stderr == f"pipeline: cannot use --out {out}: not a folder\n"
    assert out.read_text() == "a file, not a folder"


def test_an_unreachable_redis_url_stops_the_rerun_before_the_last_results_are_removed(tmp_path):
    out = tmp_path / "run"
    kept = [out / "summary.md", out / "ab" / "HW_2" / "ab_table.md", out / "logs" / "day1" / "events.jsonl"]
    for path in kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("the last run's")
    finished = subprocess.run(
        [sys.executable, "-m", "pipeline", "--scale", "tiny", "--out", str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, "REDIS_URL": f"redis://:secret@127.0.0.1:{free_port()}/0"},
    )
    assert finished.returncode == 1
    assert finished.stderr.startswith("pipeline: cannot use the Redis of REDIS_URL (127.0.0.1:")
    assert finished.stderr.count("\n") == 1 and "secret" not in finished.stderr
    assert [path.read_text() for path in kept] == ["the last run's"] * 3


@pytest.mark.parametrize("url", ["redis://127.0.0.1:abc/0", "redis://127.0.0.1:99999/0", "nope"])
def test_a_redis_url_that_cannot_be_read_is_one_line(tmp_path, url):
    finished = subprocess.run(
        [sys.executable, "-m", "pipeline", "--scale", "tiny", "--out", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        env={**os.environ, "REDIS_URL": url},
    )
    assert finished.returncode == 1
    assert finished.stderr.startswith(f"pipeline: cannot use the Redis of REDIS_URL ({url.split('://')[-1]}): ")
    assert finished.stderr.count("\n") == 1, finished.stderr
