"""The EGES network in torch (imported only when the model trains or loads)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class EGESNet(nn.Module):
    """Item id + side-information fields, combined with softmax weights (per item or per
    field); a separate context table for skip-gram. Each field is a padded item x slots
    index matrix (pad = the extra last row), so a batch pools only its own items."""

    def __init__(self, n_items: int, dim: int, field_sizes: dict[str, int],
                 slots: dict[str, np.ndarray], per_item: bool = True,
                 sparse: tuple[bool, bool] = (False, False)):
        super().__init__()
        self.fields = list(field_sizes)
        # sparse: whether the id (and per-item weight) and context tables hand sparse
        # gradients, so that only a batch's rows change (RowAdam)
        self.sparse = sparse
        self.item_id = nn.Embedding(n_items, dim, sparse=sparse[0])
        self.ctx = nn.Embedding(n_items, dim, sparse=sparse[1])
        nn.init.uniform_(self.item_id.weight, -0.5 / dim, 0.5 / dim)
        nn.init.zeros_(self.ctx.weight)
        self.side = nn.ModuleDict({
            f: nn.Embedding(size + 1, dim, padding_idx=size) for f, size in field_sizes.items()
        })
        for f, emb in self.side.items():
            assert isinstance(emb, nn.Embedding)
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
        logits = nn.functional.embedding(items, self.logits, sparse=self.sparse[0]) \
            if self.logits.shape[0] > 1 else self.logits.expand(items.numel(), -1)
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
                table = self.side[f]
                assert isinstance(table, nn.Embedding)
                parts.append(table.weight[torch.as_tensor(ids[f])].mean(0))
                logits.append(mean_logits[k])
        weights = torch.softmax(torch.stack(logits), 0)
        return (weights[:, None] * torch.stack(parts)).sum(0).numpy().astype(np.float32)
