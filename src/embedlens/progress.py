"""Progress reporting shared by every long-running step.

One switch (:func:`set_quiet` or ``EMBEDLENS_QUIET=1``; the CLI's ``--quiet``) silences all
bars, so scripts and CI logs stay clean.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")

_quiet = os.environ.get("EMBEDLENS_QUIET", "") not in ("", "0", "false")


def set_quiet(quiet: bool) -> None:
    """Silence (or re-enable) every progress bar embedlens draws."""
    global _quiet
    _quiet = quiet


def is_quiet() -> bool:
    """Whether progress output is currently silenced."""
    return _quiet


def progress(iterable: Iterable[T], desc: str, total: int | None = None) -> Iterator[T]:
    """Wrap ``iterable`` in a progress bar unless quiet."""
    return iter(tqdm(iterable, desc=desc, total=total, disable=_quiet, leave=False))


def bar(desc: str, total: int | None = None, unit: str = "it") -> tqdm:
    """A manually advanced progress bar (``.update(n)``); disabled when quiet."""
    return tqdm(desc=desc, total=total, unit=unit, disable=_quiet, leave=False)
