"""The two-tower retrieval model: a user tower and an item tower (id + genre bag)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
import polars as pl

from embedlens.core.embeddings import Embeddings
from embedlens.core.interactions import InteractionMatrix
from embedlens.core.params import param
from embedlens.data.dataset import Dataset
from embedlens.kernels.metrics import ranking_report
from embedlens.kernels.topk import dot_scorer, topk
from embedlens.methods.base import item_metadata
from embedlens.methods.training import (
    TorchModel,
    TrainingParams,
    holdout,
)


def _genre_bags(train: InteractionMatrix, dataset: Dataset | None):
    """Per-item genre ids as (flat ids, offsets) for EmbeddingBag; None without genres."""
    if dataset is None or dataset.items is None:
        return None, 0
    items = pl.DataFrame({"item_id": train.items.ids}).join(
        dataset.items.select("item_id", "genres"), on="item_id", how="left", maintain_order="left"
    )
    genres = items["genres"].fill_null([])
    vocab = sorted(set(genres.explode().drop_nulls().to_list()))
    if not vocab:
        return None, 0
    index = {g: k for k, g in enumerate(vocab)}
    lists = [[index[g] for g in row] for row in genres.to_list()]
    flat = np.array([g for row in lists for g in row], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum([len(r) for r in lists])[:-1]]).astype(np.int64)
    return (flat, offsets), len(vocab)


@dataclass(frozen=True)
class TwoTowerParams(TrainingParams):
    owner: ClassVar[str] = "two-tower"
    dim: int = param(64, "vector dimension", ge=1, log=True, tune=(16, 128))
    loss: str = param("bce", "bce with sampled negatives, or in-batch softmax with logQ "
                      "correction", choices=("bce", "softmax"), tune=True)
    negatives: int = param(10, "sampled negatives per positive (bce)", ge=1, log=True,
                           tune=(2, 50))
    sampler: str = param("uniform", "how negatives are drawn (bce)",
                         choices=("uniform", "popularity"))
    temperature: float = param(0.1, "softmax temperature", gt=0)
    features: bool = param(True, "add the genre bag to the item tower", tune=True)


class TwoTowerModel(TorchModel):
    """User tower (id embedding) and item tower (id + genre bag), scored by dot product.

    ``loss="bce"`` (default, best on ML-100k): binary cross-entropy against ``negatives``
    sampled items per positive, drawn by ``sampler`` "uniform" or "popularity"
    (unigram^0.75). ``loss="softmax"``: in-batch sampled softmax with logQ correction (the
    batch's other positives are the negatives; subtracting log popularity removes their
    popularity bias). Early stopping on NDCG@10 of a validation split carved from train
    (``val_fraction`` of each user's items).
    """

    name = "two-tower"
    Params = TwoTowerParams

    def fit_torch(self, train: InteractionMatrix, dataset: Dataset | None,
                  device: Any) -> Self:
        import torch

        p = self.p
        fit_m, val_m = holdout(train.binary(), p.val_fraction, p.seed)
        coo = fit_m.tocoo()
        users_t = torch.as_tensor(coo.row, dtype=torch.long, device=device)
        items_t = torch.as_tensor(coo.col, dtype=torch.long, device=device)
        n_users, n_items = train.shape
        pop = np.asarray(fit_m.sum(axis=0)).ravel() + 1.0
        log_q = torch.as_tensor(np.log(pop / pop.sum()), dtype=torch.float32, device=device)
        neg_p = torch.as_tensor(pop**0.75 if p.sampler == "popularity" else np.ones_like(pop),
                                dtype=torch.float32, device=device)
        bags, n_genres = _genre_bags(train, dataset) if p.features else (None, 0)
        from embedlens.methods.two_tower.net import Towers

        net = Towers(n_users, n_items, p.dim, bags, n_genres).to(device)
        opt = torch.optim.Adam(net.parameters(), lr=p.lr, weight_decay=p.weight_decay)
        val_users = np.flatnonzero(np.diff(val_m.indptr) > 0)

        def batch_loss(idx):
            u, i = users_t[idx], items_t[idx]
            uv, iv = net.users(u), net.items(i)
            if p.loss == "softmax":
                logits = (uv @ iv.T) / p.temperature - log_q[i][None, :]
                # the same item twice in a batch is a positive, not a negative
                same = (i[None, :] == i[:, None]) & ~torch.eye(
                    i.numel(), dtype=torch.bool, device=device)
                return torch.nn.functional.cross_entropy(
                    logits.masked_fill(same, -1e9), torch.arange(i.numel(), device=device))
            k = p.negatives
            neg = torch.multinomial(neg_p, i.numel() * k, replacement=True).view(-1, k)
            pos_s = (uv * iv).sum(-1)
            neg_s = (uv[:, None, :] * net.items(neg)).sum(-1)
            return torch.nn.functional.binary_cross_entropy_with_logits(
                torch.cat([pos_s[:, None], neg_s], 1),
                torch.cat([torch.ones_like(pos_s[:, None]), torch.zeros_like(neg_s)], 1))

        self.history = self.train_loop(
            net, opt, device, users_t.numel(), batch_loss, p.epochs, p.batch_size, "two-tower",
            lambda: self._validate(net, fit_m, val_m, val_users), "val_ndcg@10",
            higher_is_better=True, patience=p.patience,
        )
        u_vec, i_vec = net.export()
        self.item_embeddings = Embeddings(train.items.ids, i_vec, "item", item_metadata(dataset))
        self.user_embeddings = Embeddings(train.users.ids, u_vec, "user")
        return self

    @staticmethod
    def _validate(net, fit_m, val_m, val_users) -> float:
        if val_users.size == 0:
            return 0.0
        u_vec, i_vec = net.export()
        recs, _ = topk(dot_scorer(u_vec, i_vec), val_users, i_vec.shape[0], 10, fit_m,
                       desc="validate")
        return ranking_report(recs, val_m[val_users], i_vec.shape[0])["ndcg@10"]
