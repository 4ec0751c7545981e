"""Recommenders: one interface, `recommend_next(user, prev_track, prev_track_time) -> int`."""

from botify.recommenders.base import Recommender

__all__ = ["Recommender"]
