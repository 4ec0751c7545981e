"""The one error the A/B tools raise for bad input: its message is the one line the CLI prints."""

from __future__ import annotations


class ABInputError(ValueError):
    """Input that cannot be analysed (no events, no such experiment, no control arm, ...)."""
