"""The argparse types the benchmarks share: a bad argument is one line (exit 2) before any work."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from botify.arguments import bounded

positive = bounded(int, 1)  # counts, seconds
non_negative = bounded(int, 0)  # seeds, counts that may skip a step


def folder(text: str) -> Path:
    """A folder to write in: one that exists, or one that can be made (no file in the way, the parent writable)."""
    path = Path(text)
    found = next(p for p in (path, *path.parents) if p.exists())  # `.` or `/` ends the walk up
    if not found.is_dir():
        raise argparse.ArgumentTypeError(f"{found} is not a folder")
    if not os.access(found, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"cannot write in {found}")
    return path


def output_file(text: str) -> Path:
    """A file the results can be written to (its folder made if missing)."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} is a folder, not a file")
    folder(str(path.parent))
    if path.exists() and not os.access(path, os.W_OK):
        raise argparse.ArgumentTypeError(f"cannot write {path}")
    return path
