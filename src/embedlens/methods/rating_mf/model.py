"""Rating regression (the Keras tutorial's model): user and movie embeddings with biases."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from embedlens.core.embeddings import Embeddings
from embedlens.core.errors import DataError
from embedlens.core.interactions import InteractionMatrix
from embedlens.core.params import param
from embedlens.data.dataset import Dataset
from embedlens.methods.base import item_metadata
from embedlens.methods.training import (
    TorchModel,
    TrainingParams,
    holdout,
    load_network,
    network_arrays,
    save_network,
    sparse_gradients,
)

NET_FILE = "rating_net.npz"


@dataclass(frozen=True)
class RatingParams(TrainingParams):
    owner: ClassVar[str] = "rating-mf"
    dim: int = param(32, "vector dimension", ge=1, log=True, tune=(8, 128))
    head: str = param("dot", "rating = biases + dot(u, i), an MLP on u * i, or an MLP on "
                      "[u, i]", choices=("dot", "mlp", "concat"))
    epochs: int = param(50, "most passes over the train rows", ge=1)
    batch_size: int = param(512, "rows per mini-batch", ge=1, log=True, tune=(128, 4096))
    weight_decay: float = param(1e-4, "decoupled weight decay (AdamW), on the rows a "
                                "batch touches", ge=0, log=True,
                                tune=(1e-6, 1e-2))


class RatingModel(TorchModel):
    """Rating regression (the Keras tutorial's model): user and movie embeddings with biases,
    ``head`` "mlp" (dense layers on u ⊙ i), "concat" (dense layers on [u, i]) or "dot";
    MSE loss, weight decay, early stopping on the RMSE of a validation split from train.
    The learned user and movie vectors are exported and ranked by dot product like any
    method's (the biases are not part of that ranking)."""

    name = "rating-mf"
    Params = RatingParams

    def fit_torch(self, train: InteractionMatrix, dataset: Dataset | None,
                  device: Any) -> Self:
        import torch

        from embedlens.methods.rating_mf.net import RatingNet
        from embedlens.methods.row_adam import RowAdam

        p = self.p
        fit_m, val_m = holdout(train.ratings, p.val_fraction, p.seed)

        def tensors(m: sp.csr_matrix):
            c = m.tocoo()
            return (torch.as_tensor(c.row, dtype=torch.long, device=device),
                    torch.as_tensor(c.col, dtype=torch.long, device=device),
                    torch.as_tensor(c.data, dtype=torch.float32, device=device))

        (u, i, r), (vu, vi, vr) = tensors(fit_m), tensors(val_m)
        mean = float(r.mean())
        sparse = (sparse_gradients(train.shape[0], p.batch_size),
                  sparse_gradients(train.shape[1], p.batch_size))
        net = RatingNet(*train.shape, p.dim, mean, p.head, sparse=sparse).to(device)
        opt = RowAdam(net.parameters(), lr=p.lr, weight_decay=p.weight_decay)

        def batch_loss(idx):
            return torch.nn.functional.mse_loss(net(u[idx], i[idx]), r[idx])

        def validate() -> float:
            net.eval()
            with torch.no_grad():
                return float(torch.sqrt(torch.nn.functional.mse_loss(net(vu, vi), vr))) \
                    if vu.numel() else 0.0

        self.history = self.train_loop(
            net, opt, device, u.numel(), batch_loss, p.epochs, p.batch_size, "rating-mf",
            validate, "val_rmse", higher_is_better=False, patience=p.patience,
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

    def _save_state(self, directory: Path) -> None:
        super()._save_state(directory)
        save_network(directory / NET_FILE, self._net, global_mean=np.array(self.global_mean))

    def _load_state(self, directory: Path) -> None:
        from embedlens.methods.rating_mf.net import RatingNet

        super()._load_state(directory)
        path = directory / NET_FILE
        arrays = network_arrays(path, "rating network", ("global_mean",))
        self.global_mean = float(arrays.pop("global_mean"))
        if self.user_embeddings is None or self.item_embeddings is None:
            raise DataError(f"{directory} has no users.parquet; the rating-mf run is "
                            "incomplete.")
        net = RatingNet(len(self.user_embeddings), len(self.item_embeddings),
                        self.item_embeddings.dim, self.global_mean, self.p.head)
        self._net = load_network(path, net, arrays)

    def predict_ratings(self, user_ids: np.ndarray, item_ids: np.ndarray) -> np.ndarray:
        """Predicted ratings for (user, item) id pairs; unknown ids get the global mean
        (plus whichever bias is known)."""
        import torch

        if getattr(self, "_net", None) is None or self.user_embeddings is None \
                or self.item_embeddings is None:
            raise DataError("rating-mf: no trained network in memory; fit the model first.")
        users = self.user_embeddings.positions(np.asarray(user_ids))
        items = self.item_embeddings.positions(np.asarray(item_ids))
        known = (users >= 0) & (items >= 0)
        out = np.full(users.shape, self.global_mean, dtype=np.float64)
        with torch.no_grad():
            pred = self._net(torch.as_tensor(users[known]), torch.as_tensor(items[known]))
        out[known] = pred.numpy()
        return out
