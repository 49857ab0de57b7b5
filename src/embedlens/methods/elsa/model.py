"""ELSA: the scalable linear shallow autoencoder (Vančura, Alves, Kasalický, Kordík, RecSys
2022).

One item matrix ``A`` (items x dim) with unit-length rows; a user's interactions ``x``
(a 0/1 row) are scored ``x A A^T - x``: a low-rank relative of EASE whose ``- x`` plays the
part of EASE's zero diagonal, so it scales to catalogues EASE cannot hold in memory. Trained
with Adam on mini-batches of users, on the normalised squared error between the scores and
``x`` (both rows scaled to unit length), as in the authors' code. The vectors it hands out:
items ``A``, users ``x A`` (and ``x A . a_i`` is the score up to the ``- x`` term, which only
touches the user's own items, never recommended anyway).

The loss never forms the batch x items score matrix: with ``z = x A``, ``c`` the user's
item count (``x`` is 0/1) and
``G = A^T A``, the scores ``s = z A^T - x`` have ``|s|^2 = z G z^T - 2|z|^2 + c`` and
``s . x = |z|^2 - c``, so the normalised error ``2 - 2 (s . x) / (|s| sqrt(c))`` costs
``nnz(x) dim + items dim^2`` a step instead of ``batch x items x dim``: at ML-25M scale
(59k items) a 20th of an epoch's work, the same loss to rounding.
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
    batch_size: int | None = param(None, "users per mini-batch (default: 256, or more on a "
                                   "large log so that an epoch is at most 32 steps: each "
                                   "step costs items x dim^2 whatever its size)", ge=1)
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

        from embedlens.methods.elsa.ops import Gram, UnitRows

        p = self.p
        x = train.binary()
        n_users, n_items = x.shape
        weights = torch.empty(n_items, p.dim, device=device)
        torch.nn.init.kaiming_uniform_(weights)
        weights = torch.nn.Parameter(weights)
        opt = torch.optim.Adam([weights], lr=p.lr, fused=True)  # one pass over the table
        rows = x.tocsr()

        def batch_loss(idx: Any) -> Any:
            chunk = rows[idx.cpu().numpy()]
            a = UnitRows.apply(weights)
            z = torch.nn.functional.embedding_bag(
                torch.as_tensor(chunk.indices, dtype=torch.long, device=device), a,
                torch.as_tensor(chunk.indptr[:-1], dtype=torch.long, device=device), mode="sum")
            counts = torch.as_tensor(np.diff(chunk.indptr), dtype=a.dtype, device=device)
            return normalised_error(z, Gram.apply(a), counts)

        self.history = self.train_loop(None, opt, device, n_users, batch_loss, p.epochs,
                                       batch_users(p.batch_size, n_users), "elsa")
        with torch.no_grad():
            a = torch.nn.functional.normalize(weights, dim=-1).cpu().numpy()
        a = np.ascontiguousarray(a, dtype=np.float32)
        self.item_embeddings = Embeddings(train.items.ids, a, "item", item_metadata(dataset))
        self.user_embeddings = Embeddings(train.users.ids, spmm(x, a), "user")
        return self


#: Steps an epoch takes at most when ``batch_size`` is left to ELSA (see ELSAParams). At
#: the ML-25M shape 32 fit in 162 s against 64's 239 s, at NDCG@10 0.2831 against 0.2853
#: (docs/benchmarks.md); up to 8,192 users the batch is 256 either way.
MAX_STEPS = 32


def batch_users(batch_size: int | None, n_users: int) -> int:
    """The users per step: ``batch_size`` when given, else 256 or ``n_users / MAX_STEPS``,
    whichever is larger."""
    return batch_size if batch_size is not None else max(256, -(-n_users // MAX_STEPS))


def normalised_error(z: Any, gram: Any, counts: Any) -> Any:
    """The mean over users of ``|s/|s| - x/|x||^2`` for ``s = x A A^T - x``, from ``z = x A``
    (users x dim), ``gram = A^T A`` and ``counts`` (each user's item count) alone (module
    docstring); a user with no items counts 0, as the dense form gives. The per-user sums
    are combined in float64: ``|s|^2`` is a difference of terms of the size of ``c``."""
    zz = (z * z).sum(-1).double()
    c = counts.double()
    s_sq = ((z @ gram) * z).sum(-1).double() - 2 * zz + c
    cosine = (zz - c) / (s_sq.clamp_min(1e-24).sqrt() * c.clamp_min(1).sqrt())
    return (2 - 2 * cosine).masked_fill(c == 0, 0.0).mean().to(z.dtype)
