"""The event log: one JSON line per served /next and /last, written off the request path.

Each process writes its own file (`events-<host>-<pid>.jsonl`, rotated by size), so several
gunicorn workers never interleave or truncate each other's lines; every file in the folder is
part of the log. Requests only put the event on a queue; a background thread writes it.
"""

from __future__ import annotations

import atexit
import json
import logging
import logging.handlers
import os
import queue
import socket
import threading
from pathlib import Path


class EventLog:
    def __init__(self, directory: Path, max_bytes: int = 256 * 2**20, backups: int = 50) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"events-{socket.gethostname()}-{os.getpid()}.jsonl"
        handler = logging.handlers.RotatingFileHandler(
            self.path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
        )
        handler.setFormatter(logging.Formatter("%(message)s"))
        self._queue: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        self._listener = logging.handlers.QueueListener(self._queue, handler)
        self._logger = logging.Logger(f"botify.events.{id(self)}")
        self._logger.addHandler(logging.handlers.QueueHandler(self._queue))
        self._closed = threading.Event()
        self._listener.start()
        atexit.register(self.close)

    def write(self, event: dict) -> None:
        """Queue one event; never blocks on disk."""
        self._logger.info(json.dumps(event, separators=(",", ":"), allow_nan=False))

    def close(self) -> None:
        """Write out everything queued, then close the file (idempotent)."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._listener.stop()
        for handler in self._listener.handlers:
            handler.close()
