"""ELSA: the scalable linear shallow autoencoder (Vančura, Alves, Kasalický, Kordík, RecSys
2022).

One item matrix ``A`` (items x dim) with unit-length rows; a user's interactions ``x``
(a 0/1 row) are scored ``x A A^T - x``: a low-rank relative of EASE whose ``- x`` plays the
part of EASE's zero diagonal, so it scales to catalogues EASE cannot hold in memory. Trained
with Adam on mini-batches of users, on the normalised squared error between the scores and
``x`` (both rows scaled to unit length), as in the authors' code. The vectors it hands out:
items ``A``, users ``x A`` (and ``x A . a_i`` is the score up to the ``- x`` term, which only
touches the user's own items, never recommended anyway).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np

from embedlens.core.embeddings import Embeddings
from embedlens.core.interactions import InteractionMatrix
from embedlens.core.params import param
from embedlens.data.dataset import Dataset
from embedlens.kernels.sparse import spmm
from embedlens.methods.base import EmbeddingParams, device_param, item_metadata, seed_param
from embedlens.methods.training import TorchModel


@dataclass(frozen=True)
class ELSAParams(EmbeddingParams):
    owner: ClassVar[str] = "elsa"
    dim: int = param(256, "vector dimension", ge=1, log=True, tune=(64, 1024))
    epochs: int = param(10, "passes over the users", ge=1, tune=(3, 20))
    batch_size: int = param(256, "users per mini-batch", ge=1)
    lr: float = param(0.1, "Adam learning rate", gt=0, log=True, tune=(0.01, 0.3))
    seed: int = seed_param()
    device: str = device_param()


class ELSAModel(TorchModel):
    """ELSA (Vančura et al. 2022): unit item vectors ``A``; users ``x A``; scores
    ``x A A^T`` over the items a user has not seen."""

    name = "elsa"
    Params = ELSAParams

    def fit_torch(self, train: InteractionMatrix, dataset: Dataset | None,
                  device: Any) -> Self:
        import torch

        p = self.p
        x = train.binary()
        n_users, n_items = x.shape
        weights = torch.empty(n_items, p.dim, device=device)
        torch.nn.init.kaiming_uniform_(weights)
        weights = torch.nn.Parameter(weights)
        opt = torch.optim.Adam([weights], lr=p.lr)
        rows = x.tocsr()

        def batch_loss(idx: Any) -> Any:
            chunk = rows[idx.cpu().numpy()]
            dense = torch.as_tensor(chunk.toarray(), device=device)
            a = torch.nn.functional.normalize(weights, dim=-1)
            scores = (dense @ a) @ a.T - dense
            return (torch.nn.functional.normalize(scores, dim=-1)
                    - torch.nn.functional.normalize(dense, dim=-1)).pow(2).sum(-1).mean()

        self.history = self.train_loop(None, opt, device, n_users, batch_loss, p.epochs,
                                  p.batch_size, "elsa")
        with torch.no_grad():
            a = torch.nn.functional.normalize(weights, dim=-1).cpu().numpy()
        a = np.ascontiguousarray(a, dtype=np.float32)
        self.item_embeddings = Embeddings(train.items.ids, a, "item", item_metadata(dataset))
        self.user_embeddings = Embeddings(train.users.ids, spmm(x, a), "user")
        return self
