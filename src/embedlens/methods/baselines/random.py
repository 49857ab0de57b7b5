"""Random: uniformly random scores, reproducible per (seed, user); the floor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

import numpy as np
from numba import njit, prange

from embedlens.core.interactions import InteractionMatrix
from embedlens.core.params import Params
from embedlens.core.rng import next_float, stream
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
