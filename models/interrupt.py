"""Ctrl-C held until a safe point: Optuna's database writes are never cut in half; a second Ctrl-C stops at once.

A KeyboardInterrupt raised inside Optuna's bookkeeping (a SQLite commit, the step after a trial's last
epoch) escapes as another error, with a traceback (`UnboundLocalError`, `AssertionError`), and can leave
a trial half recorded. While tuning, SIGINT only raises a flag; the objective checks it before a trial
and after every epoch, and tuning checks it when the study returns, raising KeyboardInterrupt there.
The delay is at most one epoch, as long as Python's own handler waits for LightFM's epoch to return.

Python runs a signal's handler only between two bytecodes of the main thread: not during an epoch (C code), nor
while it waits for the study's lock or a busy SQLite file. So a thread reads the signals as they arrive
(`signal.set_wakeup_fd`), and at the second SIGINT discards the files under way (`models.atomic.abandon_all`),
says so in one line and ends the process with 130. A trial it cut short stays RUNNING in the study, as after a
crash: it is never counted as finished, and a rerun runs the trials still missing.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from models.atomic import abandon_all

STOPPED_AT_ONCE = "models: interrupted again: stopped at once"


class HeldInterrupt:
    """Whether Ctrl-C was pressed since the hold began."""

    def __init__(self) -> None:
        self.requested = False

    def request(self, signum: int, frame: object) -> None:
        self.requested = True  # pressing again stops at once (`second_interrupt_stops_at_once`)

    def check(self) -> None:
        """Raise KeyboardInterrupt if Ctrl-C was pressed (call where stopping loses nothing)."""
        if self.requested:
            raise KeyboardInterrupt


def python_handles_sigint() -> bool:
    """Whether Python may handle SIGINT here: in the main thread, SIGINT not ignored (a background job's)."""
    return threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) not in (
        signal.SIG_IGN,
        None,
    )


@contextmanager
def held_interrupt() -> Iterator[HeldInterrupt]:
    """Hold SIGINT for the block (only where Python may handle it: `python_handles_sigint`)."""
    held = HeldInterrupt()
    if not python_handles_sigint():
        yield held
        return
    previous = signal.signal(signal.SIGINT, held.request)
    try:
        yield held
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def second_interrupt_stops_at_once() -> Iterator[None]:
    """For the block, a second SIGINT ends the process at once, whatever the main thread is doing (the first one
    stops the block as it would otherwise: at a safe point, or where Python raises KeyboardInterrupt)."""
    if not python_handles_sigint():
        yield
        return
    read, write = os.pipe()
    os.set_blocking(write, False)  # the signal handler writes to it; it must never block
    previous = signal.set_wakeup_fd(write)
    watcher = threading.Thread(target=_stop_at_second_sigint, args=(read,), name="second Ctrl-C", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        signal.set_wakeup_fd(previous)
        os.close(write)  # the watcher reads the end of the pipe and returns
        watcher.join()
        os.close(read)


def _stop_at_second_sigint(read: int) -> None:
    """Count the SIGINTs among the signal numbers the wakeup pipe receives; at the second, stop at once."""
    sigints = 0
    while received := os.read(read, 512):
        sigints += received.count(signal.SIGINT)
        if sigints >= 2:
            abandon_all()
            after_a_bar = "\n" if sys.stderr.isatty() else ""  # a progress bar's line ends first
            os.write(2, f"{after_a_bar}{STOPPED_AT_ONCE}\n".encode())
            os._exit(130)
