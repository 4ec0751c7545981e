"""Sessions and user-level metrics: the unit of analysis is the user, as in the course.

Events are sorted by timestamp per user; a session ends at a `last` event (which also carries
the session's last listen). Events after a user's final `last` belong to a session that never
ended and are left out, as the course does.

Timestamps are whole ms, so a `next` and a `last` of a user can share a timestamp. Each worker writes its own
file, in the order it served: when every event of such a tie comes from one file, that order is the truth. A tie
across files (a user's sessions served by two workers) has no order between them but the log's own chain: a
`last` reports the listen of the track its session's final `next` recommended. A tied `next` whose recommendation
is the `last`'s track comes before it, and so does one whose recommendation is such a `next`'s track, back along
the chain; a tied `next` off the chain starts the next session and comes after it. A log without recommendations
puts the `next` first (the far more common case).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ab.events import UNKNOWN

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
LOWER_IS_BETTER = frozenset({"mean_request_latency"})  # the metrics a treatment improves by lowering them


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

    time: listened fraction summed over sessions; tracks: listens (one per event); sessions: ended
    sessions; mean_request_latency: ms per request, `/next` and `/last` alike (the course's: latency
    summed over the events / tracks). A user seen in more than one arm, in any event, cannot be
    attributed and is dropped (counted).
    """
    mixed = events.groupby("user")["arm"].nunique() > 1
    frame = events[~events["user"].isin(mixed.index[mixed.to_numpy()]).to_numpy()]
    frame = frame.assign(last=(frame["message"] == "last").to_numpy().astype(np.int64))
    frame = frame.assign(order=_tie_order(frame)).sort_values(["user", "timestamp", "order"], kind="stable")
    by_user = frame.groupby("user", sort=False)["last"]
    closed = (by_user.cumsum() - frame["last"]) < by_user.transform("sum")
    frame = frame[closed.to_numpy()]
    users = (
        frame.assign(latency_ms=frame["latency"] * 1000.0)
        .groupby("user")
        .agg(
            arm=("arm", "first"),
            time=("time", "sum"),
            tracks=("time", "size"),
            sessions=("last", "sum"),
            latency_ms=("latency_ms", "sum"),
        )
    )
    users["mean_tracks_per_session"] = users["tracks"] / users["sessions"]
    users["mean_time_per_session"] = users["time"] / users["sessions"]
    users["mean_request_latency"] = users["latency_ms"] / users["tracks"]
    users = users.astype({"tracks": np.int64, "sessions": np.int64})
    return UserMetrics(
        frame=users[["arm", *METRICS]],
        open_session_events=int((~closed).sum()),
        mixed_arm_users=int(mixed.sum()),
    )


def _tie_order(frame: pd.DataFrame) -> np.ndarray:
    """Within one (user, timestamp) read from one file: 0 for every event (the file's order stands). Across
    files: 0 for a `next` that goes before a tied `last`, 1 for a `last`, 2 for a `next` that recommended
    something other than every tied `last`'s track (it starts the next session)."""
    order, tied = _chain_order(frame)
    if len(tied) == 0:
        return order
    user, timestamp, source = (frame[name].to_numpy() for name in ("user", "timestamp", "source"))
    lasts = np.flatnonzero(order == 1)
    tied_at = pd.MultiIndex.from_arrays([user[tied], timestamp[tied]])
    members = np.concatenate([tied, lasts[pd.MultiIndex.from_arrays([user[lasts], timestamp[lasts]]).isin(tied_at)]])
    at = pd.MultiIndex.from_arrays([user[members], timestamp[members]])
    files = pd.Series(source[members], index=at).groupby(level=[0, 1]).agg(["min", "max"])
    one_file = files.index[((files["min"] == files["max"]) & (files["min"] != UNKNOWN)).to_numpy()]
    order[members[at.isin(one_file)]] = 0
    return order


def _chain_order(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """`_tie_order` by the logged chain alone, and the `next`s that share their millisecond with a `last` (with a
    logged recommendation or not: the one-file rule orders them all)."""
    user, timestamp = frame["user"].to_numpy(), frame["timestamp"].to_numpy()
    track, recommendation = frame["track"].to_numpy(), frame["recommendation"].to_numpy()
    order = frame["last"].to_numpy().copy()
    is_last = order == 1
    nexts = np.flatnonzero(~is_last)
    if len(nexts) == 0 or not is_last.any():
        return order, np.empty(0, dtype=np.int64)
    last_at = pd.MultiIndex.from_arrays([user[is_last], timestamp[is_last]])
    tied = nexts[pd.MultiIndex.from_arrays([user[nexts], timestamp[nexts]]).isin(last_at)]
    chainable = tied[recommendation[tied] != UNKNOWN]  # only a logged recommendation can reorder
    # Follow the chain back from each tied `last`: the `next` that recommended its track, then the `next` that
    # recommended that one's track, and so on (a session can log several requests in one millisecond).
    recommended = pd.MultiIndex.from_arrays([user[chainable], timestamp[chainable], recommendation[chainable]])
    chained = np.zeros(len(chainable), dtype=bool)
    wanted = pd.MultiIndex.from_arrays([user[is_last], timestamp[is_last], track[is_last]])
    while len(wanted):
        found = recommended.isin(wanted) & ~chained
        chained |= found
        step = chainable[found]
        wanted = pd.MultiIndex.from_arrays([user[step], timestamp[step], track[step]])
    order[chainable[~chained]] = 2
    return order, tied
