"""Contiguous integer ids for users and items, and the sparse matrices built on them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import scipy.sparse as sp
from numba import njit, prange

from embedlens.data.dataset import ITEM, RATING, TIMESTAMP, USER, require_columns
from embedlens.errors import DataError


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
            return _lut_index(lut, int(self.ids[0]), arr.astype(np.int64, copy=False), missing)
        pos = np.searchsorted(self.ids, arr).clip(0, self.ids.size - 1)
        return np.where(self.ids[pos] == arr, pos, missing).astype(np.int64)

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


@dataclass(frozen=True)
class InteractionMatrix:
    """A train log encoded once: id maps plus users x items CSR matrices.

    ``ratings`` holds the rating of each (user, item) pair, ``timestamps`` the time (int64
    seconds); rows are users, columns items, indices sorted within each row.
    """

    users: IdMap
    items: IdMap
    ratings: sp.csr_matrix
    timestamps: sp.csr_matrix

    @classmethod
    def from_frame(
        cls, df: pl.DataFrame, users: IdMap | None = None, items: IdMap | None = None
    ) -> InteractionMatrix:
        """Encode ``df``; repeated (user, item) pairs keep their latest interaction."""
        require_columns(df, [USER, ITEM, RATING, TIMESTAMP], "interactions")
        if df.height == 0:
            raise DataError("Cannot build an interaction matrix from an empty table.")
        users = users or IdMap.fit(df[USER])
        items = items or IdMap.fit(df[ITEM])
        u, i = users.index(df[USER]), items.index(df[ITEM])
        ts = df[TIMESTAMP].to_numpy().astype(np.int64, copy=False)
        n_users, n_items = len(users), len(items)
        indptr, perm = _csr_order(u, i, ts, n_users)
        indices = i[perm].astype(np.int32)
        shape = (n_users, n_items)
        r = sp.csr_matrix(
            (df[RATING].to_numpy()[perm].astype(np.float32), indices, indptr), shape=shape
        )
        t = sp.csr_matrix((ts[perm], indices, indptr), shape=shape)
        return cls(users, items, r, t)

    @property
    def shape(self) -> tuple[int, int]:
        """(n_users, n_items)."""
        return self.ratings.shape

    def binary(self) -> sp.csr_matrix:
        """The users x items 0/1 incidence matrix (float32)."""
        b = self.ratings.copy()
        b.data = np.ones_like(b.data)
        return b


@njit(parallel=True, cache=True)
def _lut_index(lut, base, values, missing):  # pragma: no cover - numba
    out = np.empty(values.size, dtype=np.int64)
    for k in prange(values.size):
        v = values[k] - base
        out[k] = lut[v] if 0 <= v < lut.size else missing
    return out


@njit(cache=True)
def _bucket_by_row(u, n_rows):  # pragma: no cover - numba
    """Counting sort of positions by row (stable); rows < 0 are dropped."""
    counts = np.zeros(n_rows + 1, dtype=np.int64)
    for k in range(u.size):
        if u[k] >= 0:
            counts[u[k] + 1] += 1
    for r in range(n_rows):
        counts[r + 1] += counts[r]
    fill = counts[:-1].copy()
    perm = np.empty(counts[n_rows], dtype=np.int64)
    for k in range(u.size):
        if u[k] >= 0:
            perm[fill[u[k]]] = k
            fill[u[k]] += 1
    return counts, perm


@njit(parallel=True, cache=True)
def _sort_rows(indptr, perm, i, ts, keep):  # pragma: no cover - numba
    """Within each row: order by item; of repeated items keep the latest (then last) one."""
    for r in prange(indptr.size - 1):
        lo, hi = indptr[r], indptr[r + 1]
        ordered = True  # logs are often already sorted by (user, item): skip the sort then
        for p in range(lo + 1, hi):
            if i[perm[p]] <= i[perm[p - 1]]:
                ordered = False
                break
        if not ordered:
            seg = perm[lo:hi].copy()
            items = np.empty(hi - lo, dtype=np.int64)
            for p in range(hi - lo):
                items[p] = i[seg[p]]
            order = np.argsort(items, kind="mergesort")
            for p in range(hi - lo):
                perm[lo + p] = seg[order[p]]
        for p in range(lo, hi):
            k = perm[p]
            if i[k] < 0:
                keep[p] = False
            elif p + 1 < hi and i[perm[p + 1]] == i[k]:
                # a repeat follows: keep whichever is later; carry the winner forward
                nxt = perm[p + 1]
                if ts[k] > ts[nxt]:
                    perm[p + 1] = k
                keep[p] = False
            else:
                keep[p] = True


def _csr_order(
    u: np.ndarray, i: np.ndarray, ts: np.ndarray, n_rows: int
) -> tuple[np.ndarray, np.ndarray]:
    """CSR ``indptr`` and the input positions in CSR order (rows, then items ascending),
    dropping rows/items < 0 and keeping the latest of repeated (row, item) pairs."""
    indptr, perm = _bucket_by_row(u, n_rows)
    keep = np.empty(perm.size, dtype=np.bool_)
    _sort_rows(indptr, perm, i, ts, keep)
    if keep.all():
        return indptr, perm
    kept_before = np.zeros(perm.size + 1, dtype=np.int64)
    np.cumsum(keep, out=kept_before[1:])
    return kept_before[indptr], perm[keep]
