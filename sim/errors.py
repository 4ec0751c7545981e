"""The failures a user can fix; each message is the one-line reason a command prints."""

from __future__ import annotations


class SimError(Exception):
    """A bad configuration or a failed step."""


class DataError(SimError):
    """Missing, malformed or inconsistent data files."""


class AgentError(SimError):
    """The recommender could not be reached or answered something unusable."""
