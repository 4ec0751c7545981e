"""A listening session's state: the listens of the session, in order, as Redis keeps them.

A session is an append-only string of fixed-size records (int32 track, float32 fraction listened):
each /next appends its listen and reads the whole session back in the same Redis call, so serving a
listen costs one round trip. What was played is what the client reports listening to; the track the
service recommended comes back as the next request's listen when the client plays it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

RECENT_LISTENS = 3  # how many recent listens set the session's context
LISTEN_STRUCT = struct.Struct("<if")  # one listen record: int32 track, float32 fraction listened
MAX_LISTENS = 1000  # a session keeps its latest listens only (a bounded read per request)


def pack_listen(track: int, time: float) -> bytes:
    return LISTEN_STRUCT.pack(track, time)


@dataclass(frozen=True)
class Session:
    played: np.ndarray  # int32: the tracks listened to, in order (repeats kept)
    times: np.ndarray  # float32: the fraction of each listened

    @classmethod
    def from_bytes(cls, raw: bytes | None, tracks: int) -> Session:
        """The session's listens; records that are not listens of a catalog of `tracks` tracks are dropped
        (a value the service did not write starts a fresh session, it never fails the request)."""
        raw = raw or b""
        values = np.frombuffer(raw, dtype="<i4", count=len(raw) // LISTEN_STRUCT.size * 2).reshape(-1, 2)
        played, times = values[:, 0], values[:, 1].view("<f4")
        valid = (played >= 0) & (played < tracks) & (times >= 0.0) & (times <= 1.0)  # NaN is not valid either
        if not valid.all():
            played, times = played[valid], times[valid]
        return cls(played, times)

    def played_tracks(self) -> set[int]:
        """The distinct tracks played, for membership tests."""
        return set(self.played.tolist())

    def context_track(self) -> int | None:
        """The track listened to longest among the recent ones (the latest on ties)."""
        if not len(self.played):
            return None
        recent = self.times[-RECENT_LISTENS:]
        latest_longest = len(recent) - 1 - int(np.argmax(recent[::-1]))
        return int(self.played[-len(recent) :][latest_longest])
