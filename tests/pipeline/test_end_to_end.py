"""The whole loop at tiny scale: world, service over HTTP, LightFM, the A/B test and its report."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from botify.embedded_redis import EmbeddedRedis


def test_the_whole_loop_runs_and_lightfm_beats_sticky_artist(tmp_path):
    out = tmp_path / "run"
    env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}  # the embedded Redis
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "--scale", "tiny", "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]

    day1 = [json.loads(line) for path in (out / "logs" / "day1").iterdir() for line in path.open()]
    assert len(day1) > 5_000 and {event["experiments"]["EXPLORE"] for event in day1} == {"C", "T1", "T2"}
    assert (out / "models" / "lightfm.jsonl").stat().st_size > 0 and (out / "models" / "lightfm.npy").exists()

    report = json.loads((out / "ab" / "HW_2" / "ab_report.json").read_text())
    main = next(e for e in report["effects"] if e["treatment"] == "T1" and e["metric"] == "mean_time_per_session")
    assert main["treatment_mean"] > main["control_mean"]
    assert (out / "ab" / "HW_2" / "ab_test.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    arms = json.loads((out / "ab" / "HW_2_ARMS" / "ab_report.json").read_text())
    assert sorted(arms["arms"]) == ["C", "T1", "T2", "T3"]

    in_process = {
        row["agent"]: row["mean_time"] for row in json.loads((out / "sim" / "headroom.json").read_text())["results"]
    }
    assert in_process["sticky-artist"] < in_process["pipeline.agents:lightfm"] < in_process["oracle"]
    summary = (out / "summary.md").read_text()
    assert "HW_2: LightFM session-aware (T1) vs StickyArtist (C)" in summary and "of the headroom" in summary
    assert "A/A (StickyArtist in both arms)" in summary
    assert not EmbeddedRedis(out / "redis").is_up()  # the run stopped what it started
