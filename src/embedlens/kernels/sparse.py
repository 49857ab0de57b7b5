"""Multi-threaded sparse x dense products (SciPy's are single-threaded), and a sparse x
sparse one with a floor (:func:`sparse_product`: co-occurrence counts).

Two numba kernels over a CSR matrix ``A``: :func:`gather_rows` computes rows of ``A X``
(each output row is a gather over its non-zeros, one thread per row) and
:func:`scatter_rows` adds ``Aᵀ Y`` (each input row is pushed to its columns; threads split
the output's columns). In both, every output element sums its terms in one fixed order, so
results are identical for any thread count, and no thread needs its own accumulator.

:class:`CompactCsr` is the matrix these kernels read: column indices are ``uint16`` when
there are at most 65,536 columns (MovieLens has at most ~87k movies, ML-25M ~59k), half the
memory traffic of SciPy's ``int32``. The kernels are bound by memory bandwidth, so narrow
indices make them faster as well as smaller.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import scipy.sparse as sp
from numba import njit, prange

#: Column indices fit in uint16 up to this many columns.
UINT16_COLUMNS = 1 << 16


def index_dtype(n_cols: int) -> np.dtype:
    """The narrowest column index type for ``n_cols`` columns: uint16, else int32."""
    return np.dtype(np.uint16 if n_cols <= UINT16_COLUMNS else np.int32)


#: Pass as ``data`` or ``col_scale`` to the kernels for "all ones".
NO_WEIGHTS = np.empty(0, dtype=np.float32)


@njit(cache=True)
def _column_counts(indices, counts):  # pragma: no cover - numba
    for p in range(indices.size):
        counts[indices[p]] += 1


@njit(cache=True)
def _rmatvec(indptr, indices, data, v, out):  # pragma: no cover - numba
    for r in range(indptr.size - 1):
        for p in range(indptr[r], indptr[r + 1]):
            out[indices[p]] += v[r] * (data[p] if data.size > 0 else 1.0)


@dataclass(frozen=True, eq=False)  # arrays: no element-wise == or hash
class CompactCsr:
    """A CSR matrix for the kernels of this module: int64 row pointers, the narrowest
    column index type (:func:`index_dtype`) and float32 weights, or ``data=None`` when every
    stored entry is 1 (a pattern: no 4-byte-per-entry array of ones)."""

    indptr: np.ndarray
    indices: np.ndarray
    shape: tuple[int, int]
    data: np.ndarray | None = None

    @classmethod
    def from_csr(cls, m: sp.csr_matrix | sp.csr_array) -> CompactCsr:
        """The same matrix with narrowed indices; all-ones weights become a pattern."""
        m = sp.csr_matrix(m)
        data = m.data.astype(np.float32, copy=False)
        return cls(
            m.indptr.astype(np.int64, copy=False),
            m.indices.astype(index_dtype(m.shape[1]), copy=False),
            (int(m.shape[0]), int(m.shape[1])),
            None if bool((data == 1).all()) else data,
        )

    @property
    def nnz(self) -> int:
        """Stored entries."""
        return int(self.indices.size)

    def row_sums(self) -> np.ndarray:
        """Sum of each row's weights (its number of entries for a pattern), float64."""
        if self.data is None:
            return np.diff(self.indptr).astype(np.float64)
        return np.add.reduceat(np.append(self.data, 0).astype(np.float64),
                               self.indptr[:-1]) * (np.diff(self.indptr) > 0)

    def column_counts(self) -> np.ndarray:
        """Stored entries per column."""
        counts = np.zeros(self.shape[1], dtype=np.int64)
        _column_counts(self.indices, counts)  # np.bincount would copy indices to int64 first
        return counts

    def rmatvec(self, v: np.ndarray) -> np.ndarray:
        """``Aᵀ v`` for a vector over rows, float64."""
        out = np.zeros(self.shape[1], dtype=np.float64)
        data = NO_WEIGHTS if self.data is None else self.data
        _rmatvec(self.indptr, self.indices, data, np.asarray(v, dtype=np.float64), out)
        return out

    def to_csr(self) -> sp.csr_matrix:
        """As a SciPy matrix (int32 indices, explicit ones for a pattern)."""
        data = np.ones(self.nnz, np.float32) if self.data is None else self.data
        return sp.csr_matrix((data, self.indices.astype(np.int32), self.indptr), shape=self.shape)


