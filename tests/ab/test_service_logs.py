"""The report on logs the real service wrote: simulator listeners -> botify under gunicorn -> ab.

Pins the contract between botify's event-log writer and the A/B reader (several worker files,
whole-ms timestamps, arms in `experiments`), on the 3-arm EXPLORE experiment.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ab.report import build_report
from botify.registry import EXPERIMENTS

REPO = Path(__file__).resolve().parents[2]
EPISODES = 400


@pytest.fixture(scope="module")
def service_logs(start_module_botify, tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("ab-world") / "data"
    world = [sys.executable, "-m", "sim.world", "--out", str(data), "--seed", "3", "--tracks", "500", "--users", "150"]
    subprocess.run(world, cwd=REPO, check=True, capture_output=True)
    service = start_module_botify(data, experiment="EXPLORE")
    run = [
        sys.executable,
        "-m",
        "sim.run",
        "--data",
        str(data),
        "--agent",
        "remote",
        "--url",
        service.url,
        "--episodes",
        str(EPISODES),
        "--seed",
        "3",
        "--processes",
        "2",
        "--quiet",
    ]
    subprocess.run(run, cwd=REPO, check=True, capture_output=True)
    service.stop()
    return service.log_dir


def test_the_report_reads_the_services_logs_exactly(service_logs: Path, tmp_path: Path) -> None:
    lines = [json.loads(line) for path in sorted(service_logs.iterdir()) for line in path.read_text().splitlines()]
    report = build_report(service_logs, "EXPLORE", tmp_path / "out")
    assert report.log_stats is not None and report.log_stats.malformed == 0
    assert report.arms == ["C", "T1", "T2"]
    # every simulated session ends with /last, and every served request is one listen
    assert sum(report.sessions.values()) == EPISODES == sum(1 for e in lines if e["message"] == "last")
    tracks = report.effect("tracks", "T1")
    explore = EXPERIMENTS["EXPLORE"]
    users = {e["user"] for e in lines}
    assert sum(report.users.values()) == len(users)
    assert {arm: sum(1 for u in users if explore.arm(u) == arm) for arm in report.arms} == report.users
    assert tracks.control_n == report.users["C"] and tracks.treatment_n == report.users["T1"]
    assert (report.outputs["plot"]).stat().st_size > 10_000
    # random (T2) keeps listeners far less than StickyArtist (C): the analysis sees it on real logs
    random_arm = report.effect("mean_time_per_session", "T2")
    assert random_arm.significant and random_arm.effect_pct < 0
