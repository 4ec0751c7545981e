"""What every sim command line shares: one-line errors and a non-zero exit, never a traceback."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from sim.errors import SimError


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is a single line on stderr."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def path_argument(text: str) -> Path:
    """An argparse type: a path, but not an empty one (`Path("")` is the current folder, taken without a word).
    botify.arguments has the same one: sim never imports the service (it talks to it over HTTP)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path")
    return Path(text)


def run_cli(prog: str, main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """Run ``main``; a ``SimError`` or an OS error becomes ``prog: error: reason`` and exit status 1."""
    try:
        return main(argv)
    except (SimError, OSError) as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
