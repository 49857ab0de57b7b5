"""Contiguous integer ids for users and items, and the sparse matrices built on them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numba
import numpy as np
import polars as pl
import scipy.sparse as sp
from numba import njit, prange

from embedlens.data.dataset import ITEM, RATING, TIMESTAMP, USER, require_columns
from embedlens.errors import DataError
from embedlens.sparse import CompactCsr, index_dtype


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

#: A log given in pieces: called once per pass, it yields (user ids, item ids) pairs of
#: equal-length 1-D integer arrays.
IdChunks = Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]]


@njit(cache=True)
def _count_pairs(u, i, base_u, base_i, counts, present):  # pragma: no cover - numba
    """Entries per user and the items present, in dense tables over the id spans; returns
    how many pairs fell outside the spans (0 unless the log changed since they were read)."""
    bad = 0
    for k in range(u.size):
        ru, ri = u[k] - base_u, i[k] - base_i
        if ru < 0 or ru >= counts.size or ri < 0 or ri >= present.size:
            bad += 1
            continue
        counts[ru] += 1
        present[ri] = 1
    return bad


@njit(cache=True)
def _codes_of_present(table, base):  # pragma: no cover - numba
    """Dense codes, in id order, for the non-zero slots of a table over an id span: a
    lookup table (-1 where absent) and the ids it codes. No sort, no per-row array."""
    lut = np.full(table.size, -1, dtype=np.int32)
    n = 0
    for v in range(table.size):
        if table[v] != 0:
            lut[v] = n
            n += 1
    ids = np.empty(n, dtype=np.int64)
    for v in range(table.size):
        if lut[v] >= 0:
            ids[lut[v]] = v + base
    return lut, ids


@njit(cache=True)
def _fill_pairs(u, i, base_u, lut_u, base_i, lut_i, indptr, fill, indices):  # pragma: no cover
    """Counting sort's second half: each pair's item code goes to its row's next slot.
    Returns how many pairs had no place (0 unless the log changed since it was counted):
    without the checks a changed log would write out of bounds."""
    bad = 0
    for k in range(u.size):
        ru, ri = u[k] - base_u, i[k] - base_i
        if ru < 0 or ru >= lut_u.size or ri < 0 or ri >= lut_i.size:
            bad += 1
            continue
        r, c = lut_u[ru], lut_i[ri]
        if r < 0 or c < 0 or fill[r] >= indptr[r + 1]:
            bad += 1
            continue
        indices[fill[r]] = c
        fill[r] += 1
    return bad


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


@njit(cache=True)
def _compact_rows(indptr, indices, kept):  # pragma: no cover - numba
    """Close the gaps ``_dedup_rows`` left at the ends of rows, in place."""
    at = 0
    for r in range(indptr.size - 1):
        lo = indptr[r]
        for p in range(kept[r]):
            indices[at + p] = indices[lo + p]
        indptr[r] = at
        at += kept[r]
    indptr[indptr.size - 1] = at


def _checked_chunks(chunks: IdChunks) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One pass over the chunks, each as two arrays checked to be 1-D integer ids alike."""
    for users, items in chunks():
        users, items = np.asarray(users), np.asarray(items)
        if users.shape != items.shape or users.ndim != 1:
            raise DataError("users and items must be 1-D arrays of the same length.")
        if not (np.issubdtype(users.dtype, np.integer) and np.issubdtype(items.dtype, np.integer)):
            raise DataError("pattern_incidence needs integer user and item ids.")
        yield users, items


def _id_spans(chunks: IdChunks) -> tuple[list[tuple[int, int]], int]:
    """(smallest id, span) of users and of items over all chunks, and the number of rows;
    errors if empty or huge."""
    lows, highs, n = [np.inf, np.inf], [-np.inf, -np.inf], 0
    for users, items in _checked_chunks(chunks):
        n += users.size
        for k, values in enumerate((users, items)):
            if values.size:
                lows[k] = min(lows[k], int(values.min()))
                highs[k] = max(highs[k], int(values.max()))
    if n == 0:
        raise DataError("Cannot build an incidence matrix from an empty log.")
    spans = [(int(lo), int(hi) - int(lo) + 1) for lo, hi in zip(lows, highs, strict=True)]
    for _, span in spans:
        if span > _MAX_ID_SPAN:
            raise DataError(f"Ids span {span:,} values; re-number them first.")
    return spans, n


