from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from sim.catalog import World, write_world
from sim.generate import WorldConfig, generate_world
from sim.listener import Listener

TEST_WORLD = WorldConfig(tracks=3000, users=400)


@pytest.fixture(scope="session")
def world_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated world in the course's file formats."""
    out = tmp_path_factory.mktemp("world")
    world = generate_world(TEST_WORLD, np.random.default_rng(0))
    write_world(out, world.tracks, world.embeddings, world.users, world.top_tracks)
    return out


def _one_artist_world(listener: Listener, n_tracks: int = 12) -> World:
    embeddings = np.tile(np.array([[1.0, 0.0]], dtype=np.float32), (n_tracks, 1))
    return World(
        embeddings=embeddings,
        artists=np.zeros(n_tracks, dtype=np.int32),
        artist_names=("A",),
        listeners=(listener,),
        top_tracks=np.arange(n_tracks),
    )


@pytest.fixture
def one_artist_world() -> Callable[..., World]:
    """Every track by one artist and identical to the interest: each listen time is known by hand."""
    return _one_artist_world
