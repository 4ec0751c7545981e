"""bench/models_scale.py runs on the models package as it is (at a tiny size, so an API change breaks a test)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "models_scale.py"


def test_every_stage_runs_at_a_tiny_size(tmp_path):
    out = tmp_path / "results" / "bench" / "scale.json"  # a folder made for it
    size = ["--listens", "20000", "--users", "200", "--tracks", "1000"]
    budget = ["--epochs", "2", "--trials", "1", "--tune-epochs", "1", "--eval-users", "20", "--threads", "1"]
    finished = subprocess.run(
        [sys.executable, str(BENCH), *size, *budget, "--work", str(tmp_path / "work"), "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert finished.returncode == 0, finished.stderr
    result = json.loads(out.read_text())
    assert result["scale"]["tracks"] == 1000 and result["scale"]["train_positives"] > 0
    assert result["monitored_users"] == 20
    assert set(result["per_epoch"]) == {"lightfm_nofeat", "lightfm"}
    assert 0 <= result["per_epoch"]["lightfm"]["precision@10"] <= 1
    assert "tuning 1 trials x <= 1 epochs" in result["timings_s"]
    assert f"export top-100 for {result['scale']['users']} users x 1000 tracks" in result["timings_s"]
    assert "| TopPop |" in finished.stdout
    assert (tmp_path / "work" / "data" / "tracks.json").exists()  # --work keeps the synthesized world


def test_a_world_too_small_to_train_on_is_one_line(tmp_path):
    finished = subprocess.run(
        [sys.executable, str(BENCH), "--listens", "100", "--users", "10", "--tracks", "50", "--trials", "0"],
        capture_output=True,
        text=True,
    )
    assert finished.returncode == 1
    assert finished.stderr.splitlines()[-1].startswith("models_scale: error: no positives left")
    assert "Traceback" not in finished.stderr
