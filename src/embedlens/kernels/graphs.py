"""Item graphs built from interactions with sparse products (never loops over pairs).

* :func:`pmi_graph` — the node2vec tutorial's co-rating graph: items rated >= ``min_rating``
  by the same user are linked with weight ``PMI x co-count``, where
  ``PMI = log(xy) - log(x) - log(y) + log(D)`` and ``D`` is the number of qualifying ratings;
  edges below ``min_weight`` are dropped.
* :func:`sequence_graph` — the EGES tutorial's graph: each user's items in time order, with
  consecutive items linked (undirected; optionally weighted by transition count).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from embedlens.core.errors import DataError
from embedlens.core.interactions import InteractionMatrix
from embedlens.kernels.sparse import sparse_product


@dataclass(frozen=True)
class Graph:
    """An undirected weighted graph over item ids: ``adj`` is a symmetric CSR matrix with
    sorted column indices; node ``k`` is item ``ids[k]``."""

    ids: np.ndarray
    adj: sp.csr_matrix

    @property
    def n_nodes(self) -> int:
        return int(self.adj.shape[0])

    @property
    def n_edges(self) -> int:
        """Undirected edges (each stored twice in ``adj``; self-loops never occur)."""
        return int(self.adj.nnz // 2)

    def degrees(self) -> np.ndarray:
        return np.diff(self.adj.indptr)


def _drop_isolated(ids: np.ndarray, adj: sp.csr_matrix, what: str) -> Graph:
    adj = sp.csr_matrix(adj, dtype=np.float32)
    adj.setdiag(0)
    adj.eliminate_zeros()
    keep = np.diff(adj.indptr) > 0
    if not keep.any():
        raise DataError(f"The {what} has no edges; loosen its thresholds.")
    adj = adj[keep][:, keep].tocsr()
    adj.sort_indices()
    return Graph(ids[keep], adj)


def pmi_graph(train: InteractionMatrix, min_rating: float = 5.0, min_weight: float = 10.0) -> Graph:
    """Co-rating graph weighted by PMI x co-count (items without an edge are left out)."""
    b = train.binary()
    b.data[train.ratings.data < min_rating] = 0
    b.eliminate_zeros()
    if b.nnz == 0:
        raise DataError(f"No rating >= {min_rating}: the PMI graph would be empty.")
    # each unordered pair once: its co-count
    co = sparse_product(sp.csr_matrix(b.T), b, least=1, above_diagonal=True).tocoo()
    freq = np.asarray(b.sum(axis=0)).ravel()
    log_d = np.log(b.nnz)
    pmi = np.log(co.data) - np.log(freq[co.row]) - np.log(freq[co.col]) + log_d
    weight = pmi * co.data
    keep = weight >= min_weight
    rows, cols, w = co.row[keep], co.col[keep], weight[keep].astype(np.float32)
    n = b.shape[1]
    adj = sp.csr_matrix((np.r_[w, w], (np.r_[rows, cols], np.r_[cols, rows])), shape=(n, n))
    return _drop_isolated(train.items.ids, adj, "PMI graph")


def sequence_graph(train: InteractionMatrix, weighted: bool = False) -> Graph:
    """Consecutive items of each user's time-ordered history, linked both ways."""
    t = train.timestamps.tocsr()
    rows = np.repeat(np.arange(t.shape[0]), np.diff(t.indptr))
    order = np.lexsort((t.indices, t.data, rows))  # by user, then time (then item id)
    users, items = rows[order], t.indices[order]
    same = users[1:] == users[:-1]
    src, dst = items[:-1][same], items[1:][same]
    n = t.shape[1]
    counts = np.ones(src.size, dtype=np.float32)
    adj = sp.csr_matrix((np.r_[counts, counts], (np.r_[src, dst], np.r_[dst, src])), shape=(n, n))
    adj.sum_duplicates()
    if not weighted:
        adj.data[:] = 1.0
    return _drop_isolated(train.items.ids, adj, "sequence graph")
