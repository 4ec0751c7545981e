"""The argparse types the benchmarks share: a bad argument is one line (exit 2) before any work.

Each benchmark parses its arguments first (`main(parse_args())`) and imports numpy, Flask, LightFM... where the work
uses them, so that `--help` and a bad argument answer at once, not after seconds of imports."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from botify.arguments import bounded, output_folder, path_argument

positive = bounded(int, 1)  # counts, seconds
non_negative = bounded(int, 0)  # seeds, counts that may skip a step
__all__ = ["non_negative", "output_file", "output_folder", "positive"]  # output_folder: botify's, for the scripts


def output_file(text: str) -> Path:
    """A file the results can be written to (its folder made if missing)."""
    path = path_argument(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} is a folder, not a file")
    output_folder(str(path.parent))
    if path.exists() and not os.access(path, os.W_OK):
        raise argparse.ArgumentTypeError(f"cannot write {path}")
    return path
