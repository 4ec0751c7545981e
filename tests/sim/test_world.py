from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from sim.catalog import MAX_USER_ID, read_world, write_world
from sim.env import RecEnv
from sim.errors import DataError
from sim.generate import GENRES, PRESETS, WorldConfig, generate_world
from sim.world import main as world_main

FILES = ("tracks.json", "tracks.npy", "users.json", "top_tracks.json")


def _generate(out: Path, seed: int) -> dict[str, bytes]:
    assert world_main(["--out", str(out), "--seed", str(seed), "--tracks", "1500", "--users", "200"]) == 0
    return {name: (out / name).read_bytes() for name in FILES}


def test_same_seed_writes_the_same_bytes(tmp_path):
    first = _generate(tmp_path / "a", seed=5)
    assert first == _generate(tmp_path / "b", seed=5)
    assert first["tracks.json"] != _generate(tmp_path / "c", seed=6)["tracks.json"]


def test_files_are_in_the_course_formats(world_dir):
    tracks = [json.loads(line) for line in (world_dir / "tracks.json").read_text().splitlines()]
    assert [t["track"] for t in tracks] == list(range(3000))
    assert set(tracks[0]) == {"track", "artist", "title", "genre", "duration", "popularity", "year", "mood", "country"}
    assert all(isinstance(t["duration"], int) and 60 <= t["duration"] <= 1800 for t in tracks)
    embeddings = np.load(world_dir / "tracks.npy")
    assert embeddings.dtype == np.float32 and embeddings.shape == (3000, 32)
    assert np.allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    users = [json.loads(line) for line in (world_dir / "users.json").read_text().splitlines()]
    assert [u["user"] for u in users] == list(range(400))
    assert all(set(u) == {"user", "interests", "consume_bias", "consume_sharpness"} for u in users)
    assert all(1 <= len(u["interests"]) <= 6 for u in users)
    bias, sharpness = WorldConfig().bias_range, WorldConfig().sharpness_range
    assert all(bias[0] <= u["consume_bias"] <= bias[1] for u in users)
    assert all(sharpness[0] <= u["consume_sharpness"] <= sharpness[1] for u in users)
    top = json.loads((world_dir / "top_tracks.json").read_text())
    assert sorted(top) == list(range(3000))
    popularity = [tracks[t]["popularity"] for t in top]
    assert popularity == sorted(popularity, reverse=True)


def test_round_trip_through_the_reader(world_dir):
    world = read_world(world_dir)
    tracks = [json.loads(line) for line in (world_dir / "tracks.json").read_text().splitlines()]
    assert [world.artist_names[a] for a in world.artists] == [t["artist"] for t in tracks]
    assert world.top_tracks.tolist() == json.loads((world_dir / "top_tracks.json").read_text())
    first = json.loads((world_dir / "users.json").read_text().splitlines()[0])
    assert world.listeners[0].interests == tuple(first["interests"])
    assert world.listeners[0].consume_bias == first["consume_bias"]
    assert world.listeners[0].session_budget == 5 and world.listeners[0].artist_discount_gamma == 0.8


def test_taste_space_is_hierarchical(world_dir):
    """Same-artist tracks are closest, same-genre tracks close, other genres far."""
    world = read_world(world_dir)
    genre = np.array([json.loads(line)["genre"] for line in (world_dir / "tracks.json").read_text().splitlines()])
    similarity = world.embeddings @ world.embeddings.T
    same_artist = world.artists[:, None] == world.artists[None, :]
    same_genre = genre[:, None] == genre[None, :]
    np.fill_diagonal(same_artist, False)
    artist_mean = similarity[same_artist].mean()
    genre_mean = similarity[same_genre & ~same_artist & ~np.eye(3000, dtype=bool)].mean()
    other_mean = similarity[~same_genre].mean()
    assert artist_mean > genre_mean + 0.15 and genre_mean > other_mean + 0.3 and abs(other_mean) < 0.1


def test_catalog_looks_like_music(world_dir):
    tracks = [json.loads(line) for line in (world_dir / "tracks.json").read_text().splitlines()]
    per_artist = sorted(Counter(t["artist"] for t in tracks).values())
    assert len(per_artist) == 300 and per_artist[0] >= 1 and per_artist[-1] >= 20
    genres = Counter(t["genre"] for t in tracks)
    assert set(genres) <= {g.name for g in GENRES} and genres.most_common(1)[0][0] in {"pop", "rock", "hip-hop"}
    median = {g: np.median([t["duration"] for t in tracks if t["genre"] == g]) for g in ("classical", "punk")}
    assert median["classical"] > 1.8 * median["punk"]
    popularity = np.sort([t["popularity"] for t in tracks])[::-1]
    assert popularity[:30].sum() > 0.2 * popularity.sum()  # heavy-tailed: 1% of tracks, over a fifth of plays