@njit(parallel=True, cache=True, fastmath=True)
def gather_rows(indptr, indices, data, row_scale, col_scale, normalize, src, r0,
                dst):  # pragma: no cover - numba
    """``dst[r] = scale * sum_p data_p * col_scale[c_p] * src[c_p]`` over the entries ``p``
    of CSR row ``r0 + r``, for every row ``r`` of ``dst``; ``scale`` is
    ``row_scale[r0 + r]``, or one over the sum's length when ``normalize``. An empty
    ``data`` or ``col_scale`` (:data:`NO_WEIGHTS`) means ones. The row offset ``r0`` lets a
    caller work through the rows in chunks whose buffer stays in cache, as Cleora does."""
    width = dst.shape[1]
    weighted, scaled = data.size > 0, col_scale.size > 0
    for r in prange(dst.shape[0]):
        acc = dst[r]
        acc[:] = 0.0
        for p in range(indptr[r0 + r], indptr[r0 + r + 1]):
            row = src[indices[p]]  # a whole row: the inner loop indexes from 0 and vectorises
            if weighted or scaled:
                # float32 throughout, so the loop keeps single-precision vector lanes
                weight = ((data[p] if weighted else np.float32(1.0))
                          * (col_scale[indices[p]] if scaled else np.float32(1.0)))
                for j in range(width):
                    acc[j] += weight * row[j]
            else:
                for j in range(width):
                    acc[j] += row[j]
        scale = row_scale[r0 + r]
        if normalize:
            norm = 0.0
            for j in range(width):
                norm += acc[j] * acc[j]
            scale = 1.0 / np.sqrt(norm) if norm > 0 else 0.0
        if scale != 1.0:
            for j in range(width):
                acc[j] *= scale


