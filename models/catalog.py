"""The world's catalog (`tracks.json`, JSON lines) as a table indexed by track id 0..N-1."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from models.errors import InputError


@dataclass(frozen=True)
class Catalog:
    """Track metadata; row i is track i. Optional columns (genre, duration, popularity) may be absent."""

    tracks: pd.DataFrame

    @property
    def size(self) -> int:
        return len(self.tracks)

    def column(self, name: str) -> pd.Series | None:
        """A metadata column, or None when the catalog does not have it for any track."""
        if name not in self.tracks.columns or self.tracks[name].isna().all():
            return None
        return self.tracks[name]


def read_catalog(data_dir: Path) -> Catalog:
    """Read `tracks.json`; ids must be exactly 0..N-1 (the course's contract)."""
    path = data_dir / "tracks.json"
    if not path.is_file():
        raise InputError(f"catalog {path} not found")
    records = []
    with path.open("rb") as f:  # bytes: json.loads decodes them inside the try, so bad UTF-8 is one more bad line
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                track = record["track"]
            except (ValueError, TypeError, KeyError, RecursionError):
                raise InputError(f"{path}:{number}: not a UTF-8 JSON object with a 'track' field") from None
            if not isinstance(track, int) or isinstance(track, bool):
                raise InputError(f"{path}:{number}: 'track' is not an integer")
            records.append(record)
    if not records:
        raise InputError(f"catalog {path} is empty")
    tracks = pd.DataFrame.from_records(records).set_index("track").sort_index()
    if not tracks.index.equals(pd.RangeIndex(len(tracks))):
        raise InputError(f"catalog {path}: track ids are not exactly 0..{len(tracks) - 1}")
    return Catalog(tracks=tracks)
