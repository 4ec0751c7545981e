from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from ab.aa import simulate_aa
from ab.cli import main
from ab.metrics import METRICS
from ab.synthetic import SyntheticDesign

RUNS = 400


def test_aa_experiments_are_significant_at_the_nominal_rate() -> None:
    result = simulate_aa(RUNS, np.random.default_rng(2026), SyntheticDesign(users=400))
    # 99.9% of Binomial(400, 0.05) falls in this range: a sound test lands inside, a miscalibrated
    # one (e.g. session-level instead of user-level variance) does not.
    low, high = stats.binom.interval(0.999, RUNS, 0.05)
    for metric in METRICS:
        assert low <= result.false_positives(metric) <= high, (metric, result.false_positives(metric))
        # under no effect p-values are uniform
        assert stats.kstest(result.p_values[metric], "uniform").pvalue > 0.001, metric
    # without correction six metrics give far more than 5% of experiments a "winner"; Holm brings it back
    assert result.any_significant > high
    assert result.any_significant_holm <= high


def test_too_few_users_for_an_aa_simulation_stop_before_any_run(capsys: pytest.CaptureFixture[str]) -> None:
    """Arms drawn at random left one of 12 users' runs an arm of 1 user: the simulation stopped there, after
    the runs before it, with "arm T1 has 1 user(s) with a value of tracks"."""
    assert main(["aa", "--runs", "400", "--users", "12"]) == 2
    assert (
        capsys.readouterr().err == "error: users must be at least 40 (an arm of fewer than 2 has no variance), got 12\n"
    )
    result = simulate_aa(3, np.random.default_rng(0), SyntheticDesign(users=40))
    assert len(result.p_values["tracks"]) == 3


def test_ctrl_c_during_a_long_simulation_is_one_line(tmp_path: Path) -> None:
    """`ab` let the KeyboardInterrupt through: a traceback from deep inside pandas, exit code -2."""
    run = subprocess.Popen(
        [sys.executable, "-m", "ab", "aa", "--runs", "100000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        maps = Path(f"/proc/{run.pid}/maps")
        while "pandas" not in maps.read_text() and time.monotonic() < deadline:  # inside the command, runs under way
            time.sleep(0.1)
        time.sleep(0.5)
        run.send_signal(signal.SIGINT)
        out, err = run.communicate(timeout=60)
    finally:
        run.kill()
        run.wait()
    assert (run.returncode, err, out) == (130, "ab: interrupted\n", "")
