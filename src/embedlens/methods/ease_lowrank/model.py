"""EASE as d-dimensional user and item vectors: the closed-form low-rank linear autoencoder.

EASE (Steck 2019) scores a user's unseen item ``i`` as ``-(x P)_i / P_ii`` with
``P = (XᵀX + λI)⁻¹``. Write ``XᵀX = V diag(s) Vᵀ`` and ``w = s / (s + λ)``: then
``P = (I - V diag(w) Vᵀ) / λ``, and on the items a user has not seen (``x_i = 0``) the
score is ``(x V diag(w) Vᵀ)_i / (λ P_ii)``, a dot product of

* the user vector ``x V diag(√w)`` and
* the item vector ``V_i diag(√w) / (λ P_ii)``.

Keeping the ``dim`` largest eigenvalues gives ``dim``-dimensional vectors whose ranking
tends to EASE's as ``dim`` grows, since ``w`` is near 0 for the small eigenvalues; ``λ P_ii``
is taken from the kept components alone, ``1 - Σ_k V_ik² w_k``. At full rank the dot
products are EASE's scores themselves. This is the
closed-form low-rank linear autoencoder of Steck ("Autoencoders that don't overfit towards
the Identity", NeurIPS 2020) and Jin, Li, Ma, Zhang, Xu and Liu ("Towards a Better
Understanding of Linear Models for Recommendation", KDD 2021): EASE's ranking with plain
dot-product vectors, and without EASE's dense items x items inverse, so it runs on
catalogues EASE refuses (benchmarks/ease_spectral.py measured d = 512 level with EASE on
ML-100k and ml-latest-small).

Two solvers give the eigenpairs. ``exact``: the dense Gram matrix of the smaller side
(items x items, or users x users whose eigenvectors map to the items' through ``Xᵀ``),
``eigh`` in float64. ``randomized``: subspace iteration on ``XᵀX`` (Halko, Martinsson and
Tropp 2011) with ``dim`` plus :data:`OVERSAMPLE` columns, each product ``Xᵀ(X Q)`` taken
through the user rows without forming ``XᵀX``; under torchrun each rank takes its share of
the users and the products are summed. ``auto`` takes ``exact`` when the smaller side has
at most :data:`EXACT_MAX` rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

import numpy as np
import scipy.sparse as sp

from embedlens.core.distributed import all_reduce_sum, count_work, share
from embedlens.core.embeddings import Embeddings
from embedlens.core.interactions import InteractionMatrix
from embedlens.core.params import param
from embedlens.core.progress import progress
from embedlens.data.dataset import Dataset
from embedlens.kernels.sparse import CompactCsr, spmm, through_rows
from embedlens.methods.base import EmbeddingModel, EmbeddingParams, item_metadata, seed_param

#: ``solver="auto"`` decomposes the dense Gram matrix when the smaller side of the log (users
#: or items) has at most this many rows: ``eigh`` of 4,096 rows takes seconds on 2 cores.
EXACT_MAX = 4096
#: Extra columns the randomized solver carries beyond ``dim`` (at least 16): the kept
#: eigenvectors converge faster when the subspace is larger than what is kept.
OVERSAMPLE = 0.25


@dataclass(frozen=True)
class EASELowRankParams(EmbeddingParams):
    owner: ClassVar[str] = "ease-lowrank"
    dim: int = param(512, "vector dimension: the eigenpairs of XᵀX kept (fewer when the "
                     "log's rank is lower; the rest of the columns are zero)", ge=1, log=True,
                     tune=(64, 1024))
    reg: float = param(20.0, "EASE's L2 regularisation λ as a multiple of the mean number of "
                       "train users per movie (λ = reg x ratings / movies), so that one value "
                       "suits logs of any size", gt=0, log=True, tune=(1.0, 200.0))
    solver: str = param("auto", "eigenpairs from the dense Gram matrix (exact), by subspace "
                        "iteration (randomized), or exact when the smaller side of the log "
                        f"has at most {EXACT_MAX:,} rows (auto)",
                        choices=("auto", "exact", "randomized"))
    iterations: int = param(4, "subspace iterations of the randomized solver", ge=1, le=50)
    seed: int = seed_param()


class EASELowRankModel(EmbeddingModel):
    """EASE's ranking as dot products of ``dim``-dimensional vectors (module docstring):
    items ``V_i diag(√w) / (λ P_ii)``, users ``x V diag(√w)``."""

    name = "ease-lowrank"
    Params = EASELowRankParams

    def fit(self, train: InteractionMatrix, dataset: Dataset | None = None) -> Self:
        p = self.p
        x = train.binary()
        small = min(x.shape)
        exact = p.solver == "exact" or (p.solver == "auto" and small <= EXACT_MAX)
        if exact:
            values, vectors = exact_eigenpairs(x, p.dim)
        else:
            values, vectors = randomized_eigenpairs(CompactCsr.from_csr(x), p.dim, p.iterations,
                                                    p.seed)
        root, items = ease_factors(values, vectors, regularisation(x, p.reg), p.dim)
        self.item_embeddings = Embeddings(train.items.ids, items, "item", item_metadata(dataset))
        self.user_embeddings = Embeddings(train.users.ids, spmm(x, root), "user")
        return self


def ease_factors(values: np.ndarray, vectors: np.ndarray, lam: float, dim: int,
                 scaled_p: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """From eigenpairs of ``XᵀX`` (largest first) and EASE's ``λ``: the user side
    ``V diag(√w)`` (a user's vector is ``x`` times it) and the item vectors
    ``V_i diag(√w) / (λ P_ii)``, both items x ``dim`` float32 (columns past the log's rank are
    zero). ``scaled_p``: ``λ P_ii`` when known exactly; by default :func:`scaled_diagonal`
    of the kept components."""
    keep = _kept(values, dim)
    kept = vectors[:, :keep] * np.sqrt(values[:keep] / (values[:keep] + lam))
    _fix_signs(kept)
    if scaled_p is None:
        scaled_p = scaled_diagonal(values, vectors, lam, dim)
    items = np.zeros((vectors.shape[0], dim), dtype=np.float32)
    items[:, :keep] = kept / scaled_p[:, None]
    root = np.zeros_like(items)
    root[:, :keep] = kept
    return root, items


def scaled_diagonal(values: np.ndarray, vectors: np.ndarray, lam: float, dim: int
                    ) -> np.ndarray:
    """EASE's ``λ P_ii`` from the ``dim`` largest eigenpairs of ``XᵀX`` alone,
    ``1 - Σ_k V_ik² w_k`` (float64), floored at ``λ / (λ + s_1)``, its least possible value.
    Exact when every eigenpair with a positive eigenvalue is given (the others have
    ``w = 0``)."""
    keep = _kept(values, dim)
    top = float(values[0]) if values.size else 0.0
    # the same products as the kept item vectors', so the model's vectors do not move
    kept = vectors[:, :keep] * np.sqrt(values[:keep] / (values[:keep] + lam))
    return np.maximum(1.0 - (kept**2).sum(axis=1), lam / (lam + top))


def _kept(values: np.ndarray, dim: int) -> int:
    """How many of the eigenpairs (largest first) to keep: at most ``dim``, and only those
    above the rounding noise of the largest."""
    top = float(values[0]) if values.size else 0.0
    return min(dim, int((values > top * 1e-10).sum()))


def regularisation(x: sp.csr_matrix, reg: float) -> float:
    """EASE's λ for ``reg``: ``reg`` times the mean of ``XᵀX``'s diagonal (the mean number of
    users per item). EASE's best λ grows with the log (ML-100k's tuned λ is about 10 times
    its mean, ml-latest-small's 20 times; the planted ML-25M log wants 30 times, 10,000):
    a fixed λ tuned on a small log is far too weak on a large one."""
    return reg * max(x.nnz, 1) / max(x.shape[1], 1)


def exact_eigenpairs(x: sp.csr_matrix, dim: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The ``dim`` largest eigenpairs of ``XᵀX`` (all of them when None), those with a
    positive eigenvalue, largest first (float64), from the dense Gram matrix of the smaller
    side: ``XᵀX`` itself, or ``XXᵀ = U diag(s) Uᵀ`` with ``V = Xᵀ U diag(1/√s)`` (only the
    kept ones mapped: an items x users matrix of them all could be huge)."""
    m = sp.csr_matrix(x, dtype=np.float64)
    by_items = m.shape[1] <= m.shape[0]
    gram = (m.T @ m if by_items else m @ m.T).toarray()
    values, vectors = np.linalg.eigh(gram)
    values, vectors = values[::-1], vectors[:, ::-1]
    positive = int((values > max(float(values[0]), 0.0) * 1e-12).sum())
    keep = positive if dim is None else min(dim, positive)
    values, vectors = values[:keep], vectors[:, :keep]
    if not by_items:
        vectors = np.asarray(m.T @ vectors) / np.sqrt(values)
    return values, vectors


def randomized_eigenpairs(b: CompactCsr, dim: int, iterations: int,
                          seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``dim`` largest eigenpairs of ``BᵀB`` (largest first, float64) by subspace
    iteration from a seeded Gaussian start, with Rayleigh-Ritz on the
    final subspace. Each product ``Bᵀ(B Q)`` goes through this rank's share of B's rows and
    is summed over the ranks."""
    n = b.shape[1]
    width = min(n, dim + max(16, int(dim * OVERSAMPLE)))
    q = np.random.default_rng(seed).standard_normal((n, width)).astype(np.float32)
    rows = share(b.shape[0], kind="users")
    product = np.empty_like(q)

    def gram_times(v: np.ndarray) -> np.ndarray:
        through_rows(b, v, product, rows)
        count_work("steps")
        return all_reduce_sum(product)

    for _ in progress(range(iterations), "ease-lowrank: subspace iteration"):
        basis, _ = np.linalg.qr(gram_times(q).astype(np.float64))
        q = np.ascontiguousarray(basis, dtype=np.float32)
    projected = q.T.astype(np.float64) @ gram_times(q).astype(np.float64)
    values, rotation = np.linalg.eigh((projected + projected.T) / 2)
    order = np.argsort(values)[::-1][:dim]
    return values[order], q.astype(np.float64) @ rotation[:, order]


def _fix_signs(vectors: np.ndarray) -> None:
    """In place: each column's largest entry (in absolute value) made positive, so the
    vectors do not depend on the sign an eigensolver happened to return."""
    rows = np.abs(vectors).argmax(axis=0)
    signs = np.sign(vectors[rows, np.arange(vectors.shape[1])])
    vectors *= np.where(signs == 0, 1.0, signs)
