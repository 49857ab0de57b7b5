"""PyTorch modules for the learned-embedding models (imported only when one trains)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class Towers(nn.Module):
    """User tower: id embedding. Item tower: id embedding plus the mean of its genres'."""

    def __init__(self, n_users: int, n_items: int, dim: int, genre_bags=None, n_genres: int = 0):
        super().__init__()
        self.n_items = n_items
        self.user_id = nn.Embedding(n_users, dim)
        self.item_id = nn.Embedding(n_items, dim)
        nn.init.normal_(self.user_id.weight, std=0.05)
        nn.init.normal_(self.item_id.weight, std=0.05)
        self.genres = None
        if genre_bags is not None and n_genres:
            flat, offsets = genre_bags
            self.genres = nn.EmbeddingBag(n_genres, dim, mode="mean")
            nn.init.normal_(self.genres.weight, std=0.05)
            self.register_buffer("flat", torch.as_tensor(flat))
            self.register_buffer("offsets", torch.as_tensor(offsets))
            lengths = np.diff(np.append(offsets, flat.size))
            self.register_buffer("has_genre", torch.as_tensor(lengths > 0)[:, None].float())

    def users(self, u: torch.Tensor) -> torch.Tensor:
        return self.user_id(u)

    def items(self, i: torch.Tensor) -> torch.Tensor:
        v = self.item_id(i)
        if self.genres is not None:
            # every item's genre vector at once (cheap: one bag per item), then pick the batch
            v = v + (self.genres(self.flat, self.offsets) * self.has_genre)[i]
        return v

    @torch.no_grad()
    def export(self) -> tuple[np.ndarray, np.ndarray]:
        """All user and item vectors as float32 arrays."""
        self.eval()
        u = self.user_id.weight.detach()
        i = self.items(torch.arange(self.n_items, device=u.device)).detach()
        return u.cpu().numpy().astype(np.float32), i.cpu().numpy().astype(np.float32)


class RatingNet(nn.Module):
    """rating = mean + b_u + b_i + f(u, i): ``dot`` (u·i), ``mlp`` (MLP on u ⊙ i, the Keras
    tutorial's dot-then-dense) or ``concat`` (MLP on [u, i])."""

    def __init__(self, n_users: int, n_items: int, dim: int, mean: float, head: str,
                 hidden: int = 64):
        super().__init__()
        self.head = head
        self.user = nn.Embedding(n_users, dim)
        self.item = nn.Embedding(n_items, dim)
        self.user_bias = nn.Embedding(n_users, 1)
        self.item_bias = nn.Embedding(n_items, 1)
        for emb in (self.user, self.item):
            nn.init.normal_(emb.weight, std=0.05)
        for emb in (self.user_bias, self.item_bias):
            nn.init.zeros_(emb.weight)
        self.mean = mean
        width = 2 * dim if head == "concat" else dim
        self.mlp = None
        if head in ("mlp", "concat"):
            self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, u: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        pu, qi = self.user(u), self.item(i)
        if self.head == "dot":
            inter = (pu * qi).sum(-1)
        elif self.head == "mlp":
            inter = self.mlp(pu * qi).squeeze(-1)
        else:
            inter = self.mlp(torch.cat([pu, qi], -1)).squeeze(-1)
        return self.mean + self.user_bias(u).squeeze(-1) + self.item_bias(i).squeeze(-1) + inter
