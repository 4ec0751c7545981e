"""The whole loop at tiny scale: world, service over HTTP, LightFM, the A/B test and its report."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from botify.embedded_redis import EmbeddedRedis
from pipeline.run import REPRODUCIBLE, SCALES, Run, forget_last_results

from .conftest import tiny_pipeline


def run_tiny(*runs: tuple[Path, dict[str, str] | None]) -> None:
    """Default (reproducible) tiny runs, each `(out, shell)`, to their end: side by side, as one keeps about one
    core busy (its simulator and its one service worker take turns)."""
    started = [tiny_pipeline(out, stderr=subprocess.PIPE, parallel=False, shell=shell) for out, shell in runs]
    try:
        errors = [run.communicate(timeout=600)[1] for run in started]
    except BaseException:  # one stuck (or Ctrl-C): stop both, each stopping what it started
        for run in started:
            run.terminate()
            run.communicate(timeout=60)
        raise
    for run, stderr in zip(started, errors, strict=True):
        assert run.returncode == 0, stderr[-2000:]


def logged(out: Path, day: str) -> list[dict]:
    """A day's events in the order they were logged (one service worker: one file)."""
    return [json.loads(line) for path in sorted((out / "logs" / day).iterdir()) for line in path.open()]


def measured_apart(event: dict) -> dict:
    """An event without what is measured rather than drawn: when it happened and how long it took."""
    return {key: value for key, value in event.items() if key not in ("timestamp", "latency")}


HOLM = ("p_holm", "significant_holm")  # Holm's step-down ranks every p-value of the family, latency's too


def effects_apart_from_latency(out: Path, experiment: str) -> list[dict]:
    """The report's effects but latency's, and without what latency's p-values move (Holm's adjustment)."""
    report = json.loads((out / "ab" / experiment / "ab_report.json").read_text())
    return [
        {key: value for key, value in effect.items() if key not in HOLM}
        for effect in report["effects"]
        if effect["metric"] != "mean_request_latency"
    ]


# What a user's shell may hold that changed the figures: botify's settings reached the run's service (a rotated log
# lost most of a day's events), and gunicorn's command-line variable overrode its one worker.
SHELL = {
    "BOTIFY_SEED": "random",
    "BOTIFY_FALLBACK": "random",
    "BOTIFY_LOG_MAX_BYTES": "900000",
    "BOTIFY_LOG_BACKUPS": "1",
    "BOTIFY_THREADS": "3",
    "GUNICORN_CMD_ARGS": "--workers 3",
    "WEB_CONCURRENCY": "3",
}


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny run, and a rerun with the same seed under a shell holding `SHELL`'s settings."""
    root = tmp_path_factory.mktemp("pipeline")
    run_tiny((root / "run", None), (root / "rerun", SHELL))
    return root / "run", root / "rerun"


@pytest.fixture(scope="module")
def tiny_run(tiny_runs) -> Path:
    return tiny_runs[0]


def test_the_whole_loop_runs_and_lightfm_beats_sticky_artist(tiny_run):
    out = tiny_run
    day1 = logged(out, "day1")
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


def test_a_rerun_with_the_same_seed_gives_the_same_logs_models_and_results(tiny_runs):
    """The default run: one service worker, one sequential simulator, LightFM on one thread; whatever the shell's
    botify and gunicorn settings."""
    first, second = tiny_runs
    assert [len(list((second / "logs" / day).iterdir())) for day in ("day1", "HW_2")] == [1, 1]  # one worker

    for day in ("day1", "HW_2", "HW_2_ARMS", "AA"):
        events = logged(first, day)
        assert len(events) > 1_000
        assert [measured_apart(e) for e in events] == [measured_apart(e) for e in logged(second, day)]
    for export in ("lightfm.jsonl", "lightfm.npy", "lightfm_nofeat.jsonl", "lightfm_nofeat.npy"):
        assert (first / "models" / export).read_bytes() == (second / "models" / export).read_bytes()
    for experiment in ("HW_2", "HW_2_ARMS", "AA"):
        assert effects_apart_from_latency(first, experiment) == effects_apart_from_latency(second, experiment)
    headroom = [json.loads((out / "sim" / "headroom.json").read_text())["results"] for out in (first, second)]
    assert headroom[0] == headroom[1]


def test_a_rerun_in_the_same_folder_first_forgets_the_last_runs_results(tiny_run, tmp_path):
    """A rerun that failed half-way left the last run's summary, reports and logs beside its own (another seed's
    summary passed for its result), and a rerun's tuning resumed the last run's Optuna study."""
    out = tmp_path / "again"
    shutil.copytree(tiny_run, out, ignore=shutil.ignore_patterns("redis"))
    (out / "notes.txt").write_text("the user's own")
    forget_last_results(Run(out, "tiny", SCALES["tiny"], 0, REPRODUCIBLE, "redis://unused"))
    assert not (out / "summary.md").exists()
    assert list((out / "ab").iterdir()) == [] and list((out / "sim").iterdir()) == []
    assert all(list((out / "logs" / day).iterdir()) == [] for day in ("day1", "HW_2", "HW_2_ARMS", "AA"))
    assert sorted(path.name for path in (out / "models").iterdir()) == sorted(
        f"{name}.{kind}" for name in ("lightfm", "lightfm_nofeat") for kind in ("jsonl", "npy", "catalog.json")
    )  # the exports stay: `models` replaces them, both models together
    assert (out / "notes.txt").read_text() == "the user's own" and (out / "data" / "tracks.json").exists()
