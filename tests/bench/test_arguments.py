"""Bad arguments to a benchmark stop it at once with one argparse line (exit 2): no traceback, no empty run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
FILE = "{file}"  # stands for a file the test writes: no folder can be made under it
SCRIPTS = sorted(path.stem for path in BENCH.glob("*.py") if 'if __name__ == "__main__":' in path.read_text())
HEAVY = {"numpy", "flask"}  # what the benchmarks' work imports (pandas, LightFM, Optuna, the simulator: numpy too)


@pytest.mark.parametrize(
    ("script", "args", "message"),
    [
        ("sim_speed", ["--episodes", "0"], "argument --episodes: 0 is not >= 1"),
        ("sim_speed", ["--episodes", "-5"], "argument --episodes: -5 is not >= 1"),
        ("sim_speed", ["--seed", "-1"], "argument --seed: -1 is not >= 0"),
        ("sim_speed", ["--out", f"{FILE}/x.json"], f"argument --out: {FILE} is a file, not a folder"),
        ("sim_speed", ["--out", "{folder}"], "argument --out: {folder} is a folder, not a file"),
        ("ab_report", ["--users", "0"], "argument --users: 0 is not >= 100"),
        ("ab_report", ["--users", "-1"], "argument --users: -1 is not >= 100"),
        ("ab_report", ["--aa-runs", "-1"], "argument --aa-runs: -1 is not >= 1"),
        ("sim_remote", ["--episodes", "0"], "argument --episodes: 0 is not >= 100"),
        ("sim_remote", ["--rounds", "0"], "argument --rounds: 0 is not >= 1"),
        ("sim_remote", ["--wrk-seconds", "0"], "argument --wrk-seconds: 0 is not >= 1"),
        ("models_scale", ["--users", "0"], "argument --users: 0 is not >= 1"),
        ("models_scale", ["--tracks", "-1"], "argument --tracks: -1 is not >= 1"),
        ("models_scale", ["--work", FILE], f"argument --work: {FILE} is a file, not a folder"),
        ("models_scale", ["--out", "{folder}"], "argument --out: {folder} is a folder, not a file"),
        ("serving_inprocess", ["--world", FILE], f"argument --world: {FILE} is a file, not a folder"),
        ("serving_inprocess", ["--world", f"{FILE}/world"], f"argument --world: {FILE} is a file, not a folder"),
        ("serving_load", ["--connections", "0"], "argument --connections: 0 is not >= 1"),
        ("serving_nginx", ["--connections", "0"], "argument --connections: 0 is not >= 1"),
        ("serving_profile", ["--top", "0"], "argument --top: 0 is not >= 1"),
    ],
)
def test_a_bad_argument_is_one_line_and_exit_2(tmp_path, script, args, message):
    (tmp_path / "file").write_text("a file, not a folder")
    paths = {"file": tmp_path / "file", "folder": tmp_path}
    args, message = [a.format(**paths) for a in args], message.format(**paths)
    finished = subprocess.run(
        [sys.executable, str(BENCH / f"{script}.py"), *args], capture_output=True, text=True, timeout=60
    )
    assert (finished.returncode, finished.stdout) == (2, "")
    assert finished.stderr.startswith(f"{script}.py: error: {message}")
    assert finished.stderr.count("\n") == 1
    assert (tmp_path / "file").read_text() == "a file, not a folder"


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize(("args", "status"), [(["--help"], 0), (["--no-such-flag"], 2)])
def test_help_and_a_bad_argument_answer_before_the_work_is_imported(script, args, status):
    """Not seconds of importing numpy, LightFM or Flask to print a usage line: the arguments are parsed first."""
    finished = subprocess.run(
        [sys.executable, "-X", "importtime", str(BENCH / f"{script}.py"), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    imported = {
        line.rsplit("|", 1)[-1].strip() for line in finished.stderr.splitlines() if line.startswith("import time:")
    }
    assert finished.returncode == status
    assert "argparse" in imported  # -X importtime reported what the script imported
    assert imported & HEAVY == set()
