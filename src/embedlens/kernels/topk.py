"""Full-catalogue top-K for many users at once: batched scoring, seen items excluded.

Scores for a batch of users come from a *scorer* (``U[b] @ V.T`` for embeddings, ``X[b] @ B``
for EASE, one row for everyone for popularity); a numba kernel then picks each row's K best
items in parallel, skipping the user's train items without writing into the score matrix.
Memory is bounded by the batch: one ``batch_size x n_items`` float32 buffer, which the scorer
fills batch after batch (a fresh array per batch cost more in page faults than the scoring
itself at ML-25M: ``benchmarks/topk_eval.py``).

Tie rule: equal scores are ordered by item index ascending (item ids are indexed in sorted
order, so: lower item id first). Items whose score is NaN or -inf are never recommended.
"""

from __future__ import annotations

import contextlib
from typing import Protocol

import numpy as np
import scipy.sparse as sp
from numba import njit, prange

from embedlens.core.progress import bar


class Scorer(Protocol):
    """Scores of users (row indices) against every item: a ``len(users) x n_items`` float
    array. ``out``, when given, is a float32 buffer of that shape the scorer may fill and
    return instead of allocating (it may also ignore it)."""

    def __call__(self, users: np.ndarray, out: np.ndarray | None = None) -> np.ndarray: ...