def _run_pass(name: str, chunks: IdChunks, expected: int, kernel: Callable[..., int],
              *args: Any) -> None:
    """``kernel(users, items, *args)`` on every chunk; it returns its count of pairs with no
    place. Each pass must see the log the first one measured: a one-shot iterator or a file
    rewritten in between would otherwise give a wrong (or empty) matrix."""
    seen = bad = 0
    for users, items in _checked_chunks(chunks):
        seen += users.size
        bad += kernel(users, items, *args)
    if seen != expected or bad:
        raise DataError(
            f"The log changed between passes: the {name} pass saw {seen:,} rows "
            f"({bad:,} unexpected) where the first saw {expected:,}. chunks() must return a "
            "fresh iterable over the same data on every call."
        )


def pattern_incidence_chunks(chunks: IdChunks) -> tuple[CompactCsr, np.ndarray, np.ndarray]:
    """The users x items 0/1 matrix of a large log given in pieces, lean: integer ids only,
    one entry per distinct pair, no rating, time or per-row index arrays, and never the
    whole id columns at once. Three passes over the pieces (id spans, counts, fill).

    Returns the pattern (:class:`~embedlens.sparse.CompactCsr`: uint16 column indices for
    up to 65,536 items; rows follow ``user_ids``, columns ``item_ids``, both sorted; within a
    row, columns keep the log's order) and the two id arrays. 2 bytes per rating (4 above
    65,536 items), against ~40 for :meth:`InteractionMatrix.from_frame`, which keeps ratings
    and times for every method.
    """
    ((base_u, span_u), (base_i, span_i)), n_rows = _id_spans(chunks)
    # a table over the whole user id span: int32 unless the log could overflow it
    counts = np.zeros(span_u, dtype=np.int32 if n_rows < 2**31 else np.int64)
    present = np.zeros(span_i, dtype=np.uint8)
    _run_pass("counting", chunks, n_rows, _count_pairs, base_u, base_i, counts, present)
    lut_u, user_ids = _codes_of_present(counts, base_u)
    lut_i, item_ids = _codes_of_present(present, base_i)
    del present
    indptr = np.zeros(user_ids.size + 1, dtype=np.int64)
    np.cumsum(counts[user_ids - base_u], out=indptr[1:])
    del counts
    indices = np.empty(indptr[-1], dtype=index_dtype(item_ids.size))
    fill = indptr[:-1].copy()
    _run_pass("filling", chunks, n_rows, _fill_pairs, base_u, lut_u, base_i, lut_i, indptr,
              fill, indices)
    del fill, lut_u, lut_i
    kept = np.empty(user_ids.size, dtype=np.int64)
    _dedup_rows(indptr, indices, item_ids.size, kept, max(1, min(8, numba.get_num_threads())))
    if kept.sum() != indices.size:  # repeated pairs: close the gaps, free the tail
        _compact_rows(indptr, indices, kept)
        indices = indices[: indptr[-1]].copy()
    return CompactCsr(indptr, indices, (user_ids.size, item_ids.size)), user_ids, item_ids


def pattern_incidence(
    users: np.ndarray, items: np.ndarray
) -> tuple[CompactCsr, np.ndarray, np.ndarray]:
    """:func:`pattern_incidence_chunks` of a log given as two integer id arrays."""
    users, items = np.asarray(users), np.asarray(items)
    return pattern_incidence_chunks(lambda: [(users, items)])


def pattern_incidence_parquet(
    path: str | Path, user_col: str = USER, item_col: str = ITEM, batch_rows: int = 1 << 17
) -> tuple[CompactCsr, np.ndarray, np.ndarray]:
    """:func:`pattern_incidence_chunks` of a Parquet log, read ``batch_rows`` rows of the two
    id columns at a time (pyarrow, unbuffered and single-threaded: ~40 MB of reader memory
    where reading the columns whole costs ~400 MB at ML-25M scale)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        log = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"Cannot read the Parquet log {path}: {exc}") from exc
    schema = log.schema_arrow
    for col in (user_col, item_col):
        if col not in schema.names:
            raise DataError(f"{path} has no column {col!r} (columns: {', '.join(schema.names)}).")
        if not pa.types.is_integer(schema.field(col).type):
            raise DataError(f"Column {col!r} of {path} holds {schema.field(col).type}, "
                            "not integer ids.")

    def chunks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        batches = log.iter_batches(batch_rows, columns=[user_col, item_col], use_threads=False)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except (OSError, pa.ArrowException) as exc:  # e.g. a corrupt row group
                raise DataError(f"Cannot read the Parquet log {path}: {exc}") from exc
            if batch.column(0).null_count or batch.column(1).null_count:
                raise DataError(f"{path}: null ids in {user_col!r} or {item_col!r}.")
            yield batch.column(0).to_numpy(), batch.column(1).to_numpy()

    return pattern_incidence_chunks(chunks)
