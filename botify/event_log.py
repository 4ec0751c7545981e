"""The event log: one JSON line per served /next and /last, in the file before the answer leaves.

This module is the log's one home: the writer, and the reader every consumer (`models`, `ab`) shares to find
the log's files, read their lines, tell a valid event from a malformed line and count what was skipped.

Each process writes its own file (`events-<host>-<pid>.jsonl`, rotated by size into `.1`, `.2`, ...),
so several gunicorn workers never interleave or truncate each other's lines; every file in the folder
is part of the log. A line is one unbuffered `write(2)` into the page cache: a few microseconds, no
thread to wake, and a worker that is killed (even by SIGKILL) has lost none of the lines it answered for.
"""

from __future__ import annotations

import gzip
import logging
import math
import os
import socket
import threading
import time
import zlib
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, NamedTuple

import orjson

from botify.settings import Settings

MESSAGES = frozenset({"next", "last"})
logger = logging.getLogger(__name__)
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
PROGRESS_LINES = 8192  # a reader reports its progress through a file every this many lines
EXAMPLES = 5  # skipped lines a reading describes


class EventLogError(OSError):
    """The event log could not take a line (a full disk, a folder gone): the request is not served."""


PATH_CHECK_SECONDS = 1.0  # how often a writer checks its file is still the one at its path (a stat costs 2-10 µs)
PROBE_BYTES = 4096  # a failing log is healthy again once it takes this much more (a few lines), then cut off


