"""The rating network in torch (imported only when the model trains or loads)."""

from __future__ import annotations

import torch
from torch import nn


class RatingNet(nn.Module):
    """rating = mean + b_u + b_i + f(u, i): ``dot`` (u·i), ``mlp`` (MLP on u ⊙ i, the Keras
    tutorial's dot-then-dense) or ``concat`` (MLP on [u, i])."""

    def __init__(self, n_users: int, n_items: int, dim: int, mean: float, head: str,
                 hidden: int = 64, sparse: tuple[bool, bool] = (False, False)):
        super().__init__()
        self.head = head
        # sparse: whether the user and item tables hand sparse gradients (RowAdam)
        self.user = nn.Embedding(n_users, dim, sparse=sparse[0])
        self.item = nn.Embedding(n_items, dim, sparse=sparse[1])
        self.user_bias = nn.Embedding(n_users, 1, sparse=sparse[0])
        self.item_bias = nn.Embedding(n_items, 1, sparse=sparse[1])
        for emb in (self.user, self.item):
            nn.init.normal_(emb.weight, std=0.05)
        for emb in (self.user_bias, self.item_bias):
            nn.init.zeros_(emb.weight)
        self.mean = mean
        width = 2 * dim if head == "concat" else dim
        self.mlp: nn.Module | None = None
        if head in ("mlp", "concat"):
            self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, u: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        pu, qi = self.user(u), self.item(i)
        if self.mlp is None:  # head "dot"
            inter = (pu * qi).sum(-1)
        elif self.head == "mlp":
            inter = self.mlp(pu * qi).squeeze(-1)
        else:
            inter = self.mlp(torch.cat([pu, qi], -1)).squeeze(-1)
        return self.mean + self.user_bias(u).squeeze(-1) + self.item_bias(i).squeeze(-1) + inter
