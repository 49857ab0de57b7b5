"""User embeddings derived from item embeddings: weighted means of each user's train items."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from embedlens.core.embeddings import Embeddings
from embedlens.core.errors import DataError
from embedlens.core.interactions import InteractionMatrix
from embedlens.kernels.sparse import spmm

AGGREGATIONS = ("mean", "rating", "recency")


def user_weights(
    train: InteractionMatrix, how: str = "mean", half_life_days: float = 180.0,
    keep: np.ndarray | None = None,
) -> sp.csr_matrix:
    """Users x items weights, rows summing to 1 (empty rows stay empty).

    ``mean``: equal weights; ``rating``: proportional to the rating; ``recency``: halves every
    ``half_life_days`` before the user's own latest interaction. ``keep`` (one flag per
    item): only those items weigh, and recency counts from the user's latest kept one
    (counted from a dropped movie, the kept weights could be so small that normalising them
    overflowed).
    """
    if how not in AGGREGATIONS:
        raise DataError(f"Unknown aggregation {how!r}; choose one of {', '.join(AGGREGATIONS)}.")
    w = train.binary()
    if how == "rating":
        w.data = train.ratings.data.astype(np.float32).clip(min=0)
    elif how == "recency":
        if half_life_days <= 0:
            raise DataError(f"half_life_days must be positive, got {half_life_days}.")
        t = train.timestamps
        times = t.data if keep is None else np.where(keep[t.indices],
                                                     t.data.astype(np.float64), -np.inf)
        # (reduceat over an empty row reads the next row's first value; it weighs nothing)
        last = np.maximum.reduceat(times, t.indptr[:-1]) if t.nnz else np.empty(0)
        rows = np.repeat(np.arange(t.shape[0]), np.diff(t.indptr))
        age_days = np.maximum(last[rows] - t.data, 0) / 86_400.0  # not kept: may be later
        w.data = (0.5 ** (age_days / half_life_days)).astype(np.float32)
    w = _row_normalize(w)
    if keep is not None:  # normalised over all the items, then over the kept ones, as ever
        w = _row_normalize(sp.csr_matrix(w @ sp.diags(keep.astype(np.float32))))
    return w


def _row_normalize(w: sp.csr_matrix) -> sp.csr_matrix:
    sums = np.asarray(w.sum(axis=1)).ravel()
    inv = np.divide(1.0, sums, out=np.zeros_like(sums, dtype=np.float64), where=sums > 0)
    return sp.csr_matrix(sp.diags(inv.astype(np.float32)) @ w)


def user_embeddings(
    items: Embeddings,
    train: InteractionMatrix,
    how: str = "mean",
    half_life_days: float = 180.0,
) -> Embeddings:
    """Each user's weighted mean of the embeddings of their train items.

    Items without a vector are left out of the mean; users none of whose items has a vector
    get no embedding (they cannot be scored, and evaluation counts them as misses).
    """
    vectors, found = items.aligned(train.items.ids)
    w = user_weights(train, how, half_life_days, keep=None if found.all() else found)
    has = np.diff(w.indptr) > 0
    w = w[has]
    return Embeddings(train.users.ids[has], spmm(w, vectors), "user")
