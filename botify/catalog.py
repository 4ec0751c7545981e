"""The catalog as the service needs it in memory: track -> artist, artist -> tracks, top tracks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Catalog:
    """Track ids are 0..size-1; artists are numbered in order of first appearance."""

    artist_of: np.ndarray  # int32 [size]: artist index of each track
    artist_tracks: np.ndarray  # int32 [size]: track ids grouped by artist
    artist_offsets: np.ndarray  # int64 [artists + 1]: artist a's tracks are artist_tracks[off[a]:off[a+1]]
    top_tracks: np.ndarray  # int32: most popular first

    @classmethod
    def build(cls, artist_of: np.ndarray, top_tracks: np.ndarray) -> Catalog:
        artist_of = np.asarray(artist_of, dtype=np.int32)
        order = np.argsort(artist_of, kind="stable").astype(np.int32)
        counts = np.bincount(artist_of, minlength=int(artist_of.max(initial=-1)) + 1)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return cls(artist_of, order, offsets, np.asarray(top_tracks, dtype=np.int32))

    @property
    def size(self) -> int:
        return len(self.artist_of)

    def __contains__(self, track: int) -> bool:
        return 0 <= track < self.size

    def tracks_of_artist(self, artist: int) -> np.ndarray:
        return self.artist_tracks[self.artist_offsets[artist] : self.artist_offsets[artist + 1]]

    def same_artist_tracks(self, track: int) -> np.ndarray:
        return self.tracks_of_artist(int(self.artist_of[track]))


def artist_indices(tracks: list[dict]) -> np.ndarray:
    """Artist index per track, artists numbered by first appearance."""
    numbering: dict[str, int] = {}
    return np.array([numbering.setdefault(str(t["artist"]), len(numbering)) for t in tracks], dtype=np.int32)
