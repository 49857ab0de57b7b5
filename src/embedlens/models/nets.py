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


class EGESNet(nn.Module):
    """Item id + side-information fields, combined with softmax weights (per item or per
    field); a separate context table for skip-gram. Each field is a padded item x slots
    index matrix (pad = the extra last row), so a batch pools only its own items."""

    def __init__(self, n_items: int, dim: int, field_sizes: dict[str, int],
                 slots: dict[str, np.ndarray], per_item: bool = True):
        super().__init__()
        self.fields = list(field_sizes)
        self.item_id = nn.Embedding(n_items, dim)
        self.ctx = nn.Embedding(n_items, dim)
        nn.init.uniform_(self.item_id.weight, -0.5 / dim, 0.5 / dim)
        nn.init.zeros_(self.ctx.weight)
        self.side = nn.ModuleDict({
            f: nn.Embedding(size + 1, dim, padding_idx=size) for f, size in field_sizes.items()
        })
        for f, emb in self.side.items():
            nn.init.uniform_(emb.weight, -0.5 / dim, 0.5 / dim)
            with torch.no_grad():
                emb.weight[field_sizes[f]].zero_()
            self.register_buffer(f"slots_{f}", torch.as_tensor(slots[f], dtype=torch.long))
        self.logits = nn.Parameter(torch.zeros(n_items if per_item else 1, 1 + len(self.fields)))

    def _pooled(self, f: str, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        idx = getattr(self, f"slots_{f}")[items]  # batch x slots
        count = (idx != self.side[f].padding_idx).sum(1, keepdim=True)
        pooled = self.side[f](idx).sum(1) / count.clamp(min=1)
        return pooled, count.squeeze(1) > 0

    def embed(self, items: torch.Tensor) -> torch.Tensor:
        """H_v = sum_j softmax(a_v)_j W_j(v) over the fields the item has."""
        parts = [self.item_id(items)]
        present = [torch.ones_like(items, dtype=torch.bool)]
        for f in self.fields:
            pooled, has = self._pooled(f, items)
            parts.append(pooled)
            present.append(has)
        stacked = torch.stack(parts, 1)  # batch x fields x dim
        logits = self.logits[items] if self.logits.shape[0] > 1 else self.logits.expand(
            items.numel(), -1)
        logits = logits.masked_fill(~torch.stack(present, 1), float("-inf"))
        return (torch.softmax(logits, dim=1)[:, :, None] * stacked).sum(1)

    def context(self, items: torch.Tensor) -> torch.Tensor:
        return self.ctx(items)

    @torch.no_grad()
    def export(self) -> np.ndarray:
        return self.embed(torch.arange(self.item_id.num_embeddings)).numpy().astype(np.float32)

    @torch.no_grad()
    def field_weights(self) -> dict[str, float]:
        w = torch.softmax(self.logits, dim=1).mean(0).numpy()
        return dict(zip(["id", *self.fields], map(float, w), strict=True))

    @torch.no_grad()
    def coldstart(self, ids: dict[str, list[int]]) -> np.ndarray:
        """Side-information fields only, weighted by the average learned field weights."""
        mean_logits = self.logits.mean(0)
        parts, logits = [], []
        for k, f in enumerate(self.fields, start=1):
            if ids.get(f):
                parts.append(self.side[f].weight[torch.as_tensor(ids[f])].mean(0))
                logits.append(mean_logits[k])
        weights = torch.softmax(torch.stack(logits), 0)
        return (weights[:, None] * torch.stack(parts)).sum(0).numpy().astype(np.float32)
