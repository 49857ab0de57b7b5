"""Folders embedlens owns, and locks that keep two processes from writing one place.

A folder embedlens creates for a run gets a marker file (:data:`MARKER`) at creation. Only a
folder with that marker may be emptied (``--force``) or resumed; a folder without it is the
user's, and embedlens refuses to write into it unless it is empty. The marker is also the
lock: the process writing the folder holds an exclusive ``flock`` on it, so a second writer
gets a clear error instead of a silent mix of two runs (the kernel drops the lock when the
process dies, so a crash never leaves a stale lock).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from embedlens.core.errors import DataError
from embedlens.core.files import try_lock

MARKER = ".embedlens"

def is_owned(path: str | Path) -> bool:
    """Whether ``path`` is a real folder embedlens created (its marker is a regular file)."""
    path = Path(path)
    marker = path / MARKER
    return (path.is_dir() and not path.is_symlink() and marker.is_file()
            and not marker.is_symlink())


class OwnedFolder:
    """A folder embedlens writes, locked for this process until :meth:`release`."""

    def __init__(self, path: Path, fd: int, created: bool, was_empty: bool) -> None:
        self.path, self._fd, self.created, self.was_empty = path, fd, created, was_empty

    def release(self) -> None:
        """Give up the lock (the folder stays)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def discard(self) -> None:
        """Undo this process's work: remove the folder if it created it, leave a folder that
        was empty empty again, else (a replaced run) keep just the marker; release the
        lock."""
        if self.created:
            shutil.rmtree(self.path, ignore_errors=True)
        else:
            clear(self.path)
            if self.was_empty:
                (self.path / MARKER).unlink(missing_ok=True)
        self.release()

    def __enter__(self) -> OwnedFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def clear(path: Path) -> None:
    """Delete everything in an owned folder but its marker; links are removed, never
    followed."""
    for entry in path.iterdir():
        if entry.name == MARKER:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def preflight(
    path: str | Path,
    force: bool = False,
    resume: bool = False,
    occupied: Callable[[Path], str] | None = None,
    kind: str = "run",
) -> None:
    """The checks of :func:`claim` that need no write: run them before slow work (loading
    data) so a folder that would be refused is refused at once."""
    path = Path(path).expanduser()
    if path.is_symlink():
        raise DataError(f"{path} is a symbolic link; embedlens writes run folders only at real "
                        "paths. Choose another --out.")
    if path.exists() and not path.is_dir():
        raise DataError(f"{path} exists and is not a folder. Choose another --out.")
    if not path.is_dir():
        return
    work = [e for e in path.iterdir() if e.name != MARKER]
    if not work:
        return
    if not is_owned(path):
        raise DataError(f"{path} exists, is not empty and was not created by embedlens; "
                        "nothing was changed. Choose another --out.")
    if not (force or resume):
        raise DataError(occupied(path) if occupied else
                        f"{path} already holds an embedlens {kind}; use --force to replace it.")


def claim(
    path: str | Path,
    kind: str,
    force: bool = False,
    resume: bool = False,
    occupied: Callable[[Path], str] | None = None,
) -> OwnedFolder:
    """Make ``path`` this process's folder for a ``kind`` ("run", "train") and lock it.

    * missing or empty: created and marked;
    * holding a marker: locked, then kept as it is (``resume``), emptied (``force``), or
      refused with ``occupied(path)`` as the message;
    * anything else (a user's folder, a file, a symbolic link): refused, nothing touched.
    """
    path = Path(path).expanduser()
    preflight(path, force=True)  # symbolic links, files, a user's folder: refused untouched
    existed = path.is_dir()
    was_empty = existed and not any(path.iterdir())
    path.mkdir(parents=True, exist_ok=True)
    marker = path / MARKER
    fd = os.open(marker, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    if not try_lock(fd):
        os.close(fd)
        raise DataError(f"{path} is being written by another embedlens process; wait for it "
                        "to finish or choose another --out.")
    folder = OwnedFolder(path, fd, created=not existed, was_empty=was_empty)
    try:
        holds_work = any(e.name != MARKER for e in path.iterdir())
        if holds_work and not resume:
            if not force:
                raise DataError(occupied(path) if occupied else
                                f"{path} already holds an embedlens {kind}; use --force to "
                                "replace it.")
            clear(path)
        if not holds_work or force:
            stamp = {"created_by": "embedlens", "kind": kind,
                     "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(stamp) + "\n").encode(), 0)
    except BaseException:
        folder.release()
        raise
    return folder
