"""Item features: one place defines them; every catalog track gets them; missing fields degrade gracefully."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from models.catalog import read_catalog
from models.errors import InputError
from models.features import identity_only, item_features, lightfm_data, quantile_buckets

from .conftest import write_catalog, write_lines


def test_quantile_buckets_split_values_evenly_and_share_ties() -> None:
    assert quantile_buckets(np.arange(10.0), 5).tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert quantile_buckets(np.ones(4), 3).tolist() == [0, 0, 0, 0]


def test_quantile_buckets_take_the_largest_finite_values_without_overflow() -> None:
    values = np.array([1.7e308, -1.7e308])  # the edges lie between the two: 1.7e308 - -1.7e308 overflows
    with np.errstate(all="raise"):
        assert quantile_buckets(values, 5).tolist() == [4, 0]


def test_quantile_buckets_edges_are_those_of_the_values_at_full_scale() -> None:
    values = np.random.default_rng(0).lognormal(5.0, 2.0, 1000)
    edges = np.quantile(values, np.arange(1, 10) / 10)
    assert quantile_buckets(values, 10).tolist() == np.searchsorted(edges, values, side="left").tolist()


def test_every_track_gets_its_features_and_identity(tiny_world: Path) -> None:
    features = item_features(read_catalog(tiny_world))
    assert features.groups == ("genre", "artist", "popularity", "duration")
    assert features.names[0] == ["genre=rock", "artist=a0", "popularity=0", "duration=0"]
    assert features.names[5] == ["genre=jazz", "artist=a2", "popularity=9", "duration=4"]
    data = lightfm_data(3, features)
    matrix = data.item_features.toarray()
    assert matrix.shape == (6, 6 + len(features.vocabulary()))
    assert (np.count_nonzero(matrix, axis=1) == 5).all()
    assert set(np.unique(matrix)) == {0.0, 1.0}
    assert np.array_equal(matrix[:, :6], np.eye(6))  # identity features first, in catalog order
    assert data.dataset.mapping()[2] == {t: t for t in range(6)}


def test_identity_only_matrix_is_the_identity(tiny_world: Path) -> None:
    features = identity_only(item_features(read_catalog(tiny_world)))
    assert np.array_equal(lightfm_data(2, features).item_features.toarray(), np.eye(6))


def test_course_catalog_without_feature_fields_warns_and_keeps_the_rest(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = write_catalog(tmp_path / "data", 4)
    with caplog.at_level(logging.WARNING):
        features = item_features(read_catalog(data))
    assert features.groups == ("artist",)
    assert features.names[1] == ["artist=a1"]
    assert {"genre", "popularity", "duration"} == {
        word for r in caplog.records for word in ("genre", "popularity", "duration") if f"'{word}'" in r.getMessage()
    }


def test_catalog_ids_must_be_0_to_n_minus_1(tmp_path: Path) -> None:
    write_lines(tmp_path / "tracks.json", [{"track": 0, "artist": "a"}, {"track": 2, "artist": "b"}])
    with pytest.raises(InputError, match=r"track ids must be exactly 0\.\.1, each once"):
        read_catalog(tmp_path)
    with pytest.raises(InputError, match="no such file"):
        read_catalog(tmp_path / "missing")


def test_artist_ids_are_categories_and_values_that_are_not_one_are_left_out_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tracks = [
        {"track": 0, "artist": 7, "genre": ["rock"], "mood": ["calm"]},
        {"track": 1, "artist": 8, "genre": "jazz", "mood": ["sad"]},
        {"track": 2, "artist": 7, "genre": ["pop"], "mood": ["calm"]},
        {"track": 3, "genre": "jazz", "mood": ["sad"]},  # no artist: missing, not malformed
    ]
    write_lines(tmp_path / "tracks.json", tracks)
    with caplog.at_level(logging.WARNING):
        features = item_features(read_catalog(tmp_path), groups=("genre", "artist", "mood"))
    assert features.groups == ("genre", "artist")  # no track has a usable mood: not listed as used
    assert features.names == [["artist=7"], ["genre=jazz", "artist=8"], ["artist=7"], ["genre=jazz"]]
    messages = [record.getMessage() for record in caplog.records]
    assert "2 tracks' 'genre' is not a single string or number (e.g. ['rock']): they get no genre feature" in messages
    assert "no track has a usable 'mood': item features are built without it" in messages
    assert not any("'artist'" in message for message in messages)


def test_a_popularity_or_duration_that_is_not_a_usable_number_is_left_out_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """NaN, infinities and durations of no length were bucketed (or dropped) without a warning."""
    nan, inf = float("nan"), float("inf")
    tracks = [
        {"track": 0, "artist": "a", "popularity": 0.9, "duration": "long"},
        {"track": 1, "artist": "b", "popularity": "high", "duration": 200},
        {"track": 2, "artist": "c", "popularity": 0.1, "duration": 180},
        {"track": 3, "artist": "d", "duration": 120},  # no popularity: missing, not malformed
        {"track": 4, "artist": "e", "popularity": nan, "duration": -1e308},  # written NaN, as Python's json does
        {"track": 5, "artist": "f", "popularity": 0.5, "duration": -3},
        {"track": 6, "artist": "g", "popularity": inf, "duration": inf},
        {"track": 7, "artist": "h", "popularity": None, "duration": 0},  # null: missing too
    ]
    write_lines(tmp_path / "tracks.json", tracks)
    with caplog.at_level(logging.WARNING):
        features = item_features(read_catalog(tmp_path), groups=("popularity", "duration"))
    assert [sum(name.startswith("popularity=") for name in row) for row in features.names] == [1, 0, 1, 0, 0, 1, 0, 0]
    assert [sum(name.startswith("duration=") for name in row) for row in features.names] == [0, 1, 1, 1, 0, 0, 0, 0]
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "3 tracks' 'popularity' is not a finite number (e.g. 'high'): they get no popularity feature",
        "5 tracks' 'duration' is not a finite number > 0 (e.g. 'long'): they get no duration feature",
    ]


def test_a_field_given_only_as_nan_is_warned_about_as_unusable_not_as_absent(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_lines(
        tmp_path / "tracks.json", [{"track": t, "genre": float("nan"), "popularity": float("nan")} for t in range(3)]
    )
    with caplog.at_level(logging.WARNING):
        features = item_features(read_catalog(tmp_path), groups=("genre", "popularity"))
    assert features.groups == ()
    assert [record.getMessage() for record in caplog.records] == [
        "3 tracks' 'genre' is not a single string or number (e.g. nan): they get no genre feature",
        "no track has a usable 'genre': item features are built without it",
        "3 tracks' 'popularity' is not a finite number (e.g. nan): they get no popularity feature",
        "no track has a usable 'popularity': item features are built without it",
    ]
