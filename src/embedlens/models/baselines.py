"""Baselines every method is compared with: Random, Popularity, EASE and (optional) ALS."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Self

import numpy as np
import scipy.sparse as sp
from numba import njit, prange

from embedlens._rng import next_float, stream
from embedlens.data.dataset import Dataset
from embedlens.embeddings import Embeddings
from embedlens.errors import DataError, EmbedlensError
from embedlens.io.files import load_arrays, save_arrays
from embedlens.models.base import (
    EmbeddingModel,
    EmbeddingParams,
    Model,
    item_metadata,
    seed_param,
)
from embedlens.params import Params, param
from embedlens.prep.encoding import IdMap, InteractionMatrix
from embedlens.progress import is_quiet
from embedlens.topk import Scorer


@dataclass(frozen=True)
class RandomParams(Params):
    owner: ClassVar[str] = "random"
    seed: int = seed_param()


class RandomModel(Model):
    """Uniformly random scores, reproducible per (seed, user)."""

    name = "random"
    Params = RandomParams

    def fit(self, train: InteractionMatrix, dataset: Dataset | None = None) -> Self:
        return self

    def scorer(self, train: InteractionMatrix) -> Scorer:
        n_items, seed = len(train.items), self.p.seed
        return lambda users: _random_scores(np.asarray(users, dtype=np.int64), n_items, seed)


@njit(parallel=True, cache=True)
def _random_scores(users: np.ndarray, n_items: int, seed: int) -> np.ndarray:
    out = np.empty((users.size, n_items), dtype=np.float32)
    for r in prange(users.size):
        state = np.empty(1, dtype=np.uint64)
        state[0] = stream(seed, users[r])
        for j in range(n_items):
            out[r, j] = next_float(state)
    return out


class PopularityModel(Model):
    """Items ranked by the share of train users who interacted with them (RePlay ``PopRec``).

    Ties: lower item id first (the top-K tie rule).
    """

    name = "pop"

    def fit(self, train: InteractionMatrix, dataset: Dataset | None = None) -> Self:
        users_per_item = np.diff(train.binary().tocsc().indptr)
        self.items = train.items
        self.popularity = (users_per_item / max(1, len(train.users))).astype(np.float32)
        return self

    def scorer(self, train: InteractionMatrix) -> Scorer:
        pos = self.items.index(train.items.ids)
        row = np.where(pos >= 0, self.popularity[pos.clip(0)], -np.inf).astype(np.float32)
        return lambda users: np.broadcast_to(row, (len(users), row.size))

    def _save_state(self, directory: Path) -> None:
        save_arrays(directory / "popularity.npz", ids=self.items.ids,
                    popularity=self.popularity)

    def _load_state(self, directory: Path) -> None:
        z = load_arrays(directory / "popularity.npz", ("ids", "popularity"))
        self.items, self.popularity = IdMap(z["ids"]), z["popularity"]


@dataclass(frozen=True)
class EASEParams(Params):
    owner: ClassVar[str] = "ease"
    lambda_: float = param(250.0, "L2 regularisation of the item-item weights", gt=0,
                           log=True, key="lambda")
    max_items: int = param(30_000, "refuse catalogues larger than this (dense n x n "
                           "inverse)", ge=1)


class EASEModel(Model):
    """EASE (Steck 2019): item-item weights ``B = I - P / diag(P)``, ``P = (XᵀX + λI)⁻¹``.

    Closed form on the binary train matrix; the dense inverse is ``n_items²``, so it refuses
    catalogues above ``max_items`` (30k by default: 3.6 GB of float32 weights).
    """

    name = "ease"
    Params = EASEParams

    def fit(self, train: InteractionMatrix, dataset: Dataset | None = None) -> Self:
        n = len(train.items)
        if n > self.p.max_items:
            raise DataError(
                f"EASE needs a dense {n:,} x {n:,} inverse; refusing above "
                f"{self.p.max_items:,} items (filter rare items or raise max_items)."
            )
        x = train.binary()
        gram = (x.T @ x).toarray().astype(np.float64)
        gram[np.diag_indices(n)] += self.p.lambda_
        p = np.linalg.inv(gram)
        b = -p / np.diag(p)
        b[np.diag_indices(n)] = 0.0
        self.items, self.weights = train.items, b.astype(np.float32)
        return self

    def scorer(self, train: InteractionMatrix) -> Scorer:
        pos = self.items.index(train.items.ids)
        found = pos >= 0
        # train's columns re-indexed into the model's item order (equal when fitted on it)
        x = train.binary()
        remap = sp.csr_matrix(
            (np.ones(found.sum(), dtype=np.float32), (np.flatnonzero(found), pos[found])),
            shape=(len(train.items), len(self.items)),
        )
        x_model = sp.csr_matrix(x @ remap)
        cols = self.weights[:, pos.clip(0)]
        cols[:, ~found] = -np.inf

        def score(users: np.ndarray) -> np.ndarray:
            s = np.asarray(x_model[users] @ cols, dtype=np.float32)
            if not found.all():
                s[:, ~found] = -np.inf
            return s

        return score

    def _save_state(self, directory: Path) -> None:
        save_arrays(directory / "ease.npz", ids=self.items.ids, weights=self.weights)

    def _load_state(self, directory: Path) -> None:
        z = load_arrays(directory / "ease.npz", ("ids", "weights"))
        self.items, self.weights = IdMap(z["ids"]), z["weights"]


@dataclass(frozen=True)
class ALSParams(EmbeddingParams):
    owner: ClassVar[str] = "als"
    factors: int = param(64, "latent factors", ge=1)
    regularization: float = param(0.05, "L2 regularisation", ge=0, log=True)
    iterations: int = param(15, "ALS sweeps", ge=1)
    alpha: float = param(1.0, "confidence weight of an interaction", gt=0, log=True)
    seed: int = seed_param()


class ALSModel(EmbeddingModel):
    """Implicit-feedback ALS from the ``implicit`` package (optional extra ``embedlens[als]``)."""

    name = "als"
    Params = ALSParams

    def fit(self, train: InteractionMatrix, dataset: Dataset | None = None) -> Self:
        try:
            from implicit.cpu.als import AlternatingLeastSquares
        except ImportError as exc:
            raise EmbedlensError(
                "ALS needs the optional 'implicit' package: pip install 'embedlens[als]'."
            ) from exc
        from threadpoolctl import threadpool_limits

        p = self.p
        with threadpool_limits(1, "blas"):  # implicit runs its own threads; BLAS's would fight
            model = AlternatingLeastSquares(
                factors=p.factors, regularization=p.regularization, iterations=p.iterations,
                alpha=p.alpha, random_state=p.seed, calculate_training_loss=False,
            )
            model.fit(train.binary(), show_progress=not is_quiet())
        self.item_embeddings = Embeddings(
            train.items.ids, model.item_factors, "item", item_metadata(dataset)
        )
        self.user_embeddings = Embeddings(train.users.ids, model.user_factors, "user")
        return self