@njit(parallel=True, cache=True)  # no fastmath: elementwise adds vectorise without it
def scatter_rows(indptr, indices, data, src, r0, dst, parts):  # pragma: no cover - numba
    """``dst[c_p] += data_p * src[r]`` over the entries ``p`` of CSR row ``r0 + r``, for
    every row ``r`` of ``src`` (empty ``data``: ones): adds ``Aᵀ src`` for a chunk of A's
    rows. Each of ``parts`` threads owns a slice of ``dst``'s columns and walks every entry,
    so no two threads write the same element and each element sums its rows in order."""
    width = dst.shape[1]
    # slices of a multiple of 16 float32 (a 64-byte cache line): when the width is a
    # multiple of 16 too (64, 128, 256...), threads never share a line
    step = ((width + parts - 1) // parts + 15) // 16 * 16
    weighted = data.size > 0
    for t in prange(parts):
        lo = t * step
        hi = min(width, lo + step)
        if lo >= hi:
            continue
        for r in range(src.shape[0]):
            row = src[r, lo:hi]
            for p in range(indptr[r0 + r], indptr[r0 + r + 1]):
                acc = dst[indices[p], lo:hi]
                if weighted:
                    weight = data[p]
                    for j in range(hi - lo):
                        acc[j] += weight * row[j]
                else:
                    for j in range(hi - lo):
                        acc[j] += row[j]


#: Bytes of rows pushed through per chunk by :func:`through_rows`: the chunk's buffer stays in
#: cache between the gather and the scatter. (Cleora at the ML-25M shape, d256, 2 cores: 1, 2
#: and 4 MiB chunks ran alike, 16 MiB about 20% slower.)
CHUNK_BYTES = 4 << 20


def through_rows(
    b: CompactCsr,
    x: np.ndarray,
    out: np.ndarray,
    rows: tuple[int, int],
    row_scale: np.ndarray | None = None,
    col_scale: np.ndarray = NO_WEIGHTS,
    normalize: bool = False,
) -> np.ndarray:
    """``out = Bᵀ diag(row_scale) B diag(col_scale) x`` over B's rows ``rows[0]:rows[1]``
    (all of them for the whole product; a rank's share under torchrun, whose parts then add
    up): items to rows and back, as Cleora's propagation and the Gram products of
    ``XᵀX`` take it. ``normalize`` scales each row's gathered sum to unit length instead of
    ``row_scale`` (Cleora's star expansion). Neither ``B x`` nor ``Bᵀ`` is built: rows go
    in chunks of :data:`CHUNK_BYTES`, each gathered and at once pushed back while it is in
    cache; each output element sums its terms in one fixed order, whatever the threads."""
    first, last = rows
    dim = x.shape[1]
    data = NO_WEIGHTS if b.data is None else b.data
    scale = np.ones(b.shape[0], dtype=np.float32) if row_scale is None else row_scale
    chunk = max(1, min(max(last - first, 1), CHUNK_BYTES // (4 * dim)))
    buffer = np.empty((chunk, dim), dtype=np.float32)
    parts = column_parts(dim)
    out[:] = 0.0
    for r0 in range(first, last, chunk):
        part = buffer[: min(chunk, last - r0)]
        gather_rows(b.indptr, b.indices, data, scale, col_scale, normalize, x, r0, part)
        scatter_rows(b.indptr, b.indices, data, part, r0, out, parts)
    return out


def column_parts(width: int) -> int:
    """Threads for :func:`scatter_rows`: one per core, but no more than there are 16-column
    slices (a 64-byte cache line of float32) to give them."""
    return max(1, min(numba.get_num_threads(), width // 16))


def spmm(
    a: sp.csr_matrix,
    x: np.ndarray,
    row_scale: np.ndarray | None = None,
    normalize: bool = False,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """``diag(row_scale) @ a @ x`` in float32, or, with ``normalize``, ``a @ x`` with each
    output row scaled to unit L2 norm (zero rows stay zero)."""
    if a.shape[1] != x.shape[0]:
        raise ValueError(f"shape mismatch: {a.shape} @ {x.shape}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if out is None:
        out = np.empty((a.shape[0], x.shape[1]), dtype=np.float32)
    scale = (
        np.ones(a.shape[0], dtype=np.float32)
        if row_scale is None
        else np.ascontiguousarray(row_scale, dtype=np.float32)
    )
    data = a.data.astype(np.float32, copy=False)
    gather_rows(a.indptr, a.indices, data, scale, NO_WEIGHTS, normalize, x, 0, out)
    return out


@njit(parallel=True, cache=True)
def _product_rows(a_indptr, a_indices, a_data, b_indptr, b_indices, b_data, n_cols, least,
                  above_diagonal, out_indptr, out_indices, out_data):  # pragma: no cover
    """Rows of ``A B`` (sparse x sparse), each by one thread through a dense accumulator
    over the columns; only entries ``>= least`` (and with ``above_diagonal``, in columns
    after their row) are kept. With ``out_indices`` empty, each row's count of kept entries
    goes to ``out_indptr[row + 1]``; else they are written (sorted by column) from
    ``out_indptr[row]``. Each entry sums its terms in the order of A's row, so the result
    does not depend on the thread count."""
    n_rows = a_indptr.size - 1
    write = out_indices.size > 0
    n_chunks = max(1, min(n_rows, 256))
    for chunk in prange(n_chunks):
        acc = np.zeros(n_cols, np.float64)
        seen = np.zeros(n_cols, np.bool_)
        touched = np.empty(n_cols, np.int64)
        for r in range(chunk * n_rows // n_chunks, (chunk + 1) * n_rows // n_chunks):
            m = 0
            for p in range(a_indptr[r], a_indptr[r + 1]):
                k, av = a_indices[p], a_data[p]
                for q in range(b_indptr[k], b_indptr[k + 1]):
                    j = b_indices[q]
                    if above_diagonal and j <= r:
                        continue
                    if not seen[j]:
                        seen[j] = True
                        touched[m] = j
                        m += 1
                    acc[j] += av * b_data[q]
            cols = np.sort(touched[:m]) if write else touched[:m]
            pos = out_indptr[r] if write else 0
            for j in cols:
                if acc[j] >= least:
                    if write:
                        out_indices[pos] = j
                        out_data[pos] = acc[j]
                    pos += 1
                acc[j] = 0.0
                seen[j] = False
            if not write:
                out_indptr[r + 1] = pos


def sparse_product(a: sp.csr_matrix, b: sp.csr_matrix, least: float = -np.inf,
                   above_diagonal: bool = False) -> sp.csr_matrix:
    """``a @ b`` as a float32 CSR matrix (sorted indices; sums in float64), keeping only
    the entries of at least ``least`` (and with ``above_diagonal``, those above the
    diagonal: ``triu(a @ b, k=1)``): co-occurrence counts with a floor, computed on every
    core and never held whole when most fall below it. SciPy's product runs on one thread
    and holds every entry. (An entry whose terms sum to exactly 0 is kept unless ``least``
    is above 0; SciPy drops it.)"""
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"shape mismatch: {a.shape} @ {b.shape}")
    a, b = a.tocsr(), b.tocsr()
    args = (a.indptr, a.indices, a.data.astype(np.float64), b.indptr, b.indices,
            b.data.astype(np.float64), b.shape[1], float(least), above_diagonal)
    indptr = np.zeros(a.shape[0] + 1, np.int64)
    _product_rows(*args, indptr, np.empty(0, np.int32), np.empty(0, np.float32))
    np.cumsum(indptr, out=indptr)
    indices = np.empty(int(indptr[-1]), np.int32)
    data = np.empty(int(indptr[-1]), np.float32)
    if indices.size:
        _product_rows(*args, indptr, indices, data)
    if indptr[-1] < np.iinfo(np.int32).max:
        indptr = indptr.astype(np.int32)
    return sp.csr_matrix((data, indices, indptr), shape=(a.shape[0], b.shape[1]))
