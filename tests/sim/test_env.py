from __future__ import annotations

import numpy as np
import pytest

from sim.catalog import read_world
from sim.env import RecEnv
from sim.listener import Listener, nearest_tracks

FAN = Listener(user=3, interests=(0,), consume_bias=0.5, consume_sharpness=10.0, session_budget=3)


def test_start_track_is_a_play_of_its_artist(one_artist_world):
    env = RecEnv(one_artist_world(FAN))
    observation, info = env.reset(seed=1)
    assert observation["user"] == 3
    # the start is heard whole, as the course's runner reports it; it counts as a play of its artist:
    # expit((1 - 0.5) * 10) = 0.99331, discounted by 0.8 per earlier play of the same artist
    assert info["time"] == 1.0
    others = [t for t in range(12) if t != observation["track"]]
    times = [env.step(t)[1] for t in others[:2]]
    assert times == [0.79, 0.64]


def test_repeated_track_gets_zero_and_costs_budget(one_artist_world):
    env = RecEnv(one_artist_world(FAN))
    observation, _ = env.reset(seed=2)
    _, time, terminated, truncated, _ = env.step(observation["track"])
    assert time == 0.0
    assert env.session.budget == FAN.session_budget - 1
    assert not terminated and not truncated


def test_session_ends_when_the_budget_is_spent(one_artist_world):
    env = RecEnv(one_artist_world(FAN))
    observation, _ = env.reset(seed=3)
    flags = [env.step(observation["track"])[2] for _ in range(FAN.session_budget)]
    assert flags == [False, False, True]


def test_full_listens_never_spend_budget_and_max_steps_truncates(one_artist_world):
    lover = Listener(user=0, interests=(0,), consume_bias=-5.0, consume_sharpness=10.0, artist_discount_gamma=1.0)
    env = RecEnv(one_artist_world(lover, n_tracks=60), max_steps=40)
    observation, _ = env.reset(seed=4)
    fresh = [t for t in range(60) if t != observation["track"]]
    for step, track in enumerate(fresh[:40], 1):
        _, time, terminated, truncated, _ = env.step(track)
        assert time == 1.0 and not terminated
        assert truncated == (step == 40)
    assert env.session.budget == lover.session_budget


def test_reset_draws_a_user_interest_and_one_of_its_ten_nearest(world_dir):
    world = read_world(world_dir)
    env = RecEnv(world)
    for seed in range(30):
        observation, info = env.reset(seed=seed)
        session = env.session
        assert session.listener.user == observation["user"]
        assert session.interest in session.listener.interests
        assert observation["track"] in nearest_tracks(world.embeddings, world.embeddings[session.interest])
        assert info["time"] == 1.0


def test_same_seed_same_session(world_dir):
    world = read_world(world_dir)

    def play(seed: int) -> list:
        env = RecEnv(world)
        observation, info = env.reset(seed=seed)
        steps = [env.step(t)[1:4] for t in range(0, 3000, 97)]
        return [observation, info, steps, env.session.budget]

    assert play(11) == play(11)
    assert play(11) != play(12)


def test_bad_action_is_rejected(world_dir):
    env = RecEnv(read_world(world_dir))
    env.reset(seed=0)
    with pytest.raises(ValueError, match="not in 0..2999"):
        env.step(3000)
    assert np.isfinite(env.session.embedding).all()


def test_passes_gymnasiums_environment_checker(world_dir):
    from gymnasium.utils.env_checker import check_env

    check_env(RecEnv(read_world(world_dir)), skip_render_check=True)


def test_a_recommended_track_played_earlier_in_the_session_gets_zero(one_artist_world):
    env = RecEnv(one_artist_world(FAN))
    observation, _ = env.reset(seed=1)
    fresh = next(track for track in range(12) if track != observation["track"])
    assert env.step(fresh)[1] > 0.0
    assert env.step(fresh)[1] == 0.0  # a repeat of a recommended track, not only of the start track
