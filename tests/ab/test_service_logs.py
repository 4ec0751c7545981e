"""The report on logs the real service wrote: simulator listeners -> botify under gunicorn -> ab.

Pins the contract between botify's event-log writer and the A/B reader (several worker files,
whole-ms timestamps, arms in `experiments`), on the 3-arm EXPLORE experiment.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ab.report import build_report
from botify.registry import EXPERIMENTS

EPISODES = 400


@pytest.fixture(scope="module")
def service_logs(simulate_through_botify) -> Path:
    return simulate_through_botify(seed=3, tracks=500, users=150, episodes=EPISODES, experiment="EXPLORE").logs


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
