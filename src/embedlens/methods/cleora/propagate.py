"""Cleora: hypergraph embeddings by Markov propagation, exact and fast.

Each user's train movies form one hyperedge. With ``B`` the users x items incidence and ``k_e``
the size of hyperedge ``e``, Cleora's clique expansion is ``A = Bᵀ diag(1/k_e²) B`` (each
pair inside a hyperedge gets ``1/k_e²``, self-loops included) and one left-Markov step is
``D⁻¹ A X``. The per-iteration row L2 normalisation cancels ``D⁻¹``, so a step is

    X <- l2_rows(Bᵀ (w ⊙ (B X))),   w_e = 1 / k_e²

two sparse products through the user rows: the clique (1.75e9 non-zeros at ML-25M scale) is
never built, and no hyperedge is trimmed (pycleora keeps 16 items per hyperedge by default).

Options: ``expansion="star"`` treats users as nodes of a bipartite graph (each hyperedge
passes on the normalised mean of its items); ``normalization="symmetric"`` uses
``D^-1/2 A D^-1/2``; ``post`` mean-centres or PCA-whitens the result.
"""

from __future__ import annotations

import hashlib

import numpy as np
import scipy.sparse as sp
from numba import njit, prange

from embedlens.core.distributed import all_reduce_sum, count_work, share, world
from embedlens.core.errors import DataError
from embedlens.core.progress import progress
from embedlens.core.rng import next_float, stream
from embedlens.kernels.sparse import NO_WEIGHTS, CompactCsr, through_rows


def entity_keys(ids: np.ndarray) -> np.ndarray:
    """A stable 64-bit key per entity id: the integer itself, or a hash of the string.

    The initial vector depends only on (seed, key), so an item starts from the same vector
    whatever else is in the graph.
    """
    ids = np.asarray(ids)
    if np.issubdtype(ids.dtype, np.integer):
        keys = ids.astype(np.int64).astype(np.uint64)
    else:
        keys = np.array(
            [int.from_bytes(hashlib.blake2b(str(i).encode(), digest_size=8).digest(), "little")
             for i in ids], dtype=np.uint64,
        )
    return keys


@njit(parallel=True, cache=True)
def _hash_init(keys: np.ndarray, dim: int, seed: int) -> np.ndarray:  # pragma: no cover
    out = np.empty((keys.size, dim), dtype=np.float32)
    for r in prange(keys.size):
        state = np.empty(1, dtype=np.uint64)
        state[0] = stream(seed, keys[r])
        for j in range(dim):
            out[r, j] = 2.0 * next_float(state) - 1.0
    return out


def hash_init(ids: np.ndarray, dim: int, seed: int) -> np.ndarray:
    """Deterministic uniform(-1, 1) start vectors from (seed, entity id)."""
    return _hash_init(entity_keys(ids), dim, seed)


def whiten(x: np.ndarray, rel_floor: float = 1e-6) -> np.ndarray:
    """PCA whitening: centre, rotate onto the principal axes, scale each to unit variance.

    Axes whose variance is below ``rel_floor`` of the largest are dropped (set to zero)
    rather than blown up: with fewer entities than dimensions they carry only noise.
    """
    centered = (x - x.mean(axis=0)).astype(np.float64)
    cov = centered.T @ centered / max(1, x.shape[0] - 1)
    values, vectors = np.linalg.eigh(cov)
    order = values.argsort()[::-1]
    values, vectors = values[order], vectors[:, order]
    keep = values > rel_floor * max(values[0], 1e-30)
    scale = np.where(keep, 1.0 / np.sqrt(np.where(keep, values, 1.0)), 0.0)
    return (centered @ vectors * scale).astype(np.float32)


@njit(parallel=True, cache=True)
def _l2_rows_inplace(out):  # pragma: no cover - numba
    """Unit-length rows (zero rows stay zero); col_scale > 0 cancels here."""
    for i in prange(out.shape[0]):
        norm = 0.0
        for j in range(out.shape[1]):
            norm += out[i, j] * out[i, j]
        inv = 1.0 / np.sqrt(norm) if norm > 0 else 0.0
        for j in range(out.shape[1]):
            out[i, j] *= inv


def _numba_propagate(b: CompactCsr, w, sym, star, x, steps, overwrite_x,
                     local_rows: bool = False) -> np.ndarray:
    """The CPU loop: each step is one :func:`~embedlens.kernels.sparse.through_rows`
    (``Bᵀ W B S X``, chunk by chunk of hyperedges; neither BᵀB nor Bᵀ is built) and row
    normalisation. Memory: B, two item matrices (ping-pong; ``overwrite_x`` lets the first
    reuse ``x``) and a few MB of chunk."""
    # the loop writes into x's buffer from the second step on
    x = np.asarray(x, np.float32, order="C") if overwrite_x else np.array(x, np.float32, order="C")
    sym = NO_WEIGHTS if bool((sym == 1).all()) else sym
    # under torchrun each rank propagates through its share of the hyperedges (all of
    # those it holds, when it holds only its own), and one all-reduce of the items x dim
    # sums per step adds the shares up
    if local_rows:
        rows = (0, b.shape[0])
        count_work("hyperedges", b.shape[0])
    else:
        rows = share(b.shape[0], kind="hyperedges")
    out = np.empty_like(x)
    for _ in steps:
        through_rows(b, x, out, rows, w, sym, star)
        all_reduce_sum(out)
        count_work("steps")
        _l2_rows_inplace(out)
        x, out = out, x
    return x


