"""`module:factory` agents for the tests of `sim.run` (the tests put this folder on the worker's PYTHONPATH)."""

from __future__ import annotations

import multiprocessing


class FirstTopTrack:
    def __init__(self, world) -> None:
        self.track = int(world.top_tracks[0])

    def recommend_next(self, user: int, prev_track: int, prev_track_time: float) -> int:
        return self.track


def fails_in_workers(world) -> FirstTopTrack:
    """Builds in the main process, raises in a worker process (say, a model file only the parent can read)."""
    if multiprocessing.parent_process() is not None:
        raise RuntimeError("no model in this process")
    return FirstTopTrack(world)


class Answers:
    def __init__(self, answer: object) -> None:
        self.answer = answer

    def recommend_next(self, user: int, prev_track: int, prev_track_time: float) -> object:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def answers_none(world) -> Answers:
    return Answers(None)


def answers_a_float(world) -> Answers:
    return Answers(3.7)


def raises_key_error(world) -> Answers:
    return Answers(KeyError("user 5"))


class FailsAround(FirstTopTrack):
    """Recommends, but its own `begin` or `end_session` raises."""

    def __init__(self, world, failing: str) -> None:
        super().__init__(world)
        self.failing = failing

    def begin(self, rng) -> None:
        if self.failing == "begin":
            raise RuntimeError("no generator wanted")

    def end_session(self, user: int) -> None:
        if self.failing == "end_session":
            raise KeyError(f"no session for {user}")


def fails_to_begin(world) -> FailsAround:
    return FailsAround(world, "begin")


def fails_at_session_end(world) -> FailsAround:
    return FailsAround(world, "end_session")
