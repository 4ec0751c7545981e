"""botify's recommenders as in-process simulator agents draw their random picks from each episode's generator."""

from __future__ import annotations

import numpy as np

from botify.catalog import Catalog
from botify.recommenders.sticky_artist import StickyArtist
from pipeline.agents import EpisodeSeeded
from sim.agents import RecommenderAgent


def test_an_episode_gets_the_same_picks_whatever_ran_before_it_in_the_process() -> None:
    catalog = Catalog.build(np.repeat(np.arange(4, dtype=np.int32), 50), np.arange(10, dtype=np.int32))

    def agent() -> RecommenderAgent:
        rng = np.random.default_rng(0)  # one per process, shared with the recommender's fallback picks
        return RecommenderAgent(EpisodeSeeded(StickyArtist(lambda: catalog, rng), rng))

    def episode(player: RecommenderAgent, seed: int) -> list[int]:
        player.begin(np.random.default_rng(seed))
        return [player.recommend_next(1, 60, 1.0) for _ in range(20)]

    fresh, busy = agent(), agent()
    for seed in range(3):  # the busy process ran other episodes first
        episode(busy, 100 + seed)
    assert episode(fresh, 7) == episode(busy, 7)
    assert episode(fresh, 7) != episode(fresh, 8)
    assert set(episode(fresh, 9)) <= set(range(50, 100))  # still StickyArtist: track 60's artist
