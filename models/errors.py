"""The one exception type that means "your input is wrong", so the CLI can print it as one line."""

from __future__ import annotations


class InputError(Exception):
    """Bad input the user can fix (missing files, no positives, catalog mismatch); never a bug."""


class Diverged(InputError):
    """LightFM's parameters stopped being finite: these hyperparameters (a learning rate too high) cannot train."""
