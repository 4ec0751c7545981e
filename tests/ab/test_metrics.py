from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ab.events import events_frame
from ab.metrics import METRICS, user_metrics
from ab.synthetic import SyntheticDesign, generate_events


def _events(rows: list[tuple[int, int, str, float, float, str | None]]) -> pd.DataFrame:
    """rows: (user, timestamp, message, time, latency seconds, arm)."""
    return events_frame(
        {
            "user": [r[0] for r in rows],
            "timestamp": [r[1] for r in rows],
            "message": [r[2] for r in rows],
            "track": [1] * len(rows),
            "time": [r[3] for r in rows],
            "latency": [r[4] for r in rows],
            "arm": [r[5] for r in rows],
        }
    )


def test_sessions_end_at_last_and_metrics_are_the_courses() -> None:
    events = _events(
        [  # deliberately out of order, as several worker files interleave
            (1, 30, "last", 0.2, 0.001, "T1"),
            (1, 10, "next", 0.5, 0.002, "T1"),
            (1, 20, "next", 1.0, 0.004, "T1"),
            (1, 50, "last", 0.1, 0.001, "T1"),
            (1, 40, "next", 0.3, 0.003, "T1"),
            (1, 60, "next", 0.9, 0.009, "T1"),  # a session that never ended
            (2, 15, "last", 0.4, 0.005, "C"),
        ]
    )
    metrics = user_metrics(events)
    one = metrics.frame.loc[1]
    assert one["arm"] == "T1"
    assert one["sessions"] == 2 and one["tracks"] == 5
    assert one["time"] == pytest.approx(2.1)
    assert one["mean_tracks_per_session"] == pytest.approx(2.5)
    assert one["mean_time_per_session"] == pytest.approx(1.05)
    assert one["mean_request_latency"] == pytest.approx(3.0)  # ms over the three `next` requests
    two = metrics.frame.loc[2]
    assert two["sessions"] == 1 and two["tracks"] == 1 and math.isnan(two["mean_request_latency"])
    assert metrics.open_session_events == 1
    assert metrics.sessions == 3
    assert list(metrics.frame.columns) == ["arm", *METRICS]


def test_a_next_and_a_last_in_the_same_millisecond_stay_in_one_session() -> None:
    # two worker files, the one holding the `last` read first: the tie must not split the session
    events = _events(
        [(1, 20, "last", 0.3, 0.001, "C"), (1, 10, "next", 1.0, 0.002, "C"), (1, 20, "next", 0.5, 0.002, "C")]
    )
    one = user_metrics(events).frame.loc[1]
    assert one["sessions"] == 1 and one["tracks"] == 3 and one["time"] == pytest.approx(1.8)


def test_a_user_seen_in_two_arms_is_dropped() -> None:
    events = _events(
        [(1, 1, "last", 0.5, 0.001, "C"), (1, 2, "last", 0.5, 0.001, "T1"), (2, 1, "last", 0.5, 0.001, "C")]
    )
    metrics = user_metrics(events)
    assert metrics.frame.index.tolist() == [2]
    assert metrics.mixed_arm_users == 1


def test_user_metrics_match_a_plain_per_event_loop() -> None:
    events = generate_events(SyntheticDesign(users=300), np.random.default_rng(5))
    expected: dict[int, dict[str, float]] = {}
    for user, part in events.sort_values(["user", "timestamp"], kind="stable").groupby("user"):
        sessions = tracks = nexts = 0
        time = latency = 0.0
        pending: list[tuple[str, float, float]] = []
        for row in part.itertuples():
            pending.append((row.message, row.time, row.latency))
            if row.message == "last":
                sessions += 1
                tracks += len(pending)
                time += sum(t for _, t, _ in pending)
                latency += sum(lat * 1000 for m, _, lat in pending if m == "next")
                nexts += sum(1 for m, _, _ in pending if m == "next")
                pending = []
        expected[user] = {
            "sessions": sessions,
            "tracks": tracks,
            "time": time,
            "mean_request_latency": latency / nexts if nexts else math.nan,
            "mean_time_per_session": time / sessions,
            "mean_tracks_per_session": tracks / sessions,
        }
    frame = user_metrics(events).frame
    assert len(frame) == len(expected) == 300
    for user, values in expected.items():
        for metric, value in values.items():
            assert frame.loc[user, metric] == pytest.approx(value, nan_ok=True), (user, metric)
