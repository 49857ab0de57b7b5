"""Random walks on CSR graphs: uniform (DeepWalk), weighted, and node2vec's biased p/q walks.

All three are numba kernels, parallel over walks. Walk ``w`` draws from its own stream
``(seed, w)``, so the corpus is identical whatever the number of threads. Walks are rows of an
int32 matrix of node indices; a walk stuck at a node without neighbours is padded with -1.
Every node starts ``num_walks`` walks (rounds in node order).

node2vec (Grover & Leskovec 2016) uses rejection sampling: propose a neighbour ``x`` of the
current node ``v`` with probability proportional to the edge weight, accept with
``alpha(t, x) / alpha_max``, where ``alpha`` is ``1/p`` when ``x`` is the previous node
``t``, ``1`` when ``x`` is a neighbour of ``t`` (binary search in its sorted row), and
``1/q`` otherwise. No per-edge transition table is ever built.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from embedlens.core.errors import DataError
from embedlens.core.rng import next_float, stream
from embedlens.kernels.graphs import Graph


@njit(inline="always", cache=True)
def _pick(indptr, indices, cum, weighted, v, state):  # pragma: no cover - numba
    """A neighbour of ``v``: uniform, or by weight via the row's cumulative weights."""
    lo, hi = indptr[v], indptr[v + 1]
    if not weighted:
        return indices[lo + int(next_float(state) * (hi - lo))]
    base = cum[lo - 1] if lo > 0 else 0.0
    target = base + next_float(state) * (cum[hi - 1] - base)
    k = lo + np.searchsorted(cum[lo:hi], target, side="right")
    return indices[min(k, hi - 1)]


@njit(inline="always", cache=True)
def _is_neighbour(indptr, indices, t, x):  # pragma: no cover - numba
    lo, hi = indptr[t], indptr[t + 1]
    k = lo + np.searchsorted(indices[lo:hi], x)
    return k < hi and indices[k] == x


@njit(parallel=True, cache=True)
def _walk_kernel(indptr, indices, cum, weighted, starts, length, inv_p, inv_q, second_order,
                 seed, first, out):  # pragma: no cover - numba
    a_max = max(inv_p, 1.0, inv_q)
    for w in prange(starts.size):
        state = np.empty(1, dtype=np.uint64)
        state[0] = stream(seed, first + w)
        v = starts[w]
        out[w, 0] = v
        prev = -1
        for step in range(1, length):
            if indptr[v + 1] == indptr[v]:
                for rest in range(step, length):
                    out[w, rest] = -1
                break
            if not second_order or prev < 0:
                x = _pick(indptr, indices, cum, weighted, v, state)
            else:
                while True:
                    x = _pick(indptr, indices, cum, weighted, v, state)
                    if x == prev:
                        alpha = inv_p
                    elif _is_neighbour(indptr, indices, prev, x):
                        alpha = 1.0
                    else:
                        alpha = inv_q
                    if next_float(state) * a_max < alpha:
                        break
            out[w, step] = x
            prev, v = v, x


def random_walks(
    graph: Graph,
    num_walks: int = 10,
    walk_length: int = 40,
    p: float = 1.0,
    q: float = 1.0,
    weighted: bool = True,
    seed: int = 0,
    part: tuple[int, int] | None = None,
) -> np.ndarray:
    """``num_walks`` walks of ``walk_length`` nodes from every node: an int32 matrix.

    ``p = q = 1`` gives first-order walks (DeepWalk when ``weighted=False``); other values
    give node2vec's second-order walks (``p``: return, ``q``: in-out parameter). ``part``
    ``(lo, hi)``: only walks ``lo..hi-1`` of that matrix (a rank's share), the same rows.
    """
    if num_walks < 1 or walk_length < 2:
        raise DataError("Need num_walks >= 1 and walk_length >= 2.")
    if p <= 0 or q <= 0:
        raise DataError(f"node2vec needs p > 0 and q > 0, got p={p}, q={q}.")
    adj = graph.adj
    cum = np.cumsum(adj.data, dtype=np.float64) if weighted else np.zeros(1)
    lo, hi = part or (0, graph.n_nodes * num_walks)
    starts = np.arange(lo, hi, dtype=np.int64) % max(graph.n_nodes, 1)  # every node in turn
    out = np.empty((starts.size, walk_length), dtype=np.int32)
    _walk_kernel(
        adj.indptr.astype(np.int64), adj.indices.astype(np.int32), cum, weighted, starts,
        walk_length, 1.0 / p, 1.0 / q, not (p == 1.0 and q == 1.0), seed, lo, out,
    )
    return out
