"""Exceptions raised by embedlens.

Every error a user can provoke with bad input derives from :class:`EmbedlensError`, so the
command line can print its message without a traceback and library users can catch one type.
"""

from __future__ import annotations


class EmbedlensError(Exception):
    """Base class of all errors embedlens raises on purpose."""


class DataError(EmbedlensError, ValueError):
    """The input data is malformed: a missing column, an empty table, an unknown id."""


class DatasetNotAvailableError(EmbedlensError):
    """A dataset cannot be found locally and cannot be downloaded."""


class DownloadError(EmbedlensError):
    """A download failed or produced a file whose checksum does not match."""


class EmbedlensWarning(UserWarning):
    """Something the user should know that does not stop the work (a cache entry that was
    unreadable and is recomputed, test items that could not be ranked)."""


class UnknownNameError(EmbedlensError, KeyError):
    """A name (variant, protocol, method, title) is not known; the message lists close matches."""

    def __str__(self) -> str:  # KeyError would quote the message; show it as written
        return str(self.args[0]) if self.args else ""


def unknown_name(kind: str, name: str, known: list[str] | tuple[str, ...]) -> UnknownNameError:
    """Build an :class:`UnknownNameError` that suggests the closest known names."""
    import difflib

    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
    hint = f" Did you mean: {', '.join(repr(c) for c in close)}?" if close else ""
    listed = ", ".join(known) if len(known) <= 20 else f"{len(known)} known names"
    return UnknownNameError(f"Unknown {kind} {name!r}.{hint} Known: {listed}.")
