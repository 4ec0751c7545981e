"""Item features: the one place that says which catalog fields become LightFM item features.

Every catalog track gets its identity feature plus `genre=..`, `artist=..`, `popularity=<decile>`
and `duration=<quintile>` when the catalog has those fields. Features let tracks with few listens
borrow what the model learned from similar tracks. A course catalog without some field simply
yields fewer features (with a warning).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from lightfm.data import Dataset

from models.catalog import Catalog

log = logging.getLogger(__name__)

CATEGORICAL = ("genre", "artist")
BUCKETED = {"popularity": 10, "duration": 5}  # field -> number of quantile buckets
ABOVE = {"duration": 0}  # a bucketed field's values must be greater than this (a track lasts a while)
FEATURE_GROUPS = (*CATEGORICAL, *BUCKETED)


@dataclass(frozen=True)
class ItemFeatures:
    """Feature names of every catalog track (row i = track i) and the groups they came from."""

    groups: tuple[str, ...]
    names: list[list[str]]

    def vocabulary(self) -> list[str]:
        return sorted({name for item in self.names for name in item})


@dataclass(frozen=True)
class LightFMData:
    """A fitted LightFM `Dataset` over all catalog tracks and the item feature matrix it built."""

    dataset: Dataset
    item_features: sp.csr_matrix  # [n_tracks, n_features], weight 1 per feature, identity included
    groups: tuple[str, ...]


def quantile_buckets(values: np.ndarray, buckets: int) -> np.ndarray:
    """Bucket index 0..buckets-1 of each value by the values' own quantiles (ties share a bucket)."""
    finite = values[np.isfinite(values)]
    # Interpolated at half scale and doubled back (exact but for subnormals): near +-1.8e308 it would overflow.
    edges = np.unique(np.quantile(finite / 2, np.arange(1, buckets) / buckets) * 2) if len(finite) else []
    return np.searchsorted(edges, values, side="left")


def _single_value(value: object) -> bool:
    """A category: a non-empty string or a number (an artist id), as the service reads `artist` (`str(value)`)."""
    if isinstance(value, str):
        return bool(value)
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _as_written(value: object) -> object:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _categorical(column: pd.Series, group: str) -> list[str | None]:
    # a column of ids with a gap in it reads as floats (7.0): an id is named as written (7)
    names = [f"{group}={_as_written(value)}" if _single_value(value) else None for value in column]
    odd = [value for value, name in zip(column, names, strict=True) if name is None and value not in (None, "")]
    if odd:
        log.warning(
            "%d tracks' '%s' is not a single string or number (e.g. %r): they get no %s feature",
            len(odd), group, odd[0], group,
        )  # fmt: skip
    return names


def _bucketed(column: pd.Series, group: str, buckets: int) -> list[str | None]:
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
    usable = np.isfinite(values) & (values > ABOVE.get(group, -math.inf))
    values = np.where(usable, values, np.nan)
    odd = [value for value, ok in zip(column, usable, strict=True) if not ok and value is not None]  # NaN included
    if odd:
        log.warning(
            "%d tracks' '%s' is not a finite number%s (e.g. %r): they get no %s feature",
            len(odd), group, f" > {ABOVE[group]}" if group in ABOVE else "", odd[0], group,
        )  # fmt: skip
    index = quantile_buckets(values, buckets)
    return [f"{group}={b}" if np.isfinite(v) else None for b, v in zip(index, values, strict=True)]


def item_features(catalog: Catalog, groups: tuple[str, ...] = FEATURE_GROUPS) -> ItemFeatures:
    """Feature names per track for the requested groups the catalog actually has."""
    columns: list[list[str | None]] = []
    used: list[str] = []
    for group in groups:
        column = catalog.column(group)
        if column is None:
            log.warning("the catalog has no '%s' field: item features are built without it", group)
            continue
        names = _bucketed(column, group, BUCKETED[group]) if group in BUCKETED else _categorical(column, group)
        if all(name is None for name in names):
            log.warning("no track has a usable '%s': item features are built without it", group)
            continue
        used.append(group)
        columns.append(names)
    names = [[name for name in row if name is not None] for row in zip(*columns, strict=True)]
    if not columns:
        names = [[] for _ in range(catalog.size)]
    return ItemFeatures(groups=tuple(used), names=names)


def lightfm_data(n_users: int, features: ItemFeatures) -> LightFMData:
    """Fit a LightFM `Dataset` (users 0..n_users-1, every catalog track) and build its item features.

    Rows are not normalized: a track's identity keeps weight 1, so it learns as fast as in the
    identity-only model, and its genre/artist/popularity/duration embeddings add to it. (With
    LightFM's default row normalization the identity gets 1/5 of the weight and, on the simulator's
    logs, the model needs far more epochs to catch up.)
    """
    n_tracks = len(features.names)
    dataset = Dataset(user_identity_features=True, item_identity_features=True)
    dataset.fit(users=range(n_users), items=range(n_tracks), item_features=features.vocabulary())
    matrix = dataset.build_item_features(enumerate(features.names), normalize=False)
    return LightFMData(dataset=dataset, item_features=matrix.tocsr(), groups=features.groups)


def identity_only(features: ItemFeatures) -> ItemFeatures:
    """The same tracks with no side features: the plain collaborative-filtering baseline."""
    return ItemFeatures(groups=(), names=[[] for _ in features.names])