class EventLog:
    """One process's log file. A line is written whole or not at all, and the file the worker writes is the one
    at its path: a file moved or deleted under it (logrotate's `create` method, an operator) is noticed within
    `check_seconds`, and a new file is started there; so is a file emptied in place (`copytruncate`), which then
    fills up to the size limit again. Rotation by size keeps `backups` older files."""

    def __init__(
        self,
        directory: Path,
        max_bytes: int = Settings.log_max_bytes,
        backups: int = Settings.log_backups,
        check_seconds: float = PATH_CHECK_SECONDS,
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"events-{socket.gethostname()}-{os.getpid()}.jsonl"
        self.max_bytes, self.backups, self.check_seconds = max_bytes, backups, check_seconds
        self._lock = threading.Lock()  # gthread workers answer from several threads
        self._closed = False
        self.failing: str | None = None  # why the latest line could not be written (None: it was, or a probe since)
        self._file: IO[bytes] | None = None
        self._moved = False  # the file written so far is no longer the one at `path`
        self._open()

    def _open(self) -> None:
        """Open the file at `path` and only then let go of the one written so far: a failed open leaves the
        writer as it was (the next line tries again), never holding a closed file."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        opened = open(self.path, "ab", buffering=0)  # noqa: SIM115 (open for the process's life)
        stat = os.fstat(opened.fileno())
        previous = self._file
        self._file, self._identity, self._size = opened, (stat.st_dev, stat.st_ino), stat.st_size
        self._check_at = time.monotonic() + self.check_seconds
        if previous is not None:
            previous.close()

    def write(self, event: dict) -> None:
        """Append one event as a JSON line (rotating first if the file would outgrow `max_bytes`).
        EventLogError when it cannot be written; a partly written line is cut off again."""
        line = orjson.dumps(event, option=orjson.OPT_APPEND_NEWLINE)
        with self._lock:
            if self._closed:
                raise EventLogError("the event log is closed (the worker is stopping)")
            try:
                self._ready_for(len(line))
                self._append(line)
            except OSError as error:
                reason = error.strerror or str(error)
                if self.failing is None:
                    logger.error("cannot write the event log %s: %s; listens get 503 until it can", self.path, reason)
                self.failing = reason
                raise EventLogError(f"the event log cannot take the listen ({reason})") from None
            self.failing = None

    def healthy(self) -> bool:
        """Whether lines can be written. After a failure, each call probes for real: the file at `path` is reopened
        (and rotated if full), the disk must have room, and PROBE_BYTES of blank lines must be written (then cut off
        again): free space alone says nothing of a quota, a file size limit or an I/O error."""
        with self._lock:
            if self.failing is not None and not self._closed:
                try:
                    self._reopen()
                    self._ready_for(PROBE_BYTES)
                    if os.statvfs(self.path.parent).f_bavail > 0:
                        self._append(b"\n" * PROBE_BYTES)
                        self._cut(PROBE_BYTES)
                        self._size -= PROBE_BYTES
                        self.failing = None
                except OSError as error:
                    self.failing = error.strerror or str(error)
            return self.failing is None

    def _ready_for(self, length: int) -> None:
        """Start the file at `path` if the one written is no longer there; rotate if `length` more bytes would
        outgrow `max_bytes`."""
        if self._moved or (time.monotonic() >= self._check_at and not self._still_at_path()):
            self._reopen()
        if self._size and self._size + length > self.max_bytes:
            self._rotate()

    def _reopen(self) -> None:
        """Start writing the file at `path`; until that succeeds, every line tries again (and fails)."""
        self._moved = True
        self._open()
        self._moved = False

    def _still_at_path(self) -> bool:
        self._check_at = time.monotonic() + self.check_seconds
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return False
        if (stat.st_dev, stat.st_ino) != self._identity:
            return False
        self._size = stat.st_size  # emptied in place (logrotate's copytruncate): fill it up again before rotating
        return True

    def _append(self, data: bytes) -> None:
        """Write `data` whole at the file's end, or cut off what was written of it and raise."""
        written = 0
        try:
            while written < len(data):  # a write(2) may take part of a line (a disk filling up)
                written += self._file.write(memoryview(data)[written:])
        except OSError:
            if written:  # no half line for the next one to be glued to
                self._cut(written)
            raise
        self._size += len(data)

    def _cut(self, count: int) -> None:
        """Cut `count` bytes off the file's end, as it is now: it may have been emptied in place since the writer
        last looked, and a cut past its end would fill it with zeros."""
        self._file.truncate(max(0, os.fstat(self._file.fileno()).st_size - count))

    def _rotate(self) -> None:
        """`path` -> `path.1` -> `path.2` ... up to `backups` (the oldest is dropped), then a fresh `path`. The file
        is renamed while still open: a rename that fails leaves the writer on the file it had."""
        for number in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{number}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{number + 1}"))
        if self.backups > 0:
            self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink()
        self._reopen()

    def close(self) -> None:
        """Close the file (idempotent); every line is already written."""
        with self._lock:
            self._closed = True
            self._file.close()


def check_log_dir(directory: Path) -> None:
    """OSError naming why the event log cannot be written in `directory` (made here if missing): each worker
    would otherwise fail to boot with a traceback."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OSError(f"cannot create BOTIFY_LOG_DIR {directory}: {error.strerror}") from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise OSError(f"cannot write in BOTIFY_LOG_DIR {directory}: permission denied")


def log_files(paths: Iterable[Path | str]) -> list[Path]:
    """The files a log is made of: the given files, and every non-hidden file under the given folders
    (one per worker, rotated and gzipped ones included), sorted per folder, each once however often the
    paths name it (a folder and a file in it, the same folder twice). FileNotFoundError names a path that
    does not exist, or is neither a file nor a folder."""
    files: dict[Path, Path] = {}  # the file as found, by its resolved path
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            found = [path]
        elif path.is_dir():
            found = sorted(_folder_files(path))
        else:  # a pipe (`--logs <(zcat ...)`) is no file to read twice, nor is a device
            what = "is not a file or a folder" if path.exists() else "does not exist"
            raise FileNotFoundError(f"log path {what}: {path}")
        for file in found:
            files.setdefault(file.resolve(), file)
    return list(files.values())


def _folders(folder: Path) -> Iterator[tuple[str, str, list[str]]]:
    """(path, real path, file names) of each non-hidden folder under `folder`, through links to folders too (a
    replica's folder linked into a log folder is part of the log); each real folder once, so a link back up is no
    loop."""
    seen: set[str] = set()
    for root, folders, names in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            folders.clear()
            continue
        seen.add(real)
        folders[:] = [name for name in folders if not name.startswith(".")]
        yield root, real, names


def _folder_files(folder: Path) -> Iterator[Path]:
    """The non-hidden files under `folder` (see `_folders`)."""
    for root, _, names in _folders(folder):
        yield from (p for name in names if not name.startswith(".") and (p := Path(root, name)).is_file())


def log_folder_holding(folder: Path, paths: Iterable[Path | str]) -> Path | None:
    """The log folder that `folder` is in, if any: a given folder or one under it that is read whole (subfolders and
    folders linked into it too), or the folder of a given file when `folder` is that very folder (beside the log's
    files). What a command writes there would be read as log lines by its next run."""
    target = folder.resolve()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for root, real, _ in _folders(path):
                if target.is_relative_to(real):
                    return Path(root)
        if path.is_file() and target == path.parent.resolve():
            return path.parent
    return None


def _size(path: Path) -> int:
    """A log file's size on disk; 0 for a file gone since it was listed."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def bytes_on_disk(files: Iterable[Path]) -> int:
    """The files' total size, for a progress bar over `read_lines` (a file gone since it was listed counts 0)."""
    return sum(_size(path) for path in files)


def open_log(path: Path) -> IO[bytes]:
    """A log file's bytes, gunzipped when it is gzipped (by its magic number, whatever its name)."""
    with path.open("rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gzipped else path.open("rb")


def read_lines(
    path: Path, damaged: Callable[[Path, int, str], None], progress: Callable[[int], None] | None = None
) -> Iterator[bytes]:
    """Every line of a log file (see `open_log`). A gzipped file cut short (copied while it was being
    compressed) or corrupt yields the lines before the damage, then calls `damaged(path, lines_read, reason)`
    instead of raising: one bad file must not cost the rest of the log; so does a file gone before it is opened
    (rotated away or deleted while a live folder is read). `progress(n)`: n more bytes of the file on disk were
    read (compressed bytes for a gzipped file), for a progress bar; the whole size in all."""
    try:
        size = path.stat().st_size
        opened = open_log(path)
    except FileNotFoundError:
        damaged(path, 0, "gone before it was read (rotated away or deleted meanwhile)")
        return
    read = reported = 0
    try:
        with opened as stream:
            on_disk = getattr(stream, "fileobj", stream)  # a gzip file's compressed stream
            for line in stream:
                read += 1
                if progress is not None and read % PROGRESS_LINES == 0:
                    position = min(on_disk.tell(), size)
                    progress(position - reported)
                    reported = position
                yield line
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        damaged(path, read, f"gzip data cut short or corrupt ({error})")
    if progress is not None:
        progress(size - reported)


class Event(NamedTuple):
    """One valid event line; the field order is the readers' column order."""

    user: int
    timestamp: int | float  # ms
    message: str  # "next" or "last"
    track: int
    time: int | float  # fraction of the track listened, in [0, 1]
    latency: int | float  # seconds, >= 0
    experiments: dict[str, object]  # experiment -> arm ({} when the line has none)
    recommendation: int | None  # the answer of a `next` (None for `last`, or a log that lacks it)
    experiment: str | None  # the experiment that routed the request (None in logs written before it was logged)


def _int64(value: object) -> bool:
    return type(value) is int and INT64_MIN <= value <= INT64_MAX


def finite_number(value: object) -> bool:
    """A JSON number that is neither a bool, NaN nor infinite."""
    return type(value) is int or (type(value) is float and math.isfinite(value))


def parse_event(line: str | bytes) -> tuple[Event | None, str]:
    """One log line -> (Event, "") or (None, why it is not a valid event); never raises.

    Every field of the event log (README, "Event log") is checked exactly: a bool is not a user id, "3" is not a
    track, ids and timestamps fit in 64 bits (the readers' int64 columns), numbers are finite. orjson
    rejects NaN, infinities and nesting deeper than 1024 as not JSON.
    """
    try:
        raw = orjson.loads(line)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, too deep, not text at all
        return None, "not JSON"
    if type(raw) is not dict:
        return None, "not a JSON object"
    get = raw.get
    message, user, track, timestamp = get("message"), get("user"), get("track"), get("timestamp")
    time, latency, experiments = get("time"), get("latency"), get("experiments", {})
    if type(message) is not str:
        return None, "message is missing or not a string"
    if message not in MESSAGES:
        return None, f"message is {message!r:.40}, not 'next' or 'last'"
    if not _int64(user):
        return None, "user is missing or not a 64-bit integer"
    if user < 0:  # the service never logs one: its export would be refused by `botify load` whole
        return None, "user is negative: not an id /next takes"
    if not _int64(track):
        return None, "track is missing or not a 64-bit integer"
    if not finite_number(timestamp) or not INT64_MIN <= timestamp <= INT64_MAX:
        return None, "timestamp is missing or not a 64-bit number of milliseconds"
    if not finite_number(time) or not 0 <= time <= 1:
        return None, "time is missing or outside [0, 1]"
    if not finite_number(latency) or latency < 0:
        return None, "latency is missing, negative or not finite"
    recommendation = get("recommendation")  # the course's logger writes null on `last` lines
    if recommendation is not None and not _int64(recommendation):
        return None, "recommendation is not a 64-bit integer"
    if type(experiments) is not dict:
        return None, "experiments is not an object"
    routed_by = get("experiment")
    if routed_by is not None and type(routed_by) is not str:
        return None, "experiment is not a string"
    return Event(user, timestamp, message, track, time, latency, experiments, recommendation, routed_by), ""


@dataclass
class LogReading:
    """Reads a log's files into valid events and counts what it met: non-blank lines, and those that were
    skipped as no valid event (the first few described, and every damaged file)."""

    lines: int = 0
    skipped: int = 0
    examples: list[str] = field(default_factory=list)  # "file:line: why", the first EXAMPLES
    damaged: list[str] = field(default_factory=list)  # "path: why", every file whose lines ended early
    copies: list[str] = field(default_factory=list)  # "path: N lines ... other path", files that repeat another
    _prefixes: dict[bytes, tuple[Path, array]] = field(default_factory=dict, repr=False)

    def events(self, files: Sequence[Path], progress: Callable[[int], None] | None = None) -> Iterator[Event]:
        """Every valid event of `files`, in order. Blank lines are passed over; every other line that is no valid
        event is skipped and counted, and so is a gzipped file cut short, once (the lines before it are read).
        A file that begins with the lines of one read before (the same worker's file collected twice, whole or
        while it grew, plain or gzipped) has those lines read once and is listed in `copies`. `progress`: as
        `read_lines`'."""
        for path in files:
            yield from self._file_events(path, progress)

    def _file_events(self, path: Path, progress: Callable[[int], None] | None) -> Iterator[Event]:
        # A log file only grows (or is emptied and starts anew): copies of it taken at different times share their
        # first line and are prefixes of one another. Each line's running CRC of the file so far tells, line by
        # line, whether this file still repeats the longest file read before with the same first line.
        running, chain = 0, array("I")
        known: tuple[Path, array] | None = None
        key: bytes | None = None
        repeated = 0
        for number, line in enumerate(read_lines(path, self._damaged, progress), start=1):
            # the same CRC whether or not the line has its newline yet (a copy taken as it was being written)
            running = zlib.crc32(b"\n", zlib.crc32(line[:-1] if line.endswith(b"\n") else line, running))
            chain.append(running)
            if number == 1 and line.strip():
                key = line if line.endswith(b"\n") else line + b"\n"
                known = self._prefixes.get(key)
            if known is not None and number <= len(known[1]) and known[1][number - 1] == running:
                repeated += 1
                continue
            known = None
            if not line.strip():
                continue
            self.lines += 1
            event, reason = parse_event(line)
            if event is None:
                self._skip(f"{path.name}:{number}", reason)
                continue
            yield event
        if repeated:
            other = self._prefixes[key][0]
            self.copies.append(f"{path}: its first {repeated} lines are those of {other}, read once")
        if key is not None and len(chain) > len(self._prefixes.get(key, (None, ()))[1]):
            self._prefixes[key] = (path, chain)

    def _skip(self, where: str, reason: str) -> None:
        self.skipped += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append(f"{where}: {reason}")

    def _damaged(self, path: Path, read: int, reason: str) -> None:
        description = f"{reason}; the {read} lines before it were read" if read else reason
        self.damaged.append(f"{path}: {description}")
        self._skip(f"{path.name}:{read + 1}", description)
