"""Atomic file writes: a reader (or a crash) never sees a half-written output file, nor a run's files half replaced.

A run that fails also leaves no folder it made for its outputs behind empty, nor a temporary file, even when it is
stopped at once (`abandon_all`, which the second Ctrl-C calls from another thread)."""

from __future__ import annotations

import itertools
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from pathlib import Path


def make_folder(path: Path) -> list[Path]:
    """Make the folder `path` and its missing parents; returns the folders this call made, `path` first."""
    missing = list(itertools.takewhile(lambda folder: not os.path.lexists(folder), (path, *path.parents)))
    made = []
    for folder in reversed(missing):  # the topmost first
        try:
            folder.mkdir()
        except FileExistsError:  # made meanwhile by another process: not this call's to remove
            continue
        made.append(folder)
    path.mkdir(parents=True, exist_ok=True)  # its error if something else is in the way
    return made[::-1]


def remove_if_empty(folders: Iterable[Path]) -> None:
    """Remove those of `folders` that are empty (deepest first, so a parent emptied by it goes too)."""
    for folder in sorted(folders, key=lambda f: len(f.absolute().parts), reverse=True):
        with suppress(OSError):  # a file in it, or gone already
            folder.rmdir()


@contextmanager
def made_folder(path: Path) -> Iterator[Path]:
    """Yield the folder `path`, made if missing; if the block fails, the folders it made go again if still empty."""
    folders = AtomicFiles()  # without files of its own: the folders it made, for `discard`
    try:
        folders.make_folder(path)
        yield path
    except BaseException:
        folders.discard()
        raise
    finally:
        folders.forget()


_lock = threading.RLock()  # one rename, discard or `abandon_all` at a time
_under_way: dict[AtomicFiles, None] = {}  # the sets neither renamed nor discarded yet, oldest first


def abandon_all() -> None:
    """Discard every set of files under way, and keep them from being renamed after: for a stop that runs no
    `finally` (`os._exit` next). A set being renamed is renamed whole first."""
    _lock.acquire()  # never released: the process ends
    for files in reversed(list(_under_way)):  # the newest first: a folder an older one made may be left empty
        files.discard()


class AtomicFiles:
    """Files written under temporary names beside their paths, renamed onto them together by `atomic_files`."""

    def __init__(self) -> None:
        self.pending: list[tuple[Path, Path]] = []  # (temporary, final) in the order they were asked for
        self.made: list[Path] = []  # folders made for them
        with _lock:
            _under_way[self] = None

    def make_folder(self, path: Path) -> None:
        """Make the folder `path` (and its missing parents) for these files; `discard` removes them if left empty."""
        with _lock:
            self.made += make_folder(path)

    def path(self, path: Path) -> Path:
        """A new temporary file beside `path` (readable as a plain file would be) to write `path`'s content to."""
        with _lock:
            self.make_folder(path.parent)
            fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            os.close(fd)
            tmp = Path(tmp_name)
            self.pending.append((tmp, path))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        return tmp

    def write_text(self, path: Path, text: str) -> None:
        self.path(path).write_text(text, encoding="utf-8")

    def replace_all(self) -> None:
        """Rename every file onto its path; a path that is a folder (which no file can replace) stops it first."""
        with _lock:
            for _, path in self.pending:
                if path.is_dir():
                    raise IsADirectoryError(f"cannot replace {path}: it is a folder (no file of this run was written)")
            for tmp, path in self.pending:
                os.replace(tmp, path)

    def discard(self) -> None:
        """Remove the temporary files not renamed, and the folders made for them that this leaves empty."""
        with _lock:
            for tmp, _ in self.pending:
                tmp.unlink(missing_ok=True)
            remove_if_empty(self.made)
            self.forget()

    def forget(self) -> None:
        """No longer under way: `abandon_all` leaves these files and folders alone."""
        with _lock:
            _under_way.pop(self, None)


@contextmanager
def atomic_files() -> Iterator[AtomicFiles]:
    """Yield an `AtomicFiles`; its files replace their paths together if the block succeeds, none if it fails."""
    files = AtomicFiles()
    try:
        yield files
        files.replace_all()
    finally:
        files.discard()


def joined(files: AtomicFiles | None) -> AbstractContextManager[AtomicFiles]:
    """`files` when a caller gathers a run's outputs (it renames them with its others), else a set of their own."""
    return nullcontext(files) if files is not None else atomic_files()


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    with atomic_files() as files:
        yield files.path(path)


def write_text(path: Path, text: str, files: AtomicFiles | None = None) -> None:
    """Write a whole text file atomically (with `files`: when they are renamed)."""
    with joined(files) as into:
        into.write_text(path, text)
