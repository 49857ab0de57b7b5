"""Implicit-feedback ALS from the ``implicit`` package (optional extra ``embedlens[als]``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

from embedlens.core.embeddings import Embeddings
from embedlens.core.errors import EmbedlensError
from embedlens.core.interactions import InteractionMatrix
from embedlens.core.params import param
from embedlens.core.progress import is_quiet
from embedlens.data.dataset import Dataset
from embedlens.methods.base import (
    EmbeddingModel,
    EmbeddingParams,
    item_metadata,
    seed_param,
)


@dataclass(frozen=True)
class ALSParams(EmbeddingParams):
    owner: ClassVar[str] = "als"
    factors: int = param(64, "latent factors", ge=1, log=True, tune=(16, 256))
    regularization: float = param(0.05, "L2 regularisation", ge=0, log=True,
                                  tune=(1e-3, 100.0))
    iterations: int = param(15, "ALS sweeps", ge=1)
    alpha: float = param(1.0, "confidence weight of an interaction", gt=0, log=True,
                         tune=(0.1, 50.0))
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
