"""Atomic file writes: a reader (or a crash) never sees a half-written output file, nor a run's files half replaced."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path


class AtomicFiles:
    """Files written under temporary names beside their paths, renamed onto them together by `atomic_files`."""

    def __init__(self) -> None:
        self.pending: list[tuple[Path, Path]] = []  # (temporary, final) in the order they were asked for

    def path(self, path: Path) -> Path:
        """A new temporary file beside `path` (readable as a plain file would be) to write `path`'s content to."""
        path.parent.mkdir(parents=True, exist_ok=True)
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
        for _, path in self.pending:
            if path.is_dir():
                raise IsADirectoryError(f"cannot replace {path}: it is a folder (no file of this run was written)")
        for tmp, path in self.pending:
            os.replace(tmp, path)

    def discard(self) -> None:
        for tmp, _ in self.pending:
            tmp.unlink(missing_ok=True)


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
