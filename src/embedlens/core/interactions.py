"""A train log encoded once: id maps plus users x items CSR matrices of ratings and times."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import scipy.sparse as sp
from numba import njit, prange

from embedlens.core.errors import DataError
from embedlens.core.files import load_arrays, save_arrays
from embedlens.core.ids import IdMap
from embedlens.core.schema import ITEM, RATING, TIMESTAMP, USER, require_columns


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

    def item_counts(self) -> np.ndarray:
        """How many users have each item (its train popularity), without copying the
        matrix."""
        return np.bincount(self.ratings.indices, minlength=self.shape[1])

    def binary(self) -> sp.csr_matrix:
        """The users x items 0/1 incidence matrix (float32)."""
        b = self.ratings.copy()
        b.data = np.ones_like(b.data)
        return b

    def save(self, path: Path, titles: np.ndarray | None = None) -> Path:
        """Write the matrix (and optionally one title per item) as ``.npz``, atomically, so
        a query needs neither the dataset nor a new split."""
        arrays = {"user_ids": _storable(self.users.ids), "item_ids": _storable(self.items.ids),
                  "indptr": self.ratings.indptr, "indices": self.ratings.indices,
                  "ratings": self.ratings.data, "timestamps": self.timestamps.data,
                  "shape": np.asarray(self.shape, dtype=np.int64)}
        if titles is not None:
            arrays["titles"] = np.asarray(titles, dtype=str)
        return save_arrays(path, **arrays)

    @classmethod
    def load(cls, path: Path) -> tuple[InteractionMatrix, np.ndarray | None]:
        """What :meth:`save` wrote: the matrix, and the titles if saved."""
        z = load_arrays(path, ("user_ids", "item_ids", "indptr", "indices", "ratings",
                               "timestamps", "shape"), "train matrix")
        shape = tuple(int(n) for n in z["shape"])
        try:
            ratings = sp.csr_matrix((z["ratings"], z["indices"], z["indptr"]), shape=shape)
            times = sp.csr_matrix((z["timestamps"], z["indices"], z["indptr"]), shape=shape)
        except (ValueError, TypeError) as exc:
            raise DataError(f"{path} is not a valid train matrix ({exc}).") from None
        users, items = IdMap(_restored(z["user_ids"])), IdMap(_restored(z["item_ids"]))
        if (len(users), len(items)) != shape:
            raise DataError(f"{path}: id lists do not match the matrix shape {shape}.")
        return cls(users, items, ratings, times), z.get("titles")


def _storable(ids: np.ndarray) -> np.ndarray:
    """Ids as an array ``np.savez`` stores without pickle (strings as fixed-width text)."""
    return ids.astype(str) if ids.dtype == object else ids


def _restored(ids: np.ndarray) -> np.ndarray:
    return ids.astype(object) if ids.dtype.kind == "U" else ids


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