class FixedScorer:
    """One score row for every user (popularity and the like): top-K walks the row's order
    once per user instead of scanning every item."""

    def __init__(self, row: np.ndarray) -> None:
        self.row = np.ascontiguousarray(row, dtype=np.float32)

    def __call__(self, users: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return np.broadcast_to(self.row, (len(users), self.row.size))

    def order(self) -> np.ndarray:
        """Item indices best first (ties: lower index first), NaN and -inf left out."""
        ok = np.flatnonzero(self.row > -np.inf)
        return ok[np.argsort(-self.row[ok], kind="stable")]


# Rows per batch such that one batch of float32 scores stays near this many bytes.
_BATCH_BYTES = 256 * 2**20
# Fewer users than this get no progress bar.
_BAR_USERS = 1000
# No shared row to walk: the kernel scans each row of scores.
_NO_ORDER = np.empty(0, dtype=np.int64)
# Columns checked at once against the current K-th best score before looking closer.
_BLOCK = 64


@njit(parallel=True, cache=True, fastmath=False)
def _select_topk(
    scores: np.ndarray, rows: np.ndarray, indptr: np.ndarray, indices: np.ndarray, k: int,
    out_items: np.ndarray, out_scores: np.ndarray, order: np.ndarray,
) -> None:
    """For each row r of ``scores``: the ``k`` best columns not in exclude[rows[r]].

    With an ``order`` (not empty), every user shares one score row, ``scores[0]``, whose
    columns ``order`` lists best first: each user takes the first ``k`` it has not seen,
    O(k + seen) a user, for ``rows.size`` users.

    A per-thread bitmap marks the excluded columns; a size-k sorted buffer keeps the best seen
    (insertion from the bottom). Once it is full, a block of columns is first checked as a
    whole against the k-th best (a loop the compiler vectorises); most blocks hold nothing
    better and are skipped without a second look.
    """
    n_rows, n_cols = rows.size, scores.shape[1]
    n_chunks = min(n_rows, 64)
    for c in prange(n_chunks):
        banned = np.zeros(n_cols, dtype=np.bool_)
        best_s = np.empty(k, dtype=np.float32)
        best_i = np.empty(k, dtype=np.int64)
        for r in range(c, n_rows, n_chunks):
            u = rows[r]
            _ban(banned, indptr, indices, u, True)
            if order.size:
                filled = _walk(scores[0], order, banned, k, best_i, best_s)
            else:
                filled = _scan(scores[r], banned, k, best_i, best_s)
            _write_row(r, filled, best_i, best_s, out_items, out_scores)
            _ban(banned, indptr, indices, u, False)


@njit(inline="always", cache=True)
def _walk(row: np.ndarray, order: np.ndarray, banned: np.ndarray, k: int,
          best_i: np.ndarray, best_s: np.ndarray) -> int:
    """The first ``k`` columns of ``order`` (``row``'s columns, best first) not banned, into
    ``best_i``/``best_s``; returns how many were found."""
    filled = 0
    for j in order:
        if filled == k:
            break
        if not banned[j]:
            best_s[filled] = row[j]
            best_i[filled] = j
            filled += 1
    return filled


@njit(inline="always", cache=True)
def _scan(row: np.ndarray, banned: np.ndarray, k: int, best_i: np.ndarray,
          best_s: np.ndarray) -> int:
    """The ``k`` best columns of ``row`` not banned, best first, into ``best_i``/``best_s``;
    returns how many were found. Once ``k`` are held, a block of columns is first checked as
    a whole against the k-th best (a loop the compiler vectorises)."""
    n_cols = row.size
    filled = 0
    for j0 in range(0, n_cols, _BLOCK):
        j1 = min(j0 + _BLOCK, n_cols)
        if filled == k:
            worst = best_s[k - 1]
            better = False
            for j in range(j0, j1):
                better |= row[j] > worst  # NaN compares False
            if not better:
                continue
        for j in range(j0, j1):
            s = row[j]
            if banned[j] or not (s > -np.inf):  # also rejects NaN
                continue
            if filled < k:
                pos = filled
                filled += 1
            elif s > best_s[k - 1]:
                pos = k - 1
            else:
                continue
            # shift worse entries down; strict '>' keeps the lower index first on ties
            while pos > 0 and s > best_s[pos - 1]:
                best_s[pos] = best_s[pos - 1]
                best_i[pos] = best_i[pos - 1]
                pos -= 1
            best_s[pos] = s
            best_i[pos] = j
    return filled


@njit(inline="always", cache=True)
def _ban(banned: np.ndarray, indptr: np.ndarray, indices: np.ndarray, u: int,
         value: bool) -> None:
    """Mark (or unmark) user ``u``'s excluded columns in the thread's bitmap."""
    for p in range(indptr[u], indptr[u + 1]):
        banned[indices[p]] = value


@njit(inline="always", cache=True)
def _write_row(r: int, filled: int, best_i: np.ndarray, best_s: np.ndarray,
               out_items: np.ndarray, out_scores: np.ndarray) -> None:
    for t in range(out_items.shape[1]):
        if t < filled:
            out_items[r, t] = best_i[t]
            out_scores[r, t] = best_s[t]
        else:
            out_items[r, t] = -1
            out_scores[r, t] = -np.inf


def topk(
    scorer: Scorer,
    users: np.ndarray,
    n_items: int,
    k: int,
    exclude: sp.csr_matrix | None = None,
    batch_size: int | None = None,
    desc: str = "top-K",
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` item indices and scores for each user index in ``users``.

    ``exclude`` is a users x items sparse matrix (typically train) whose non-zeros are never
    recommended. Rows with fewer than ``k`` candidates are padded with item -1, score -inf.
    """
    users = np.asarray(users, dtype=np.int64)
    rows = users  # each user's row of the exclusion matrix
    if exclude is None:
        exclude = sp.csr_matrix((int(users.max(initial=-1)) + 1, n_items), dtype=np.float32)
    elif users.size * 8 < exclude.shape[0]:
        # a few users (a server's query): their rows only, not a 64-bit copy of the whole
        # matrix (35 ms per query at ML-25M)
        exclude, rows = exclude.tocsr()[users], np.arange(users.size, dtype=np.int64)
    exclude = exclude.tocsr()
    indptr = exclude.indptr.astype(np.int64)
    indices = exclude.indices.astype(np.int64)
    items_out = np.empty((users.size, k), dtype=np.int64)
    scores_out = np.empty((users.size, k), dtype=np.float32)
    if isinstance(scorer, FixedScorer):  # one row for all: no scores to scan
        _select_topk(scorer.row[None, :], rows, indptr, indices, k, items_out, scores_out,
                     scorer.order())
        return items_out, scores_out
    batch = batch_size or max(1, min(users.size, _BATCH_BYTES // max(1, 4 * n_items)))
    buffer = np.empty((min(batch, users.size), n_items), dtype=np.float32)
    # no bar for a handful of users: it would cost more than the query and fill a log
    with bar(desc, total=users.size, unit="user") if users.size >= _BAR_USERS else \
            contextlib.nullcontext() as pb:
        for start in range(0, users.size, batch):
            b = users[start : start + batch]
            s = scorer(b, out=buffer[: b.size])
            if s.dtype != np.float32:
                s = s.astype(np.float32)
            _select_topk(
                s, rows[start : start + batch], indptr, indices, k,
                items_out[start : start + b.size], scores_out[start : start + b.size], _NO_ORDER,
            )
            if pb is not None:
                pb.update(b.size)
    return items_out, scores_out


def dot_scorer(
    user_vectors: np.ndarray,
    item_vectors: np.ndarray,
    user_ok: np.ndarray | None = None,
    item_ok: np.ndarray | None = None,
) -> Scorer:
    """Scores ``U[users] @ V.T``. Items with ``item_ok`` False are never recommended, users
    with ``user_ok`` False get no recommendations (all scores -inf)."""
    u = np.ascontiguousarray(user_vectors, dtype=np.float32)
    vt = np.ascontiguousarray(item_vectors, dtype=np.float32).T
    penalty = None
    if item_ok is not None and not item_ok.all():
        penalty = np.where(item_ok, 0.0, -np.inf).astype(np.float32)

    def score(users: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        s = np.matmul(u[users], vt, out=out)
        if penalty is not None:
            s += penalty
        if user_ok is not None:
            s[~user_ok[users]] = -np.inf
        return s

    return score


def prior_scorer(scorer: Scorer, prior: np.ndarray, weight: float) -> Scorer:
    """``scorer``'s scores standardised per user (mean 0, sd 1 over the items it scores),
    plus ``weight`` x ``prior[item]``: an item bias that means the same for every method,
    whatever the scale of its scores. Scores that are -inf or NaN stay so; a user whose
    scores are all equal (a zero vector) is ranked by the prior alone."""
    if weight == 0:
        return scorer
    prior32 = np.ascontiguousarray(prior, dtype=np.float32)
    w = np.float32(weight)

    def score(users: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        s = np.ascontiguousarray(scorer(users, out), dtype=np.float32)
        _standardise_add(s, prior32, w)
        return s

    return score


@njit(parallel=True, cache=True)
def _standardise_add(s: np.ndarray, prior: np.ndarray, weight: np.float32) -> None:
    for r in prange(s.shape[0]):
        row = s[r]
        n, total = 0, 0.0
        for j in range(row.size):
            if np.isfinite(row[j]):
                n += 1
                total += row[j]
        if n == 0:
            continue
        mean = total / n
        sq = 0.0
        for j in range(row.size):
            if np.isfinite(row[j]):
                sq += (row[j] - mean) ** 2
        sd = np.sqrt(sq / n)
        inv = 1.0 / sd if sd > 0.0 else 0.0
        for j in range(row.size):
            if np.isfinite(row[j]):
                row[j] = (row[j] - mean) * inv + weight * prior[j]


def nearest_rows(
    unit: np.ndarray, queries: np.ndarray, k: int, row_ok: np.ndarray | None = None,
    desc: str = "nearest rows",
) -> tuple[np.ndarray, np.ndarray]:
    """Each query row's ``k`` nearest rows of ``unit`` by dot product (cosine for unit
    rows), the query itself left out, best first (ties: lower row first). Rows with
    ``row_ok`` False are never neighbours and, as queries, get none."""
    queries = np.asarray(queries, dtype=np.int64)
    if k == 0 or queries.size == 0:
        return (np.empty((queries.size, k), dtype=np.int64),
                np.empty((queries.size, k), dtype=np.float32))
    own = sp.csr_matrix((np.ones(queries.size, dtype=np.float32),
                         (np.arange(queries.size), queries)),
                        shape=(queries.size, unit.shape[0]))
    scorer = dot_scorer(unit[queries], unit,
                        user_ok=None if row_ok is None else row_ok[queries], item_ok=row_ok)
    return topk(scorer, np.arange(queries.size), unit.shape[0], k, exclude=own, desc=desc)
