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
    negative_sampler,
    padded_slots,
    shared_pool,
    sparse_gradients,
    validation_users,
)


def _genre_slots(train: InteractionMatrix, dataset: Dataset | None):
    """Per-item genre ids as an items x slots matrix padded with the vocabulary size, and
    the vocabulary size; (None, 0) without genres."""
    if dataset is None or dataset.items is None:
        return None, 0
    items = pl.DataFrame({"item_id": train.items.ids}).join(
        dataset.items.select("item_id", "genres"), on="item_id", how="left", maintain_order="left"
    )
    genres = items["genres"].fill_null([])
    vocab = sorted(set(genres.explode().drop_nulls().to_list()))
    if not vocab:
        return None, 0
    return padded_slots(genres.to_list(), {g: k for k, g in enumerate(vocab)}), len(vocab)


@dataclass(frozen=True)
class TwoTowerParams(TrainingParams):
    owner: ClassVar[str] = "two-tower"
    dim: int = param(64, "vector dimension", ge=1, log=True, tune=(16, 128))
    loss: str = param("bce", "bce with sampled negatives, or in-batch softmax with logQ "
                      "correction", choices=("bce", "softmax"), tune=True)
    negatives: int = param(10, "sampled negatives per positive (bce; on a large catalogue, "
                           "their weight in a pool the batch shares)", ge=1, log=True,
                           tune=(2, 50))
    sampler: str = param("uniform", "how negatives are drawn (bce)",
                         choices=("uniform", "popularity"))
    temperature: float = param(0.1, "softmax temperature", gt=0)
    features: bool = param(True, "add the genre bag to the item tower", tune=True)


class TwoTowerModel(TorchModel):
    """User tower (id embedding) and item tower (id + genre bag), scored by dot product.

    ``loss="bce"`` (default, best on ML-100k): binary cross-entropy against ``negatives``
    sampled items' worth per positive, drawn by ``sampler`` "uniform" or "popularity"
    (unigram^0.75); on a catalogue much larger than a batch's draws, as one pool every row
    of the batch scores (``shared_pool``: the same expected loss, far fewer rows).
    ``loss="softmax"``: in-batch sampled softmax with logQ correction (the batch's other
    positives are the negatives; subtracting log popularity removes their
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
        draw = negative_sampler(pop**0.75 if p.sampler == "popularity" else None, n_items,
                                device)
        slots, n_genres = _genre_slots(train, dataset) if p.features else (None, 0)
        from embedlens.methods.row_adam import RowAdam
        from embedlens.methods.two_tower.net import Towers

        # a large catalogue (a batch's per-row negatives touch under half of it) gets
        # shared negatives and sparse item gradients; a small one per-row draws, dense
        shared = p.loss == "bce" and sparse_gradients(n_items,
                                                       p.batch_size * (1 + p.negatives))
        items_per_batch = p.batch_size * (1 if p.loss == "softmax" else 1 + p.negatives)
        if shared:
            items_per_batch = p.batch_size + shared_pool(p.batch_size, p.negatives)
        net = Towers(n_users, n_items, p.dim, slots, n_genres,
                     (sparse_gradients(n_users, p.batch_size),
                      sparse_gradients(n_items, items_per_batch))).to(device)
        opt = RowAdam(net.parameters(), lr=p.lr, weight_decay=p.weight_decay)
        val_users = validation_users(val_m, p.seed)

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
            pos_s = (uv * iv).sum(-1)
            if shared:
                # every row scores one pool of negatives shared by the batch, each weighted
                # so that a positive faces `negatives` negatives' worth: the same expected
                # loss, touching B + pool item rows instead of B x (1 + negatives)
                pool = shared_pool(i.numel(), k)
                neg_s = uv @ net.items(draw(pool)).T
                weight = k / pool
            else:
                neg_s = (uv[:, None, :] * net.items(draw(i.numel() * k).view(-1, k))).sum(-1)
                weight = 1.0
            softplus = torch.nn.functional.softplus  # BCE: -log s(pos), -log(1 - s(neg))
            return (softplus(-pos_s).sum() + weight * softplus(neg_s).sum()) / (
                i.numel() * (1 + k))

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
