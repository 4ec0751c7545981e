from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ab.events import UNKNOWN, events_frame
from ab.metrics import METRICS, user_metrics
from ab.synthetic import SyntheticDesign, generate_events


def _events(
    rows: list[tuple[int, int, str, float, float, str | None]],
    chain: list[tuple[int, int]] | None = None,
    sources: list[int] | None = None,
) -> pd.DataFrame:
    """rows: (user, timestamp, message, time, latency seconds, arm), in the order read; chain: each row's (track,
    recommendation), by default track 1 and no recommendation logged; sources: each row's file, by default unknown."""
    chain = chain or [(1, UNKNOWN)] * len(rows)
    return events_frame(
        {
            "user": [r[0] for r in rows],
            "timestamp": [r[1] for r in rows],
            "message": [r[2] for r in rows],
            "track": [c[0] for c in chain],
            "time": [r[3] for r in rows],
            "latency": [r[4] for r in rows],
            "recommendation": [c[1] for c in chain],
            "arm": [r[5] for r in rows],
            "source": sources,
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
    assert one["mean_request_latency"] == pytest.approx(2.2)  # ms over the five requests, `last` included
    two = metrics.frame.loc[2]
    assert two["sessions"] == 1 and two["tracks"] == 1 and two["mean_request_latency"] == pytest.approx(5.0)
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


def test_the_logged_chain_orders_a_tie_of_a_last_and_the_next_sessions_first_next() -> None:
    # user 1: a session (start track 7 -> recommended 8, played, ended) and, in the `last`'s millisecond, the
    # first `next` of a new session (start track 30 -> recommended 31) that never ends; user 2: the same tie
    # within one session (its final `next` recommended 12, whose listen the `last` reports).
    rows = [
        (1, 10, "next", 0.5, 0.001, "C"),
        (1, 20, "next", 0.75, 0.001, "C"),
        (1, 20, "last", 0.25, 0.001, "C"),
        (2, 10, "next", 0.5, 0.001, "C"),
        (2, 20, "last", 0.25, 0.001, "C"),
        (2, 20, "next", 1.0, 0.001, "C"),
    ]
    chain = [(7, 8), (30, 31), (8, UNKNOWN), (10, 11), (12, UNKNOWN), (11, 12)]
    metrics = user_metrics(_events(rows, chain))
    one, two = metrics.frame.loc[1], metrics.frame.loc[2]
    assert one["sessions"] == 1 and one["tracks"] == 2 and one["time"] == pytest.approx(0.75)
    assert two["sessions"] == 1 and two["tracks"] == 3 and two["time"] == pytest.approx(1.75)
    assert metrics.open_session_events == 1


def test_a_chain_of_several_requests_in_the_lasts_millisecond_stays_in_its_session() -> None:
    # one millisecond: start track 100 -> recommended 2, played -> recommended 3, played and the session ended;
    # a new session's first `next` (start track 50 -> 51) in the same millisecond goes after it
    rows = [
        (1, 20, "last", 0.25, 0.001, "C"),
        (1, 20, "next", 0.5, 0.001, "C"),
        (1, 20, "next", 1.0, 0.001, "C"),
        (1, 20, "next", 0.75, 0.001, "C"),
    ]
    chain = [(3, UNKNOWN), (2, 3), (100, 2), (50, 51)]
    metrics = user_metrics(_events(rows, chain))
    one = metrics.frame.loc[1]
    assert one["sessions"] == 1 and one["tracks"] == 3 and one["time"] == pytest.approx(1.75)
    assert metrics.open_session_events == 1


@pytest.mark.parametrize(("sources", "first_session_tracks"), [([0, 0, 0], 2), ([0, 0, 1], 3), (None, 3)])
def test_a_tie_within_one_file_keeps_the_files_order_and_across_files_follows_the_chain(
    sources, first_session_tracks
) -> None:
    """A session (start track 7 -> recommended 8, played, ended) and, in the `last`'s millisecond, a new session
    whose first `next` (start track 30) was recommended 8 again, as if it continued the chain. One worker's file
    says the `last` came first; across files (or files unknown) only the chain can tell, and it is fooled."""
    rows = [(1, 10, "next", 0.5, 0.001, "C"), (1, 20, "last", 0.25, 0.001, "C"), (1, 20, "next", 0.75, 0.001, "C")]
    chain = [(7, 8), (8, UNKNOWN), (30, 8)]
    metrics = user_metrics(_events(rows, chain, sources))
    assert metrics.frame.loc[1, "tracks"] == first_session_tracks
    assert metrics.open_session_events == 3 - first_session_tracks


@pytest.mark.parametrize(("sources", "first_session_tracks"), [([0, 0, 0], 2), ([0, 0, 1], 3), (None, 3)])
def test_a_tie_without_logged_recommendations_keeps_one_files_order_too(sources, first_session_tracks) -> None:
    """The same session end and next session start in one millisecond, from a log without recommendations: one
    worker's file still says the `last` came first; across files, a `next` goes before its tied `last`."""
    rows = [(1, 10, "next", 0.5, 0.001, "C"), (1, 20, "last", 0.25, 0.001, "C"), (1, 20, "next", 0.75, 0.001, "C")]
    metrics = user_metrics(_events(rows, sources=sources))
    assert metrics.frame.loc[1, "tracks"] == first_session_tracks
    assert metrics.open_session_events == 3 - first_session_tracks


def test_a_user_seen_in_two_arms_is_dropped() -> None:
    events = _events(
        [(1, 1, "last", 0.5, 0.001, "C"), (1, 2, "last", 0.5, 0.001, "T1"), (2, 1, "last", 0.5, 0.001, "C")]
    )
    metrics = user_metrics(events)
    assert metrics.frame.index.tolist() == [2]
    assert metrics.mixed_arm_users == 1


def test_a_user_whose_other_arm_is_only_in_an_open_session_is_still_mixed() -> None:
    events = _events(
        [(1, 1, "last", 0.5, 0.001, "C"), (1, 2, "next", 0.5, 0.001, "T1"), (2, 1, "last", 0.5, 0.001, "C")]
    )
    metrics = user_metrics(events)
    assert metrics.frame.index.tolist() == [2]
    assert metrics.mixed_arm_users == 1


def test_user_metrics_match_a_plain_per_event_loop() -> None:
    events = generate_events(SyntheticDesign(users=300), np.random.default_rng(5))
    expected: dict[int, dict[str, float]] = {}
    for user, part in events.sort_values(["user", "timestamp"], kind="stable").groupby("user"):
        sessions = tracks = 0
        time = latency = 0.0
        pending: list[tuple[str, float, float]] = []
        for row in part.itertuples():
            pending.append((row.message, row.time, row.latency))
            if row.message == "last":
                sessions += 1
                tracks += len(pending)
                time += sum(t for _, t, _ in pending)
                latency += sum(lat * 1000 for _, _, lat in pending)
                pending = []
        expected[user] = {
            "sessions": sessions,
            "tracks": tracks,
            "time": time,
            "mean_request_latency": latency / tracks,
            "mean_time_per_session": time / sessions,
            "mean_tracks_per_session": tracks / sessions,
        }
    frame = user_metrics(events).frame
    assert len(frame) == len(expected) == 300
    for user, values in expected.items():
        for metric, value in values.items():
            assert frame.loc[user, metric] == pytest.approx(value, nan_ok=True), (user, metric)
