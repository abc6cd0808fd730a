"""Output files: checked before any work starts, written under a temporary name, then renamed.

A run that fails or is killed half way leaves no half-written WAV, trace or plot behind, and a
set of files that belong together (a WAV and its trace) appear together or not at all.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


class OutputError(ValueError):
    """An output path cannot be written; the message names it and the fix."""


def check_writable(path: str | Path, what: str = "output", suffixes: Collection[str] | None = None) -> Path:
    """Refuse, before any work, a path that cannot be written (no folder, not a folder, no permission,
    a folder where files cannot be created, such as /proc, or a full disk) or, given `suffixes`
    (lower case, no dot), a suffix the writer does not know."""
    path = Path(path)
    if suffixes is not None and path.suffix.lower().lstrip(".") not in suffixes:
        known = ", ".join(f".{x}" for x in sorted(suffixes))
        raise OutputError(
            f"{what} {path}: unknown file type {path.suffix or '(no suffix)'!r}; use one of {known}"
        )
    if path.is_dir():
        raise OutputError(f"{what} {path} is a folder; give a file name, e.g. {path / 'out.wav'}")
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputError(f"{what} {path} exists and cannot be overwritten (permission denied)")
    _check_parent(path.parent, path, what)
    return path


def check_folder(path: str | Path, what: str = "output folder") -> Path:
    """Refuse, before any work, a folder that cannot be made or written (a file in the way, no permission)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{what} {path} is a file, not a folder; give a folder path")
    _check_parent(path, path, what)
    return path


def _check_parent(folder: Path, path: Path, what: str) -> None:
    """The nearest existing folder at or above `folder` decides (the rest is created): writable?"""
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise OutputError(f"{what} {path}: {folder} is a file, not a folder; choose a path in a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(
            f"{what} {path}: cannot write in {folder} (permission denied); choose another folder"
        )
    _try_write(folder, path, what)


def _try_write(folder: Path, path: Path, what: str) -> None:
    """Create, write, flush and remove a small hidden file in `folder`: what the output will need.

    Permission bits do not tell everything (root passes them; /proc and read-only or full file
    systems refuse only the write itself), so the write is tried.
    """
    probe = folder / f".smitin-check-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"smitin")
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as err:
        raise OutputError(
            f"{what} {path}: cannot write in {folder} ({err.strerror or err}); choose another folder"
        ) from None
    finally:
        try:
            probe.unlink()
        except OSError:
            pass


def temporary_name(path: Path) -> Path:
    """A hidden sibling with the same suffix (writers such as soundfile pick the format from it)."""
    return path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")


@contextmanager
def staged(paths: Sequence[str | Path]) -> Iterator[list[Path]]:
    """Yield temporary paths to write; on success all are renamed into place, on failure all removed.

    Files are created the ordinary way (the umask decides their mode), never with mkstemp's 0600.
    """
    finals = [Path(p) for p in paths]
    temps = [temporary_name(p) for p in finals]
    for p in finals:
        p.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield temps
        for tmp, final in zip(temps, finals, strict=True):
            os.replace(tmp, final)
    finally:
        for tmp in temps:
            tmp.unlink(missing_ok=True)


@contextmanager
def atomic(path: str | Path) -> Iterator[Path]:
    """One file: write to the yielded temporary path; it replaces `path` only if the block succeeds."""
    with staged([path]) as (tmp,):
        yield tmp
