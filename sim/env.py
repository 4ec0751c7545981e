"""``RecEnv``: the course's listening session as a Gymnasium environment.

``reset(seed=)`` draws a user, one of their interests and a start track among the interest's
10 nearest tracks, listened to whole; ``step(track)`` plays a recommendation through the listener model.
All randomness comes from the environment's one generator (``self.np_random``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sim.catalog import World
from sim.listener import Listener, budget_cost, listen_time, nearest_tracks

Observation = dict[str, int]
START_LISTEN = 1.0  # the start track is the listener's own choice, heard whole (the course's runner reports 1.0)


def draw_listener(rng: np.random.Generator, listeners: int) -> int:
    """The index of the listener a session draws: the first draw of ``reset`` (a run can tell a session's user
    from its generator before playing it)."""
    return int(rng.integers(listeners))


@dataclass
class Session:
    """The hidden state of one listening session."""

    listener: Listener
    interest: int  # the track whose embedding is the session's taste
    embedding: np.ndarray
    budget: int
    artist_plays: np.ndarray  # plays per artist code in this session
    track: int  # the last track played
    time: float  # its listen time
    played: set[int] = field(default_factory=set)
    steps: int = 0


class RecEnv(gym.Env):
    """One user session per episode; the reward of a step is the listen time of the recommended track.

    ``max_steps`` truncates a session as a safety net against a recommender that never lets
    the budget drop (the course has no such cap; None disables it).
    """

    metadata = {"render_modes": []}

    def __init__(self, world: World, max_steps: int | None = 1000) -> None:
        super().__init__()
        self.world = world
        self.max_steps = max_steps
        self.action_space = spaces.Discrete(world.n_tracks)
        self.observation_space = spaces.Dict(
            {
                # ids go up to 2**63 - 1, so n up to 2**63: more than int64 holds
                "user": spaces.Discrete(max(listener.user for listener in world.listeners) + 1, dtype=np.uint64),
                "track": spaces.Discrete(world.n_tracks),
            }
        )
        self.session: Session | None = None
        self._nearest: dict[int, np.ndarray] = {}
        self._n_tracks = world.n_tracks
        self._n_artists = len(world.artist_names)
        self._artist_of: list[int] = world.artists.tolist()  # list indexing is the cheapest per step

    def neighbours(self, track: int) -> np.ndarray:
        """The interest's nearest tracks (cached: the same interests come back in many sessions)."""
        found = self._nearest.get(track)
        if found is None:
            found = nearest_tracks(self.world.embeddings, self.world.embeddings[track])
            self._nearest[track] = found
        return found

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Observation, dict]:
        super().reset(seed=seed)
        rng = self.np_random
        listener = self.world.listeners[draw_listener(rng, len(self.world.listeners))]
        interest = listener.interests[int(rng.integers(len(listener.interests)))]
        neighbours = self.neighbours(interest)
        start = int(neighbours[int(rng.integers(len(neighbours)))])
        embedding = self.world.embeddings[interest]
        time = START_LISTEN
        artist_plays = np.zeros(self._n_artists, dtype=np.int64)
        artist_plays[self._artist_of[start]] = 1
        self.session = Session(listener, interest, embedding, listener.session_budget, artist_plays, start, time)
        self.session.played.add(start)
        return {"user": listener.user, "track": start}, {"time": time}

    def step(self, action: int) -> tuple[Observation, float, bool, bool, dict]:
        session = self.session
        if session is None:
            raise RuntimeError("call reset() before step()")
        track = int(action)
        if not 0 <= track < self._n_tracks:
            raise ValueError(f"recommended track {action!r} is not in 0..{self._n_tracks - 1}")
        artist = self._artist_of[track]
        repeated = track in session.played
        score = 0.0 if repeated else float(self.world.embeddings[track] @ session.embedding)
        time = listen_time(score, session.listener, int(session.artist_plays[artist]), repeated)
        session.budget -= budget_cost(time, self.np_random.random())
        session.played.add(track)
        session.artist_plays[artist] += 1
        session.track, session.time = track, time
        session.steps += 1
        terminated = session.budget <= 0
        truncated = not terminated and self.max_steps is not None and session.steps >= self.max_steps
        return {"user": session.listener.user, "track": track}, time, terminated, truncated, {}
