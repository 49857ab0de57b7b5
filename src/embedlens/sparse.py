"""Multi-threaded sparse x dense products (SciPy's are single-threaded).

Row-parallel CSR kernels in numba: each output row is a gather over its non-zeros, so
threads never write to the same row and the result is identical for any thread count.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numba import njit, prange


@njit(parallel=True, cache=True, fastmath=True)
def _spmm(indptr, indices, data, x, row_scale, normalize, out):  # pragma: no cover - numba
    n_rows, dim = out.shape
    for r in prange(n_rows):
        acc = np.zeros(dim, dtype=np.float32)
        for p in range(indptr[r], indptr[r + 1]):
            w = data[p]
            src = x[indices[p]]
            for j in range(dim):
                acc[j] += w * src[j]
        scale = row_scale[r]
        if normalize:
            norm = 0.0
            for j in range(dim):
                norm += acc[j] * acc[j]
            scale = 1.0 / np.sqrt(norm) if norm > 0 else 0.0
        for j in range(dim):
            out[r, j] = acc[j] * scale


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
    _spmm(a.indptr, a.indices, a.data.astype(np.float32, copy=False), x, scale, normalize, out)
    return out
