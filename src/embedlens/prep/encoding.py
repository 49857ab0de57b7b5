"""Contiguous integer ids for users and items, and the sparse matrices built on them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import scipy.sparse as sp

from embedlens.data.dataset import ITEM, RATING, TIMESTAMP, USER, require_columns
from embedlens.errors import DataError


@dataclass(frozen=True)
class IdMap:
    """Original ids (sorted) ↔ contiguous indices ``0..n-1``."""

    ids: np.ndarray

    @classmethod
    def fit(cls, values: pl.Series | np.ndarray) -> IdMap:
        """Map of the distinct values, in sorted order."""
        ids = np.unique(values.to_numpy() if isinstance(values, pl.Series) else values)
        return cls(ids)

    def __len__(self) -> int:
        return int(self.ids.size)

    def index(self, values: pl.Series | np.ndarray, missing: int = -1) -> np.ndarray:
        """Indices of ``values``; ids not in the map get ``missing``."""
        arr = values.to_numpy() if isinstance(values, pl.Series) else np.asarray(values)
        if self.ids.size == 0:
            return np.full(arr.shape, missing, dtype=np.int64)
        pos = np.searchsorted(self.ids, arr).clip(0, self.ids.size - 1)
        return np.where(self.ids[pos] == arr, pos, missing).astype(np.int64)

    def contains(self, values: pl.Series | np.ndarray) -> np.ndarray:
        """Boolean mask of ``values`` present in the map."""
        return self.index(values) >= 0


@dataclass(frozen=True)
class InteractionMatrix:
    """A train log encoded once: id maps plus users x items CSR matrices.

    ``ratings`` holds the rating of each (user, item) pair, ``timestamps`` the time; rows are
    users, columns items, indices sorted within each row.
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
        df = df.sort(TIMESTAMP).unique([USER, ITEM], keep="last")
        u, i = users.index(df[USER]), items.index(df[ITEM])
        keep = (u >= 0) & (i >= 0)
        shape = (len(users), len(items))
        r = sp.csr_matrix(
            (df[RATING].to_numpy()[keep].astype(np.float32), (u[keep], i[keep])), shape=shape
        )
        t = sp.csr_matrix(
            (df[TIMESTAMP].to_numpy()[keep].astype(np.float64), (u[keep], i[keep])), shape=shape
        )
        r.sort_indices()
        t.sort_indices()
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
