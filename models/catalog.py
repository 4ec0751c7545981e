"""The world's catalog (`tracks.json`, JSON lines) as a table indexed by track id 0..N-1."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from botify.data_files import DataError, catalog_fingerprint, read_catalog_records
from models.errors import InputError


@dataclass(frozen=True)
class Catalog:
    """Track metadata as written (None: no value); row i is track i. Optional columns (genre, duration, popularity)
    may be absent."""

    tracks: pd.DataFrame
    fingerprint: str  # the world's identity as botify checks it (`botify.data_files.catalog_fingerprint`)

    @property
    def size(self) -> int:
        return len(self.tracks)

    def column(self, name: str) -> pd.Series | None:
        """A metadata column, or None when the catalog does not have it for any track."""
        if name not in self.tracks.columns or all(value is None for value in self.tracks[name]):
            return None
        return self.tracks[name]


def read_catalog(data_dir: Path) -> Catalog:
    """Read `tracks.json` as the service does (`botify.data_files.read_catalog_records`): ids exactly 0..N-1, the
    course's contract; unlike the service, training needs no artist or title (features use what is there)."""
    try:
        records = read_catalog_records(data_dir / "tracks.json")
    except DataError as error:
        raise InputError(str(error)) from None
    # Values as written (a JSON NaN stays a float NaN), None where a track has no such field: in track order.
    fields = dict.fromkeys(name for record in records for name in record)
    columns = {name: pd.Series([record.get(name) for record in records], dtype=object) for name in fields}
    tracks = pd.DataFrame(columns).set_index("track")  # row i is track i
    return Catalog(tracks=tracks, fingerprint=catalog_fingerprint(records))
