"""Lean users x items patterns of large logs: integer ids only, read in pieces."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numba
import numpy as np
from numba import njit, prange

from embedlens.core.errors import DataError
from embedlens.core.schema import ITEM, USER
from embedlens.kernels.sparse import CompactCsr, index_dtype

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


def _id_spans(chunks: IdChunks, allow_empty: bool = False
              ) -> tuple[list[tuple[int, int]], int]:
    """(smallest id, span) of users and of items over all chunks, and the number of rows;
    errors if huge, or empty (unless ``allow_empty``: then no spans and 0 rows)."""
    lows, highs, n = [np.inf, np.inf], [-np.inf, -np.inf], 0
    for users, items in _checked_chunks(chunks):
        n += users.size
        for k, values in enumerate((users, items)):
            if values.size:
                lows[k] = min(lows[k], int(values.min()))
                highs[k] = max(highs[k], int(values.max()))
    if n == 0:
        if allow_empty:
            return [], 0
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


def pattern_incidence_chunks(chunks: IdChunks, allow_empty: bool = False
                             ) -> tuple[CompactCsr, np.ndarray, np.ndarray]:
    """The users x items 0/1 matrix of a large log given in pieces, lean: integer ids only,
    one entry per distinct pair, no rating, time or per-row index arrays, and never the
    whole id columns at once. Three passes over the pieces (id spans, counts, fill).

    Returns the pattern (:class:`~embedlens.kernels.sparse.CompactCsr`: uint16 column indices for
    up to 65,536 items; rows follow ``user_ids``, columns ``item_ids``, both sorted; within a
    row, columns keep the log's order) and the two id arrays. 2 bytes per rating (4 above
    65,536 items), against ~40 for :meth:`InteractionMatrix.from_frame`, which keeps ratings
    and times for every method. ``allow_empty``: an empty log gives :func:`empty_pattern`
    instead of an error.
    """
    spans, n_rows = _id_spans(chunks, allow_empty)
    if n_rows == 0:  # allowed: a rank's empty share of a log
        return empty_pattern()
    (base_u, span_u), (base_i, span_i) = spans
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


def empty_pattern() -> tuple[CompactCsr, np.ndarray, np.ndarray]:
    """A pattern with no users and no items (a rank whose share of a log is empty)."""
    none = np.empty(0, dtype=np.int64)
    return CompactCsr(np.zeros(1, dtype=np.int64), np.empty(0, dtype=np.uint16), (0, 0)), \
        none, none.copy()


def pattern_incidence_parquet(
    path: str | Path, user_col: str = USER, item_col: str = ITEM, batch_rows: int = 1 << 17,
    part: tuple[int, int] | None = None,
) -> tuple[CompactCsr, np.ndarray, np.ndarray]:
    """:func:`pattern_incidence_chunks` of a Parquet log, read ``batch_rows`` rows of the two
    id columns at a time (pyarrow, unbuffered and single-threaded: ~40 MB of reader memory
    where reading the columns whole costs ~400 MB at ML-25M scale).

    ``part=(k, n)`` keeps only the users whose id is ``k`` modulo ``n`` (a user-hash
    partition: every interaction of a kept user, so each hyperedge is whole), for rank ``k``
    of ``n``: the pattern then holds about ``1/n`` of the log (its items are those its users
    rated; an empty share gives :func:`empty_pattern`)."""
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
            users, items = batch.column(0).to_numpy(), batch.column(1).to_numpy()
            if part is not None:
                mine = users % part[1] == part[0]
                users, items = users[mine], items[mine]
            yield users, items

    if part is not None and not 0 <= part[0] < part[1]:
        raise DataError(f"part must be (k, n) with 0 <= k < n, got {part}.")
    return pattern_incidence_chunks(chunks, allow_empty=part is not None)
