"""Cleora item embeddings: the model (parameters, fit on a train split or a raw log)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Self

import numpy as np
import scipy.sparse as sp

from embedlens.core.distributed import all_gather_rows, all_reduce_sum, world
from embedlens.core.embeddings import Embeddings
from embedlens.core.errors import DataError
from embedlens.core.interactions import InteractionMatrix
from embedlens.core.params import param
from embedlens.core.schema import ITEM, USER
from embedlens.data.dataset import Dataset
from embedlens.kernels.sparse import CompactCsr, index_dtype
from embedlens.methods.base import (
    EmbeddingModel,
    EmbeddingParams,
    aggregation_param,
    item_metadata,
    seed_param,
    similarity_param,
)
from embedlens.methods.cleora.propagate import hash_init, propagate, whiten
from embedlens.prep.incidence import pattern_incidence, pattern_incidence_parquet


@dataclass(frozen=True)
class CleoraParams(EmbeddingParams):
    owner: ClassVar[str] = "cleora"
    similarity: str = similarity_param("cosine")
    aggregation: str = aggregation_param(tune=True)  # users derived from their movies
    dim: int = param(256, "vector dimension", ge=1, log=True, tune=(64, 1024))
    iterations: int = param(2, "Markov propagation steps", ge=1, tune=(1, 4))
    expansion: str = param("star", "hyperedge expansion: clique (pairs inside a user) or "
                           "star (users as nodes)", choices=("clique", "star"), tune=True)
    normalization: str = param("left", "Markov operator: left (D^-1 A) or symmetric",
                               choices=("left", "symmetric"), tune=True)
    min_rating: float | None = param(None, "keep only interactions rated at least this")
    weighted: bool = param(False, "weight hyperedge members by their rating")
    post: str = param("whiten", "after propagation: none, mean-centring or PCA whitening",
                      choices=("none", "center", "whiten"), tune=True)
    seed: int = seed_param()
    device: str = param("auto", "cpu (numba), torch (CPU tensors), cuda, or auto (cuda when "
                        "torch sees a GPU, else numba)", choices=("cpu", "torch", "cuda", "auto"))


class CleoraModel(EmbeddingModel):
    """Cleora item embeddings; users are the (weighted) mean of their items.

    Defaults were chosen by measurement on ML-100k (docs/benchmarks.md): the star expansion,
    2 iterations and PCA whitening rank best; the tutorial's setting is
    ``expansion="clique", iterations=3, post="none"``.
    """

    name = "cleora"
    Params = CleoraParams

    def fit(self, train: InteractionMatrix, dataset: Dataset | None = None) -> Self:
        b = CompactCsr.from_csr(self._incidence(train))
        return self._fit_incidence(b, train.items.ids, dataset)

    def fit_log(self, users: np.ndarray, items: np.ndarray) -> Self:
        """Fit on a raw log given as two integer id arrays (one row per interaction), the
        lean way for logs of tens of millions of rows: no ratings, times or id maps are
        kept, only a pattern incidence (:func:`pattern_incidence`). Unweighted hyperedges
        only."""
        self._check_lean()
        b, _, item_ids = pattern_incidence(users, items)
        del users, items  # a caller passing fresh arrays gets their memory back here
        return self._fit_incidence(b, item_ids, None)

    def fit_parquet(self, path: str | Path, user_col: str = USER, item_col: str = ITEM) -> Self:
        """:meth:`fit_log` straight from a Parquet log, read in batches: the id columns are
        never in memory whole (ML-25M: ~100 MB of ids less at the peak).

        Under torchrun each rank keeps only its users' hyperedges (user id modulo the
        number of ranks: whole hyperedges, about ``1/N`` of the pattern each), the ranks
        agree on the movies by gathering their distinct movie ids, and each propagation
        step all-reduces the movies' sums: every rank ends with one process's vectors (to
        float rounding; ``tests/test_distributed.py``)."""
        self._check_lean()
        w = world()
        if w.size == 1:
            b, _, item_ids = pattern_incidence_parquet(path, user_col, item_col)
            return self._fit_incidence(b, item_ids, None)
        b, _, mine = pattern_incidence_parquet(path, user_col, item_col,
                                               part=(w.rank, w.size))
        item_ids = np.unique(all_gather_rows(mine))
        if item_ids.size == 0:
            raise DataError(f"Cannot build an incidence matrix from an empty log ({path}).")
        # this rank's column codes (into its own movies) as codes into everyone's
        codes = np.searchsorted(item_ids, mine).astype(index_dtype(item_ids.size))
        b = CompactCsr(b.indptr, codes[b.indices], (b.shape[0], item_ids.size), b.data)
        return self._fit_incidence(b, item_ids, None, local_rows=True)

    def _check_lean(self) -> None:
        if self.p.weighted or self.p.min_rating is not None:
            raise DataError("cleora fit_log/fit_parquet take ids only: no weighted or min_rating.")

    def _fit_incidence(self, b: CompactCsr, item_ids: np.ndarray, dataset: Dataset | None,
                       local_rows: bool = False) -> Self:
        """Propagate through ``b``; ``local_rows``: under torchrun ``b`` holds only this
        rank's hyperedges (else every rank holds them all and takes its share)."""
        p = self.p
        x = propagate(b, hash_init(item_ids, p.dim, p.seed), p.iterations, p.expansion,
                      p.normalization, p.device, overwrite_x=True, local_rows=local_rows)
        counts = b.column_counts()
        if local_rows:
            counts = all_reduce_sum(counts)
        self.item_embeddings = Embeddings(item_ids, self._post(x), "item",
                                          item_metadata(dataset), counts=counts)
        # Users are the mean of their items' final vectors (l2(B X) under cosine): the
        # ``aggregation`` parameter picks mean, rating- or recency-weighted.
        self.user_embeddings = None
        return self

    def _incidence(self, train: InteractionMatrix) -> sp.csr_matrix:
        """Users x items hyperedge matrix: 1 (or the rating) for each kept interaction."""
        b = train.ratings.copy() if self.p.weighted else train.binary()
        if self.p.min_rating is not None:
            b.data[train.ratings.data < self.p.min_rating] = 0
            b.eliminate_zeros()
        if b.nnz == 0:
            raise DataError("cleora: no interaction passes min_rating; nothing to embed.")
        return b.astype(np.float32)

    def _post(self, x: np.ndarray) -> np.ndarray:
        post = self.p.post
        if post == "center":
            return x - x.mean(axis=0)
        if post == "whiten":
            return whiten(x)
        return x