def propagate(
    b: sp.csr_matrix | CompactCsr,
    x: np.ndarray,
    iterations: int = 3,
    expansion: str = "clique",
    normalization: str = "left",
    device: str = "cpu",
    overwrite_x: bool = False,
    local_rows: bool = False,
) -> np.ndarray:
    """``iterations`` item -> hyperedge -> item Markov steps from start vectors ``x``.

    ``b`` is the hyperedges x items incidence (weights are float32). Clique: hyperedge e
    passes ``w_e = 1/k_e²`` times the sum of its items (k_e is the weight sum for weighted
    hyperedges). Star: hyperedges are nodes of a bipartite graph, so each passes the
    L2-normalised mean of its items. Every step ends with row L2 normalisation; with
    ``normalization="symmetric"`` the operator is ``D^-1/2 A D^-1/2``. ``overwrite_x``
    lets the CPU loop use ``x``'s memory as scratch (one item matrix less at the peak).

    On CPU, results are bitwise identical for any number of numba threads. Under torchrun
    (gloo) the hyperedges are shared out among the ranks and the per-step sums all-reduced:
    the same vectors up to the order of float additions (cosine 1 - 1e-6 to one process).
    ``local_rows``: ``b`` holds only this rank's hyperedges (over every rank's items), so
    the rank propagates through all of them, and the degrees of the symmetric operator are
    all-reduced too.
    """
    b = b if isinstance(b, CompactCsr) else CompactCsr.from_csr(b)
    if x.shape[0] != b.shape[1]:
        raise DataError(f"cleora: {x.shape[0]} start vectors for {b.shape[1]} items.")
    sizes = b.row_sums()
    w = np.divide(1.0, sizes**2, out=np.zeros_like(sizes), where=sizes > 0).astype(np.float32)
    star = expansion == "star"
    sym = np.ones(b.shape[1], dtype=np.float32)
    if normalization == "symmetric":
        hyperedge = np.ones_like(w) if star else w * sizes
        degree = b.rmatvec(hyperedge)  # A·1 = Bᵀ(w ⊙ B1)
        if local_rows:
            degree = all_reduce_sum(degree)
        sym = np.divide(1.0, np.sqrt(degree), out=np.zeros_like(degree), where=degree > 0)
        sym = sym.astype(np.float32)
    steps = progress(range(iterations), "cleora: propagate")
    if _use_torch(device):
        if world().size > 1:
            raise DataError("cleora under torchrun runs on the CPU path (device=cpu); the "
                            "GPU path is one process.")
        return _torch_propagate(b.to_csr(), w, sym, star, x, steps, device)
    return _numba_propagate(b, w, sym, star, x, steps, overwrite_x, local_rows)


def _use_torch(device: str) -> bool:
    if device == "cpu":
        return False
    if device == "auto":
        import importlib.util
        import os

        # no NVIDIA device node: no GPU, and no need to import torch (300 MB) to learn so
        if not os.path.exists("/dev/nvidiactl") or importlib.util.find_spec("torch") is None:
            return False
        import torch

        return bool(torch.cuda.is_available())
    return True


def _torch_propagate(b, w, sym, star, x, steps, device) -> np.ndarray:
    """The same iteration with torch sparse CSR tensors (on a GPU when there is one)."""
    import warnings

    import torch

    target = "cuda" if device in ("cuda", "auto") else "cpu"
    if target == "cuda" and not torch.cuda.is_available():
        raise DataError("cleora device='cuda' but torch sees no GPU.")

    def csr(m: sp.csr_matrix) -> torch.Tensor:
        with warnings.catch_warnings():  # "sparse CSR support is in beta": it is what we need
            warnings.simplefilter("ignore", UserWarning)
            return torch.sparse_csr_tensor(
                torch.from_numpy(m.indptr.astype(np.int64)),
                torch.from_numpy(m.indices.astype(np.int64)),
                torch.from_numpy(m.data.astype(np.float32)), size=m.shape, device=target,
            )

    tb, tbt = csr(b), csr(b.T.tocsr())
    tw = torch.from_numpy(w).to(target)[:, None]
    ts = torch.from_numpy(sym).to(target)[:, None]
    tx = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(target)
    for _ in steps:
        ty = tb @ (tx * ts)
        ty = torch.nn.functional.normalize(ty, dim=1) if star else tw * ty
        tx = torch.nn.functional.normalize(tbt @ ty, dim=1)
    return tx.cpu().numpy()
