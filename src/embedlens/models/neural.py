"""Learned embeddings in PyTorch: a two-tower retrieval model and rating regression.

Both train with mini-batches cut from index tensors (``torch.randperm`` slices, no per-sample
``Dataset``), stop early on a validation split carved from train, record the loss per epoch in
``history`` and run on a GPU when ``device`` is ``"auto"`` (default) and one is present.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
import polars as pl
import scipy.sparse as sp

from embedlens.data.dataset import Dataset
from embedlens.embeddings import Embeddings
from embedlens.errors import DataError
from embedlens.io.files import load_arrays, save_arrays
from embedlens.metrics import ranking_report
from embedlens.models.base import (
    EmbeddingModel,
    EmbeddingParams,
    device_param,
    item_metadata,
    seed_param,
)
from embedlens.params import param
from embedlens.prep.encoding import InteractionMatrix
from embedlens.progress import bar
from embedlens.topk import dot_scorer, topk


def torch_device(name: str):
    """``"auto"``: CUDA when available, else CPU."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DataError("device='cuda' but torch sees no GPU.")
    return torch.device(name)


def holdout(
    matrix: sp.csr_matrix, fraction: float, seed: int
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Split a users x items matrix into fit and validation parts, a random ``fraction`` of
    each user's entries (users with a single entry keep it for fitting)."""
    coo = matrix.tocoo()
    rng = np.random.default_rng(seed)
    val = rng.random(coo.nnz) < fraction
    counts = np.bincount(coo.row, minlength=matrix.shape[0])
    val &= counts[coo.row] > 1

    def part(mask: np.ndarray) -> sp.csr_matrix:
        return sp.csr_matrix((coo.data[mask], (coo.row[mask], coo.col[mask])), shape=matrix.shape)
    return part(~val), part(val)


def train_epoch(n_rows: int, batch_size: int, device, opt, batch_loss) -> float:
    """One pass over ``n_rows`` training rows in random mini-batches (index slices of one
    ``randperm``): ``batch_loss(idx)`` gives each batch's loss; returns the mean loss."""
    import torch

    perm = torch.randperm(n_rows, device=device)
    total = 0.0
    for start in range(0, n_rows, batch_size):
        idx = perm[start : start + batch_size]
        loss = batch_loss(idx)
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += float(loss.detach()) * idx.numel()
    return total / max(1, n_rows)


class EarlyStopping:
    """Keeps the best network state by a validation score; says when to stop."""

    def __init__(self, patience: int, higher_is_better: bool) -> None:
        self.patience, self.sign = patience, 1.0 if higher_is_better else -1.0
        self.best, self.state, self.waited = -np.inf, None, 0

    def update(self, score: float, net) -> bool:
        """Record an epoch's score; True when ``patience`` epochs passed without a gain."""
        if self.sign * score > self.best:
            self.best, self.state, self.waited = self.sign * score, copy.deepcopy(
                net.state_dict()), 0
            return False
        self.waited += 1
        return self.waited >= self.patience

    def restore(self, net) -> None:
        net.load_state_dict(self.state)


def fit_with_early_stopping(
    net, opt, device, n_rows: int, batch_loss, validate, val_key: str,
    higher_is_better: bool, params: Any, desc: str,
) -> dict[str, list[float]]:
    """Up to ``params.epochs`` epochs of :func:`train_epoch`, each followed by
    ``validate()``; stops after ``params.patience`` epochs without a gain and leaves
    ``net`` at its best epoch. Returns the history (``loss`` and ``val_key`` per epoch)."""
    stopper = EarlyStopping(params.patience, higher_is_better)
    history: dict[str, list[float]] = {"loss": [], val_key: []}
    pb = bar(desc, total=params.epochs, unit="epoch")
    for _ in range(params.epochs):
        net.train()
        history["loss"].append(
            train_epoch(n_rows, params.batch_size, device, opt, batch_loss))
        score = validate()
        history[val_key].append(score)
        pb.update(1)
        if stopper.update(score, net):
            break
    pb.close()
    stopper.restore(net)
    return history


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
class TrainingParams(EmbeddingParams):
    """What the torch models with early stopping share."""

    epochs: int = param(30, "most passes over the train rows", ge=1)
    batch_size: int = param(1024, "rows per mini-batch", ge=1)
    lr: float = param(5e-3, "Adam learning rate", gt=0, log=True)
    weight_decay: float = param(0.0, "L2 weight decay", ge=0)
    val_fraction: float = param(0.1, "share of each user's train rows held out for early "
                                "stopping", gt=0, lt=1)
    patience: int = param(3, "epochs without a validation gain before stopping", ge=1)
    seed: int = seed_param()
    device: str = device_param()


@dataclass(frozen=True)
class TwoTowerParams(TrainingParams):
    owner: ClassVar[str] = "two-tower"
    dim: int = param(64, "vector dimension", ge=1)
    loss: str = param("bce", "bce with sampled negatives, or in-batch softmax with logQ "
                      "correction", choices=("bce", "softmax"))
    negatives: int = param(10, "sampled negatives per positive (bce)", ge=1)
    sampler: str = param("uniform", "how negatives are drawn (bce)",
                         choices=("uniform", "popularity"))
    temperature: float = param(0.1, "softmax temperature", gt=0)
    features: bool = param(True, "add the genre bag to the item tower")


class TwoTowerModel(EmbeddingModel):
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

    def fit(self, train: InteractionMatrix, dataset: Dataset | None = None) -> Self:
        import torch

        p = self.p
        torch.manual_seed(p.seed)
        device = torch_device(p.device)
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
        from embedlens.models.nets import Towers

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

        self.history = fit_with_early_stopping(
            net, opt, device, users_t.numel(), batch_loss,
            lambda: self._validate(net, fit_m, val_m, val_users), "val_ndcg@10",
            higher_is_better=True, params=p, desc="two-tower",
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


@dataclass(frozen=True)
class RatingParams(TrainingParams):
    owner: ClassVar[str] = "rating-mf"
    dim: int = param(32, "vector dimension", ge=1)
    head: str = param("dot", "rating = biases + dot(u, i), an MLP on u * i, or an MLP on "
                      "[u, i]", choices=("dot", "mlp", "concat"))
    epochs: int = param(50, "most passes over the train rows", ge=1)
    batch_size: int = param(512, "rows per mini-batch", ge=1)
    weight_decay: float = param(1e-4, "AdamW weight decay", ge=0)


class RatingModel(EmbeddingModel):
    """Rating regression (the Keras tutorial's model): user and movie embeddings with biases,
    ``head`` "mlp" (dense layers on u ⊙ i), "concat" (dense layers on [u, i]) or "dot";
    MSE loss, weight decay, early stopping on the RMSE of a validation split from train.
    The learned user and movie vectors are exported and ranked by dot product like any
    method's (the biases are not part of that ranking)."""

    name = "rating-mf"
    Params = RatingParams

    def fit(self, train: InteractionMatrix, dataset: Dataset | None = None) -> Self:
        import torch

        from embedlens.models.nets import RatingNet

        p = self.p
        torch.manual_seed(p.seed)
        device = torch_device(p.device)
        fit_m, val_m = holdout(train.ratings, p.val_fraction, p.seed)

        def tensors(m: sp.csr_matrix):
            c = m.tocoo()
            return (torch.as_tensor(c.row, dtype=torch.long, device=device),
                    torch.as_tensor(c.col, dtype=torch.long, device=device),
                    torch.as_tensor(c.data, dtype=torch.float32, device=device))

        (u, i, r), (vu, vi, vr) = tensors(fit_m), tensors(val_m)
        mean = float(r.mean())
        net = RatingNet(*train.shape, p.dim, mean, p.head).to(device)
        opt = torch.optim.AdamW(net.parameters(), lr=p.lr, weight_decay=p.weight_decay)

        def batch_loss(idx):
            return torch.nn.functional.mse_loss(net(u[idx], i[idx]), r[idx])

        def validate() -> float:
            net.eval()
            with torch.no_grad():
                return float(torch.sqrt(torch.nn.functional.mse_loss(net(vu, vi), vr))) \
                    if vu.numel() else 0.0

        self.history = fit_with_early_stopping(
            net, opt, device, u.numel(), batch_loss, validate, "val_rmse",
            higher_is_better=False, params=p, desc="rating-mf",
        )
        self.global_mean = mean
        self.item_embeddings = Embeddings(
            train.items.ids, net.item.weight.detach().cpu().numpy(), "item",
            item_metadata(dataset),
        )
        self.user_embeddings = Embeddings(
            train.users.ids, net.user.weight.detach().cpu().numpy(), "user"
        )
        self._net = net.cpu()
        return self

    def _save_state(self, directory) -> None:
        super()._save_state(directory)
        state = {k: v.detach().cpu().numpy() for k, v in self._net.state_dict().items()}
        save_arrays(directory / "rating_net.npz", global_mean=np.array(self.global_mean),
                    **state)

    def _load_state(self, directory) -> None:
        import torch

        from embedlens.models.nets import RatingNet

        super()._load_state(directory)
        path = directory / "rating_net.npz"
        arrays = load_arrays(path, ("global_mean",), "rating network")
        self.global_mean = float(arrays.pop("global_mean"))
        if self.user_embeddings is None:
            raise DataError(f"{directory} has no users.parquet; the rating-mf run is "
                            "incomplete.")
        net = RatingNet(len(self.user_embeddings), len(self.item_embeddings),
                        self.item_embeddings.dim, self.global_mean, self.p.head)
        try:
            net.load_state_dict({k: torch.as_tensor(v) for k, v in arrays.items()})
        except RuntimeError as exc:
            raise DataError(f"{path} does not match the run's model ({str(exc)[:120]}).") \
                from None
        self._net = net.eval()

    def predict_ratings(self, user_ids: np.ndarray, item_ids: np.ndarray) -> np.ndarray:
        """Predicted ratings for (user, item) id pairs; unknown ids get the global mean
        (plus whichever bias is known)."""
        import torch

        if getattr(self, "_net", None) is None:
            raise DataError("rating-mf: no trained network in memory; fit the model first.")
        users = self.user_embeddings.positions(np.asarray(user_ids))
        items = self.item_embeddings.positions(np.asarray(item_ids))
        known = (users >= 0) & (items >= 0)
        out = np.full(users.shape, self.global_mean, dtype=np.float64)
        with torch.no_grad():
            pred = self._net(torch.as_tensor(users[known]), torch.as_tensor(items[known]))
        out[known] = pred.numpy()
        return out
