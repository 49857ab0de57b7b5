"""Contiguous integer ids for users and items, and the sparse matrices built on them."""

from __future__ import annotations

from dataclasses import dataclass

import numba
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


#: Integer ids spanning at most this many values are mapped by a dense lookup table.
_MAX_ID_SPAN = 1 << 28


@njit(cache=True)
def _presence_codes(values, base, span):  # pragma: no cover - numba
    """Dense codes for the distinct values (in sorted order) via a presence table: no sort
    and no per-row code array."""
    lut = np.full(span, -1, dtype=np.int32)
    for k in range(values.size):
        lut[values[k] - base] = 0
    n = 0
    for v in range(span):
        if lut[v] == 0:
            lut[v] = n
            n += 1
    ids = np.empty(n, dtype=np.int64)
    for v in range(span):
        if lut[v] >= 0:
            ids[lut[v]] = v + base
    return lut, ids


@njit(cache=True)
def _pattern_rows(u, i, lut_u, base_u, lut_i, base_i, n_rows):  # pragma: no cover - numba
    """Counting sort of the (row, column) pairs into CSR order, codes looked up on the fly."""
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    for k in range(u.size):
        indptr[lut_u[u[k] - base_u] + 1] += 1
    for r in range(n_rows):
        indptr[r + 1] += indptr[r]
    fill = indptr[:-1].copy()
    indices = np.empty(u.size, dtype=np.int32)
    for k in range(u.size):
        r = lut_u[u[k] - base_u]
        indices[fill[r]] = lut_i[i[k] - base_i]
        fill[r] += 1
    return indptr, indices


@njit(parallel=True, cache=True)
def _dedup_rows(indptr, indices, n_cols, kept, n_chunks):  # pragma: no cover - numba
    """Drop repeated columns within each row in place (first occurrence kept, log order
    otherwise), in O(entries): each thread stamps the columns its current row has seen."""
    n_rows = indptr.size - 1
    for c in prange(n_chunks):
        seen = np.full(n_cols, -1, dtype=np.int64)
        for r in range(c * n_rows // n_chunks, (c + 1) * n_rows // n_chunks):
            lo, n = indptr[r], 0
            for p in range(lo, indptr[r + 1]):
                col = indices[p]
                if seen[col] != r:
                    seen[col] = r
                    indices[lo + n] = col
                    n += 1
            kept[r] = n


def pattern_incidence(
    users: np.ndarray, items: np.ndarray
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """The users x items 0/1 matrix of a large log, lean: integer ids only, int32 column
    indices, one entry per distinct pair, and no rating, time or per-row index arrays.

    Returns the matrix (float32 ones, read-only; rows follow ``user_ids``, columns
    ``item_ids``, both sorted; within a row, columns keep the log's order) and the two id
    arrays. ~4 bytes per rating beyond the inputs, against ~40 for
    :meth:`InteractionMatrix.from_frame`, which keeps ratings and times for every method.
    """
    users, items = np.asarray(users), np.asarray(items)
    if users.shape != items.shape or users.ndim != 1:
        raise DataError("users and items must be 1-D arrays of the same length.")
    if users.size == 0:
        raise DataError("Cannot build an incidence matrix from an empty log.")
    if not (np.issubdtype(users.dtype, np.integer) and np.issubdtype(items.dtype, np.integer)):
        raise DataError("pattern_incidence needs integer user and item ids.")
    luts = []
    for values in (users, items):
        base, top = int(values.min()), int(values.max())
        if top - base >= _MAX_ID_SPAN:
            raise DataError(f"Ids span {top - base + 1:,} values; re-number them first.")
        luts.append((*_presence_codes(values, base, top - base + 1), base))
    (lut_u, user_ids, base_u), (lut_i, item_ids, base_i) = luts
    indptr, indices = _pattern_rows(users, items, lut_u, base_u, lut_i, base_i, user_ids.size)
    kept = np.empty(user_ids.size, dtype=np.int64)
    _dedup_rows(indptr, indices, item_ids.size, kept, max(1, min(8, numba.get_num_threads())))
    if kept.sum() != indices.size:  # repeated pairs: compact the rows
        new_ptr = np.zeros_like(indptr)
        np.cumsum(kept, out=new_ptr[1:])
        mask = np.arange(indices.size) - np.repeat(indptr[:-1], np.diff(indptr)) < np.repeat(
            kept, np.diff(indptr))
        indptr, indices = new_ptr, indices[mask]
    ones = np.broadcast_to(np.float32(1.0), indices.shape)  # no 4-byte-per-entry data array
    b = sp.csr_matrix((ones, indices, indptr), shape=(user_ids.size, item_ids.size), copy=False)
    return b, user_ids, item_ids
