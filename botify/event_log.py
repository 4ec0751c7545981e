"""The event log: one JSON line per served /next and /last, in the file before the answer leaves.

Each process writes its own file (`events-<host>-<pid>.jsonl`, rotated by size into `.1`, `.2`, ...),
so several gunicorn workers never interleave or truncate each other's lines; every file in the folder
is part of the log. A line is one unbuffered `write(2)` into the page cache: a few microseconds, no
thread to wake, and a worker that is killed (even by SIGKILL) has lost none of the lines it answered for.
"""

from __future__ import annotations

import gzip
import os
import socket
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import IO

import orjson


class EventLog:
    def __init__(self, directory: Path, max_bytes: int = 256 * 2**20, backups: int = 50) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"events-{socket.gethostname()}-{os.getpid()}.jsonl"
        self.max_bytes, self.backups = max_bytes, backups
        self._lock = threading.Lock()  # gthread workers answer from several threads
        self._file = open(self.path, "ab", buffering=0)  # noqa: SIM115 (open for the process's life)
        self._size = self._file.tell()

    def write(self, event: dict) -> None:
        """Append one event as a JSON line (rotating first if the file would outgrow `max_bytes`)."""
        line = orjson.dumps(event, option=orjson.OPT_APPEND_NEWLINE)
        with self._lock:
            if self._file.closed:
                return
            if self._size and self._size + len(line) > self.max_bytes:
                self._rotate()
            self._file.write(line)
            self._size += len(line)

    def _rotate(self) -> None:
        """`path` -> `path.1` -> `path.2` ... up to `backups` (the oldest is dropped), then a fresh `path`."""
        self._file.close()
        for number in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{number}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{number + 1}"))
        if self.backups > 0:
            self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink()
        self._file = open(self.path, "ab", buffering=0)  # noqa: SIM115
        self._size = 0

    def close(self) -> None:
        """Close the file (idempotent); every line is already written."""
        with self._lock:
            self._file.close()


def log_files(paths: Iterable[Path | str]) -> list[Path]:
    """The files a log is made of: the given files, and every non-hidden file under the given folders
    (one per worker, rotated and gzipped ones included), sorted per folder. FileNotFoundError names a
    path that does not exist."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            found = (p for p in path.rglob("*") if p.is_file())
            files.extend(sorted(p for p in found if not any(x.startswith(".") for x in p.relative_to(path).parts)))
        else:
            raise FileNotFoundError(f"log path does not exist: {path}")
    return files


def open_log(path: Path) -> IO[bytes]:
    """A log file's bytes, gunzipped when it is gzipped (by its magic number, whatever its name)."""
    with path.open("rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gzipped else path.open("rb")
