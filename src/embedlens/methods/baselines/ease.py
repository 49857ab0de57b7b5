"""EASE (Steck 2019): closed-form item-item weights on the binary train matrix."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Self

import numpy as np
import scipy.sparse as sp

from embedlens.core.errors import DataError
from embedlens.core.files import load_arrays, save_arrays
from embedlens.core.ids import IdMap
from embedlens.core.interactions import InteractionMatrix
from embedlens.core.params import Params, param
from embedlens.data.dataset import Dataset
from embedlens.kernels.topk import Scorer
from embedlens.methods.base import (
    Model,
    candidates,
    min_count_param,
    popularity_param,
    with_popularity,
)


@dataclass(frozen=True)
class EASEParams(Params):
    owner: ClassVar[str] = "ease"
    lambda_: float = param(250.0, "L2 regularisation of the item-item weights", gt=0,
                           log=True, key="lambda", tune=(1.0, 5000.0))
    max_items: int = param(30_000, "refuse catalogues larger than this (dense n x n "
                           "inverse)", ge=1)
    min_count: int = min_count_param()
    popularity: float = popularity_param()


class EASEModel(Model):
    """EASE (Steck 2019): item-item weights ``B = I - P / diag(P)``, ``P = (XᵀX + λI)⁻¹``.

    Closed form on the binary train matrix; the dense inverse is ``n_items²``, so it refuses
    catalogues above ``max_items`` (30k by default: 3.6 GB of float32 weights).
    """

    name = "ease"
    Params = EASEParams

    def refusal(self, n_users: int, n_items: int) -> str | None:
        if n_items > self.p.max_items:
            return (f"EASE needs a dense {n_items:,} x {n_items:,} inverse; refusing above "
                    f"{self.p.max_items:,} items (filter rare items or raise max_items).")
        return None

    def fit(self, train: InteractionMatrix, dataset: Dataset | None = None) -> Self:
        n = len(train.items)
        why = self.refusal(len(train.users), n)
        if why is not None:
            raise DataError(why)
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
        x = train.binary()
        if pos.size == len(self.items) and np.array_equal(pos, np.arange(pos.size)):
            # scored on the items it was fitted on (a run, a tune): the weights as they
            # are, not an n x n copy (376 MB at ml-latest-small's 9.7k movies) per scorer
            x_model, cols = x, self.weights
        else:  # train's columns re-indexed into the model's item order
            remap = sp.csr_matrix(
                (np.ones(found.sum(), dtype=np.float32), (np.flatnonzero(found), pos[found])),
                shape=(len(train.items), len(self.items)),
            )
            x_model = sp.csr_matrix(x @ remap)
            cols = self.weights[:, pos.clip(0)]
        floor = candidates(train, self.p.min_count)
        if floor is not None:  # a movie below the floor scores -inf like an unknown one
            found &= floor

        def score(users: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
            s = np.asarray(x_model[users] @ cols, dtype=np.float32)  # scipy cannot fill out
            if not found.all():
                s[:, ~found] = -np.inf
            return s

        return with_popularity(score, train, self.p.popularity)

    def _save_state(self, directory: Path) -> None:
        save_arrays(directory / "ease.npz", ids=self.items.ids, weights=self.weights)

    def _load_state(self, directory: Path) -> None:
        z = load_arrays(directory / "ease.npz", ("ids", "weights"))
        self.items, self.weights = IdMap(z["ids"]), z["weights"]
