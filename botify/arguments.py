"""Command-line pieces the project's CLIs share: bad arguments end with one line on stderr."""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn


class OneLineParser(argparse.ArgumentParser):
    """Bad arguments end with one line on stderr (and exit code 2), like every other bad input."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def bounded(kind: Callable[[str], float], low: float, high: float | None = None) -> Callable[[str], float]:
    """An argparse type: `kind(text)` within [low, high] (no upper bound when `high` is None)."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if isinstance(value, float) and not math.isfinite(value):  # NaN passes every comparison
            raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
        if value < low or (high is not None and value > high):
            limits = f">= {low}" if high is None else f"in [{low}, {high}]"
            raise argparse.ArgumentTypeError(f"{value} is not {limits}")
        return value

    return parse


def path_argument(text: str) -> Path:
    """An argparse type: a path, but not an empty one (`Path("")` is the current folder, taken without a word)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path")
    return Path(text)


def output_folder(text: str) -> Path:
    """An argparse type: a folder to write in, there already or to be made: no file in the way, writable."""
    path = path_argument(text)
    found = next(p for p in (path, *path.parents) if os.path.lexists(p))  # `.` or `/` ends the walk up
    if not found.is_dir():
        what = "a link to nothing" if found.is_symlink() and not found.exists() else "a file"
        raise argparse.ArgumentTypeError(f"{found} is {what}, not a folder")
    if not os.access(found, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"cannot write in {found}")
    return path
