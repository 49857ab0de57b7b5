"""Progress reporting shared by every long-running step.

One switch (:func:`set_quiet` or ``EMBEDLENS_QUIET=1``; the CLI's ``--quiet``) silences all
bars, so scripts and CI logs stay clean.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")

def quiet_from_env() -> bool:
    """Whether ``EMBEDLENS_QUIET`` asks for silence (any value but empty, 0 or false)."""
    return os.environ.get("EMBEDLENS_QUIET", "").strip().lower() not in ("", "0", "false")


_quiet = quiet_from_env()
# A thread may be silenced on its own: work run in the background (a run's cold-start fits
# beside a warm one) must not draw bars through the ones the run draws in the foreground.
_thread = threading.local()


def set_quiet(quiet: bool) -> None:
    """Silence (or re-enable) every progress bar embedlens draws."""
    global _quiet
    _quiet = quiet


def is_quiet() -> bool:
    """Whether progress output is currently silenced (everywhere, or on this thread)."""
    return _quiet or getattr(_thread, "quiet", False)


@contextlib.contextmanager
def quiet_here() -> Iterator[None]:
    """Silence bars and notes on the calling thread alone, for the block."""
    before = getattr(_thread, "quiet", False)
    _thread.quiet = True
    try:
        yield
    finally:
        _thread.quiet = before


def note(message: str) -> None:
    """One line about a step on stderr (silenced like the bars)."""
    if not is_quiet():
        print(message, file=sys.stderr, flush=True)


def progress(iterable: Iterable[T], desc: str, total: int | None = None) -> Iterator[T]:
    """Wrap ``iterable`` in a progress bar unless quiet."""
    return iter(tqdm(iterable, desc=desc, total=total, disable=is_quiet(), leave=False))


def bar(desc: str, total: int | None = None, unit: str = "it") -> tqdm:
    """A manually advanced progress bar (``.update(n)``); disabled when quiet."""
    return tqdm(desc=desc, total=total, unit=unit, disable=is_quiet(), leave=False)
