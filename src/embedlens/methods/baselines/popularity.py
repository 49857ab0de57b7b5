"""Popularity (RePlay ``PopRec``): the share of train users who interacted with each item."""

from __future__ import annotations

from pathlib import Path
from typing import Self

import numpy as np

from embedlens.core.files import load_arrays, save_arrays
from embedlens.core.ids import IdMap
from embedlens.core.interactions import InteractionMatrix
from embedlens.data.dataset import Dataset
from embedlens.kernels.topk import FixedScorer, Scorer
from embedlens.methods.base import (
    Model,
)


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
        return FixedScorer(row)

    def _save_state(self, directory: Path) -> None:
        save_arrays(directory / "popularity.npz", ids=self.items.ids,
                    popularity=self.popularity)

    def _load_state(self, directory: Path) -> None:
        z = load_arrays(directory / "popularity.npz", ("ids", "popularity"))
        self.items, self.popularity = IdMap(z["ids"]), z["popularity"]
