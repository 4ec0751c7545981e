"""Ctrl-C held until a safe point: Optuna's database writes are never cut in half.

A KeyboardInterrupt raised inside Optuna's bookkeeping (a SQLite commit, the step after a trial's last
epoch) escapes as another error, with a traceback (`UnboundLocalError`, `AssertionError`), and can leave
a trial half recorded. While tuning, SIGINT only raises a flag; the objective checks it before a trial
and after every epoch, and tuning checks it when the study returns, raising KeyboardInterrupt there.
The delay is at most one epoch, as long as Python's own handler waits for LightFM's epoch to return.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class HeldInterrupt:
    """Whether Ctrl-C was pressed since the hold began."""

    def __init__(self) -> None:
        self.requested = False

    def request(self, signum: int, frame: object) -> None:
        self.requested = True  # pressing again changes nothing: the stop comes at the next safe point

    def check(self) -> None:
        """Raise KeyboardInterrupt if Ctrl-C was pressed (call where stopping loses nothing)."""
        if self.requested:
            raise KeyboardInterrupt


@contextmanager
def held_interrupt() -> Iterator[HeldInterrupt]:
    """Hold SIGINT for the block (only where Python may handle it: the main thread, SIGINT not ignored)."""
    held = HeldInterrupt()
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) in (
        signal.SIG_IGN,
        None,
    ):
        yield held
        return
    previous = signal.signal(signal.SIGINT, held.request)
    try:
        yield held
    finally:
        signal.signal(signal.SIGINT, previous)
