"""Contiguous integer ids: original user and item ids <-> indices ``0..n-1``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from numba import njit, prange


def typed_int(text: str) -> int | None:
    """The whole number a typed id spells ("42", " -7 "), or ``None`` when it spells none
    (a title; "²" or "--5", which ``str.isdigit`` would pass and ``int`` refuse)."""
    t = text.strip()
    digits = t[1:] if t.startswith("-") else t
    if digits and len(digits) <= 20 and digits.isascii() and digits.isdigit():
        return int(t)
    return None


FEW_VALUES = 1024  # up to this many values are indexed with numpy on the calling thread


@dataclass(frozen=True)
class IdMap:
    """Original ids (sorted) ↔ contiguous indices ``0..n-1``."""

    ids: np.ndarray

    @classmethod
    def fit(cls, values: pl.Series | np.ndarray) -> IdMap:
        """Map of the distinct values, in sorted order."""
        series = values if isinstance(values, pl.Series) else pl.Series(np.asarray(values))
        return cls(series.unique().sort().to_numpy())

    def __len__(self) -> int:
        return int(self.ids.size)

    def index(self, values: pl.Series | np.ndarray, missing: int = -1) -> np.ndarray:
        """Indices of ``values``; ids not in the map get ``missing``."""
        arr = values.to_numpy() if isinstance(values, pl.Series) else np.asarray(values)
        if self.ids.size == 0:
            return np.full(arr.shape, missing, dtype=np.int64)
        lut = self._lookup_table()
        if lut is not None and np.issubdtype(arr.dtype, np.integer):
            if arr.size <= FEW_VALUES:
                # a server's lookup of one user: waking numba's threads for it took longer
                # than the rest of the query
                at = arr.astype(np.int64) - int(self.ids[0])
                inside = (at >= 0) & (at < lut.size)
                hit = lut[np.where(inside, at, 0)]
                return np.where(inside & (hit >= 0), hit, missing)
            return _lut_index(lut, int(self.ids[0]), arr.astype(np.int64, copy=False), missing)
        pos = np.searchsorted(self.ids, arr).clip(0, self.ids.size - 1)
        return np.where(self.ids[pos] == arr, pos, missing).astype(np.int64)

    def position(self, value: object, missing: int = -1) -> int:
        """Index of one ``value`` (``missing`` if absent), without numpy's per-call costs: a
        server looks up one user per query."""
        lut = self._lookup_table() if self.ids.size else None
        if lut is not None and isinstance(value, int | np.integer):
            at = int(value) - int(self.ids[0])
            found = int(lut[at]) if 0 <= at < lut.size else -1
            return found if found >= 0 else missing
        return int(self.index(np.asarray([value]), missing)[0])

    def _lookup_table(self) -> np.ndarray | None:
        """For compact integer ids, a dense id -> index table: one gather instead of a binary
        search per value (MovieLens ids span < 300k)."""
        if not np.issubdtype(self.ids.dtype, np.integer):
            return None
        span = int(self.ids[-1]) - int(self.ids[0]) + 1
        if span > max(1 << 22, 8 * self.ids.size):
            return None
        lut = self.__dict__.get("_lut")
        if lut is None:
            lut = np.full(span, -1, dtype=np.int64)
            lut[self.ids.astype(np.int64) - int(self.ids[0])] = np.arange(self.ids.size)
            object.__setattr__(self, "_lut", lut)
        return lut

    def contains(self, values: pl.Series | np.ndarray) -> np.ndarray:
        """Boolean mask of ``values`` present in the map."""
        return self.index(values) >= 0


@njit(parallel=True, cache=True)
def _lut_index(lut, base, values, missing):  # pragma: no cover - numba
    out = np.empty(values.size, dtype=np.int64)
    for k in prange(values.size):
        v = values[k] - base
        hit = lut[v] if 0 <= v < lut.size else -1
        out[k] = hit if hit >= 0 else missing
    return out
