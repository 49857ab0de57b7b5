"""Multi-threaded sparse x dense products (SciPy's are single-threaded).

Row-parallel CSR kernels in numba: each output row is a gather over its non-zeros, so
threads never write to the same row and the result is identical for any thread count.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numba import njit, prange


@njit(parallel=True, cache=True, fastmath=True)
def gather_rows(indptr, indices, data, plain, row_scale, col_scale, normalize, src, src_lo, dst,
                 dst_lo, width):  # pragma: no cover - numba
    """``dst[r, dst_lo:+width] = scale_r * sum_p data_p * col_scale[c_p] * src[c_p, src_lo:+width]``
    over the entries ``p`` of CSR row ``r``; ``scale_r`` is ``row_scale[r]``, or one over the
    sum's length when ``normalize``. Rows are independent (no shared accumulator, no
    reduction), so the result does not depend on the number of threads. ``plain`` skips the
    weights. Column blocks (``src_lo``, ``dst_lo``, ``width``) let a caller bound its buffers,
    as Cleora's propagation does."""
    for r in prange(indptr.size - 1):
        acc = dst[r, dst_lo : dst_lo + width]
        acc[:] = 0.0
        for p in range(indptr[r], indptr[r + 1]):
            # a slice, so the inner loop indexes from 0 (no wraparound check) and vectorises
            row = src[indices[p], src_lo : src_lo + width]
            if plain:
                for j in range(width):
                    acc[j] += row[j]
            else:
                weight = data[p] * col_scale[indices[p]]
                for j in range(width):
                    acc[j] += weight * row[j]
        scale = row_scale[r]
        if normalize:
            norm = 0.0
            for j in range(width):
                norm += acc[j] * acc[j]
            scale = 1.0 / np.sqrt(norm) if norm > 0 else 0.0
        if scale != 1.0:
            for j in range(width):
                acc[j] *= scale


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
    gather_rows(a.indptr, a.indices, data, False, scale, np.ones(x.shape[0], dtype=np.float32),
                normalize, x, 0, out, 0, x.shape[1])
    return out
