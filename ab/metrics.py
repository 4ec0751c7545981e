"""Sessions and user-level metrics: the unit of analysis is the user, as in the course.

Events are sorted by timestamp per user; a session ends at a `last` event (which also carries
the session's last listen). When a `next` and a `last` of a user share a timestamp, the `next`
is taken to come first (it always does within a session). Events after a user's final `last`
belong to a session that never ended and are left out, as the course does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

# The course's table sorts rows by (metric, treatment) descending; listing the metrics in that
# order keeps every table, CSV and plot in the same order.
METRICS: tuple[str, ...] = (
    "tracks",
    "time",
    "sessions",
    "mean_tracks_per_session",
    "mean_time_per_session",
    "mean_request_latency",
)


@dataclass(frozen=True)
class UserMetrics:
    """Per-user metrics (index: user; columns: `arm` and METRICS) and what was dropped on the way."""

    frame: pd.DataFrame
    open_session_events: int
    mixed_arm_users: int

    @property
    def sessions(self) -> int:
        return int(self.frame["sessions"].sum())


def user_metrics(events: pd.DataFrame) -> UserMetrics:
    """Sessionize `events` (see `ab.events`) and aggregate per user.

    time: listened fraction summed over sessions; tracks: listens; sessions: ended sessions;
    mean_request_latency: ms over the user's `next` requests (NaN for a user with none).
    A user seen in more than one arm cannot be attributed and is dropped (counted).
    """
    # Timestamps are whole ms and each worker writes its own file, so a session's final `next` and
    # its `last` can share a timestamp with no order between them: on a tie, `next` comes first.
    frame = events.assign(last=(events["message"] == "last").to_numpy().astype(np.int64))
    frame = frame.sort_values(["user", "timestamp", "last"], kind="stable")
    by_user = frame.groupby("user", sort=False)["last"]
    closed = (by_user.cumsum() - frame["last"]) < by_user.transform("sum")
    frame = frame[closed.to_numpy()]
    is_next = (frame["message"] == "next").to_numpy()
    latency_ms = np.where(is_next, frame["latency"].to_numpy() * 1000.0, 0.0)
    frame = frame.assign(latency_ms=latency_ms, next=is_next)
    grouped = frame.groupby("user")
    users = grouped.agg(
        arm=("arm", "first"),
        arms=("arm", "nunique"),
        time=("time", "sum"),
        tracks=("time", "size"),
        sessions=("last", "sum"),
        latency_ms=("latency_ms", "sum"),
        requests=("next", "sum"),
    )
    mixed = users["arms"] > 1
    users = users[~mixed.to_numpy()]
    users["mean_tracks_per_session"] = users["tracks"] / users["sessions"]
    users["mean_time_per_session"] = users["time"] / users["sessions"]
    users["mean_request_latency"] = users["latency_ms"] / users["requests"].where(users["requests"] > 0)
    users = users.astype({"tracks": np.int64, "sessions": np.int64})
    return UserMetrics(
        frame=users[["arm", *METRICS]],
        open_session_events=int((~closed).sum()),
        mixed_arm_users=int(mixed.sum()),
    )
