"""Random: uniformly random scores, reproducible per (seed, user); the floor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

import numpy as np
from numba import njit, prange

from embedlens.core.interactions import InteractionMatrix
from embedlens.core.params import Params
from embedlens.core.rng import float_at, stream
from embedlens.data.dataset import Dataset
from embedlens.kernels.topk import Scorer
from embedlens.methods.base import (
    Model,
    seed_param,
)


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

        def score(users: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
            users = np.asarray(users, dtype=np.int64)
            if out is None:
                out = np.empty((users.size, n_items), dtype=np.float32)
            _random_scores(users, seed, out)
            return out

        return score


@njit(parallel=True, cache=True)
def _random_scores(users: np.ndarray, seed: int, out: np.ndarray) -> None:
    for r in prange(users.size):
        start = stream(seed, users[r])
        for j in range(out.shape[1]):
            # the (j+1)-th draw of the user's stream (core.rng.next_float), computed from j
            # rather than from the previous draw, so draws do not wait on each other
            out[r, j] = float_at(start, j)
