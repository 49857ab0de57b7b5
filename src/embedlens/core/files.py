"""Atomic writes and checked reads: one way to put an artefact on disk and to read it back.

Every artefact embedlens writes (Parquet, npz, JSON, TOML, HTML, PNG, TSV) goes through
:func:`atomic_path`: the writer fills a temporary file in the target's folder, which is then
renamed over the target. A reader never sees half a file, and an interrupted writer leaves
the old file (or none), never a truncated one. Readers go through :func:`read_json` /
:func:`read_parquet`, which turn a missing, truncated or foreign file into one
:class:`~embedlens.core.errors.DataError` naming the file.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from embedlens.core.errors import DataError, EmbedlensError


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix, so writers that pick a format by
    suffix still do); on success it replaces ``path`` in one rename, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}-{secrets.token_hex(4)}.tmp{path.suffix}")
    try:
        yield tmp
        if not tmp.exists():
            raise EmbedlensError(f"Internal error: nothing was written for {path}.")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


def write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, value: Any) -> Path:
    """Write ``value`` as indented JSON, atomically (non-JSON values via ``str``)."""
    return write_text(path, json.dumps(value, indent=2, default=str) + "\n")


def read_json(path: str | Path, what: str = "file") -> Any:
    """Parse a JSON file; a missing, unreadable or malformed one is a :class:`DataError`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"No {what} at {path}.")
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(
            f"{path} is not a readable {what} (truncated or not JSON: {_short(exc)}); "
            "restore it or re-create it."
        ) from None


def read_json_object(path: str | Path, what: str, required: tuple[str, ...] = ()) -> dict:
    """:func:`read_json` of a file that must hold an object with the ``required`` keys."""
    value = read_json(path, what)
    if not isinstance(value, dict):
        raise DataError(f"{path} is not a valid {what}: expected a JSON object, got "
                        f"{type(value).__name__}.")
    missing = [k for k in required if k not in value]
    if missing:
        raise DataError(f"{path} is not a valid {what}: missing {', '.join(missing)}.")
    return value


def read_parquet(path: str | Path, what: str = "Parquet file"):
    """``polars.read_parquet`` that turns a missing or broken file into a :class:`DataError`."""
    import polars as pl

    path = Path(path)
    if not path.is_file():
        raise DataError(f"No {what} at {path}.")
    try:
        return pl.read_parquet(path)
    except Exception as exc:  # polars/arrow raise several types for a corrupt file
        raise DataError(f"{path} is not a readable {what} (truncated or corrupt: "
                        f"{_short(exc)}); restore it or re-create it.") from None


def parquet_metadata(path: str | Path) -> dict[str, str]:
    """A Parquet file's key-value metadata (empty for a file without any)."""
    import polars as pl

    try:
        return dict(pl.read_parquet_metadata(path))
    except Exception as exc:
        raise DataError(f"{path} is not a readable Parquet file ({_short(exc)}).") from None


def array_digest(array: Any) -> str:
    """A SHA-256 of an array's values and shape: what a cache made from it is keyed by."""
    import hashlib

    import numpy as np

    x = np.ascontiguousarray(array)
    return f"{hashlib.sha256(x.tobytes()).hexdigest()}-{'x'.join(map(str, x.shape))}-{x.dtype}"


def json_safe(value: Any) -> Any:
    """``value`` with every NaN or infinite float made ``None`` (JSON has neither)."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def save_arrays(path: str | Path, **arrays: Any) -> Path:
    """NumPy arrays as an ``.npz`` file (no pickle), atomically."""
    import numpy as np

    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    return path


def load_arrays(path: str | Path, required: tuple[str, ...] = (),
                what: str = "array file") -> dict[str, Any]:
    """Every array of an ``.npz`` file (no pickle); a missing, damaged or incomplete file
    is a :class:`DataError`."""
    import zipfile

    import numpy as np

    path = Path(path)
    if not path.is_file():
        raise DataError(f"No {what} at {path}.")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path} is not a readable {what} (truncated or corrupt: "
                        f"{_short(exc)}); restore it or re-create it.") from None
    missing = [k for k in required if k not in arrays]
    if missing:
        raise DataError(f"{path} is not a valid {what}: missing {', '.join(missing)}.")
    return arrays


try:  # POSIX; elsewhere folders are not locked (documented)
    import fcntl
except ImportError:  # pragma: no cover - not Linux/macOS
    fcntl = None  # type: ignore[assignment]


def try_lock(fd: int) -> bool:
    """Take an exclusive ``flock`` on an open descriptor without waiting; False if held."""
    if fcntl is None:  # pragma: no cover
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextlib.contextmanager
def file_lock(path: str | Path, waiting: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if needed) for the block; waits for
    another holder, calling ``waiting()`` once if it has to."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not try_lock(fd):
            if waiting is not None:
                waiting()
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _short(exc: BaseException, limit: int = 160) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