def test_a_world_that_fails_while_written_leaves_the_earlier_world_whole(tmp_path):
    before = _generate(tmp_path, seed=0)
    world = generate_world(WorldConfig(tracks=1500, users=200), np.random.default_rng(1))  # the same sizes
    users = [*world.users[:-1], {"user": object()}]  # not JSON: fails after tracks and embeddings are written
    with pytest.raises(TypeError):
        write_world(tmp_path, world.tracks, world.embeddings, users, world.top_tracks)
    assert {name: (tmp_path / name).read_bytes() for name in FILES} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FILES)


def test_a_world_that_cannot_replace_a_file_is_one_line_and_writes_none(tmp_path):
    before = _generate(tmp_path, seed=0)
    (tmp_path / "users.json").unlink()
    (tmp_path / "users.json").mkdir()
    command = [sys.executable, "-m", "sim.world", "--out", str(tmp_path), "--seed", "1", "--tracks", "1500",
               "--users", "200"]  # fmt: skip
    finished = subprocess.run(command, capture_output=True, text=True)
    assert finished.returncode == 1 and finished.stderr.count("\n") == 1, finished.stderr
    assert "users.json: it is a folder" in finished.stderr
    assert {name: (tmp_path / name).read_bytes() for name in FILES if name != "users.json"} == {
        name: data for name, data in before.items() if name != "users.json"
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FILES)


def test_presets():
    default, small = PRESETS["default"], PRESETS["small"]
    assert (default.tracks, default.n_artists, default.users) == (50_000, 5_000, 10_000)
    assert (small.tracks, small.n_artists, small.users) == (5_000, 500, 1_000)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tracks", "5"], "need at least 10 tracks"),
        (["--tracks", "100", "--artists", "500"], "--artists must be between 1 and"),
        (["--seed", "-1"], "--seed must not be negative"),
        (["--tracks", "1000000000000"], "at most 1,000,000 tracks, 1,000,000 users and dimension 256"),
        (["--dim", "100000000"], "at most 1,000,000 tracks"),
        (["--out", ""], "argument --out: an empty path"),
    ],
)
def test_bad_arguments_exit_with_one_line(tmp_path, args, message):
    finished = subprocess.run(
        [sys.executable, "-m", "sim.world", "--out", str(tmp_path / "w"), *args], capture_output=True, text=True
    )
    assert finished.returncode != 0
    assert finished.stderr.count("\n") == 1 and message in finished.stderr


def test_reads_the_courses_own_files_unchanged(tmp_path):
    """Course files: tracks.json with track/artist/title only, raw (unnormalized) embeddings, no top_tracks.json."""
    rng = np.random.default_rng(0)
    lines = [json.dumps({"artist": f"Artist {t % 7}", "title": f"Song {t}", "track": t}) for t in range(40)]
    (tmp_path / "tracks.json").write_text("\n".join(reversed(lines)) + "\n")  # any line order
    np.save(tmp_path / "tracks.npy", rng.standard_normal((40, 8)).astype(np.float32) * 3.0)
    users = [{"user": 0, "interests": [3, 3, 17], "consume_bias": 5.1, "consume_sharpness": 1.5},
             {"user": 1, "interests": [17, 22], "consume_bias": 0.8, "consume_sharpness": 0.6,
              "session_budget": 2, "artist_discount_gamma": 0.5}]  # fmt: skip
    (tmp_path / "users.json").write_text("".join(json.dumps(u) + "\n" for u in users))
    world = read_world(tmp_path)
    assert world.n_tracks == 40 and len(world.artist_names) == 7
    assert world.artist_names[world.artists[9]] == "Artist 2"
    assert world.top_tracks[:3].tolist() == [17, 3, 22]  # no popularity: how many users hold it as an interest
    assert world.listeners[0].session_budget == 5 and world.listeners[1].session_budget == 2
    assert world.listeners[1].artist_discount_gamma == 0.5
    out = tmp_path / "summary.json"
    agents = "random,toppop,sticky-artist,oracle"
    command = [sys.executable, "-m", "sim.run", "--data", str(tmp_path), "--agent", agents,
               "--episodes", "20", "--quiet", "--out", str(out)]  # fmt: skip
    assert subprocess.run(command, capture_output=True).returncode == 0
    assert [r["sessions"] for r in json.loads(out.read_text())["results"]] == [20, 20, 20, 20]


