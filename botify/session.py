"""A listening session's state: what was played or recommended, and the recent listens."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

RECENT_LISTENS = 3  # how many recent listens set the session's context


@dataclass
class Session:
    seen: list[int] = field(default_factory=list)  # played or recommended, in order
    recent: list[tuple[int, float]] = field(default_factory=list)  # last listens (track, time)

    @classmethod
    def from_json(cls, raw: bytes | str | None) -> Session:
        if not raw:
            return cls()
        try:
            data = json.loads(raw)
            return cls([int(t) for t in data["seen"]], [(int(t), float(x)) for t, x in data["recent"]])
        except (ValueError, KeyError, TypeError):  # not a session we wrote: start afresh, never fail the request
            return cls()

    def to_json(self) -> str:
        return json.dumps({"seen": self.seen, "recent": self.recent}, separators=(",", ":"))

    def listened(self, track: int, time: float) -> None:
        if track not in self.seen:
            self.seen.append(track)
        self.recent = [*self.recent, (track, time)][-RECENT_LISTENS:]

    def recommended(self, track: int) -> None:
        self.seen.append(track)

    def context_track(self) -> int | None:
        """The track listened to longest among the recent ones (the latest on ties)."""
        if not self.recent:
            return None
        best = max(range(len(self.recent)), key=lambda i: (self.recent[i][1], i))
        return self.recent[best][0]