def _course_world(path: Path, **user_fields: object) -> Path:
    """A two-user course world; the second user's record gets `user_fields`."""
    lines = [json.dumps({"artist": f"Artist {t % 3}", "track": t}) for t in range(12)]
    (path / "tracks.json").write_text("\n".join(lines) + "\n")
    np.save(path / "tracks.npy", np.eye(12, 4, dtype=np.float32))
    users = [{"user": 0, "interests": [1], "consume_bias": 5.0, "consume_sharpness": 1.0},
             {"user": 1, "interests": [2], "consume_bias": 5.0, "consume_sharpness": 1.0, **user_fields}]  # fmt: skip
    (path / "users.json").write_text("".join(json.dumps(u) + "\n" for u in users))
    return path


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"session_budget": None}, r"users.json:2: field 'session_budget' must be a whole number >= 1 \(got None\)"),
        ({"session_budget": "five"}, r"field 'session_budget' must be a whole number >= 1 \(got 'five'\)"),
        ({"session_budget": 0}, r"field 'session_budget' must be a whole number >= 1 \(got 0\)"),
        ({"session_budget": 2.5}, r"field 'session_budget' must be a whole number >= 1 \(got 2.5\)"),
        ({"session_budget": True}, r"field 'session_budget' must be a whole number >= 1 \(got True\)"),
        ({"artist_discount_gamma": 0}, r"users.json:2: field 'artist_discount_gamma' must be in \(0, 1\] \(got 0\)"),
        ({"artist_discount_gamma": 1.5}, r"field 'artist_discount_gamma' must be in \(0, 1\] \(got 1.5\)"),
        ({"artist_discount_gamma": "x"}, r"field 'artist_discount_gamma' must be in \(0, 1\] \(got 'x'\)"),
        ({"artist_discount_gamma": float("nan")}, r"field 'artist_discount_gamma' must be in \(0, 1\] \(got nan\)"),
        ({"consume_sharpness": float("nan")}, r"field 'consume_sharpness' must be a finite number > 0 \(got nan\)"),
        ({"consume_sharpness": 0}, r"field 'consume_sharpness' must be a finite number > 0 \(got 0.0\)"),
        ({"consume_bias": float("inf")}, r"field 'consume_bias' must be a finite number \(got inf\)"),
        ({"user": -7}, r"users.json:2: field 'user' must be a whole number in 0..9223372036854775807 \(got -7\)$"),
        ({"user": 2**63}, r"field 'user' must be a whole number in 0..9223372036854775807 \(got 9223372036854775808\)"),
        ({"user": 1e19}, r"field 'user' must be a whole number in 0..9223372036854775807 \(got 1e\+19\)"),
        ({"user": 1.0}, r"field 'user' must be a whole number in 0..9223372036854775807 \(got 1.0\)"),
        ({"user": "5"}, r"field 'user' must be a whole number in 0..9223372036854775807 \(got '5'\)"),
        ({"user": True}, r"field 'user' must be a whole number in 0..9223372036854775807 \(got True\)"),
        ({"user": None}, r"field 'user' must be a whole number in 0..9223372036854775807 \(got None\)"),
        ({"user": 0}, r"users.json:2: user 0 is already defined on line 1$"),
        ({"interests": [True]}, r"users.json:2: interests must be track ids in 0..11$"),  # was read as track 1
        ({"interests": [2, 3.0]}, r"users.json:2: interests must be track ids in 0..11$"),
    ],
)
def test_bad_listener_parameters_are_data_errors(tmp_path, fields, message):
    with pytest.raises(DataError, match=message):
        read_world(_course_world(tmp_path, **fields))


def test_user_ids_up_to_the_services_int64_limit_are_read_and_played(tmp_path):
    from gymnasium.utils.env_checker import check_env

    world = read_world(_course_world(tmp_path, user=MAX_USER_ID))
    assert [listener.user for listener in world.listeners] == [0, 2**63 - 1]
    env = RecEnv(world)
    users = {env.reset(seed=seed)[0]["user"] for seed in range(20)}
    assert users == {0, 2**63 - 1}
    assert env.observation_space["user"].contains(2**63 - 1)
    check_env(env, skip_render_check=True)


def test_top_tracks_that_are_not_track_ids_are_a_data_error(tmp_path):
    (_course_world(tmp_path) / "top_tracks.json").write_text("[3, true, 1]")  # `true` was read as track 1
    with pytest.raises(DataError, match=r"top_tracks.json: expected a non-empty JSON list of track ids in 0..11$"):
        read_world(tmp_path)


def test_an_empty_users_file_is_a_data_error(tmp_path):
    (_course_world(tmp_path) / "users.json").write_text("\n\n")
    with pytest.raises(DataError, match=r"users.json: no users$"):
        read_world(tmp_path)


def test_listener_parameters_in_range_are_read(tmp_path):
    world = read_world(_course_world(tmp_path, session_budget=3.0, artist_discount_gamma=1))
    assert (world.listeners[1].session_budget, world.listeners[1].artist_discount_gamma) == (3, 1.0)
    assert isinstance(world.listeners[1].session_budget, int)


def test_a_file_that_is_not_utf8_is_a_data_error(tmp_path):
    _course_world(tmp_path)
    lines = (tmp_path / "tracks.json").read_bytes().split(b"\n")
    lines[3] = lines[3].replace(b"Artist 0", b"Artist \xe9")  # Latin-1, not UTF-8
    (tmp_path / "tracks.json").write_bytes(b"\n".join(lines))
    offset = b"\n".join(lines).index(b"\xe9")
    with pytest.raises(DataError, match=rf"tracks.json: not UTF-8 text \(byte {offset}\)$"):
        read_world(tmp_path)
