"""The two towers in torch (imported only when the model trains or loads)."""

from __future__ import annotations

from typing import cast

import numpy as np
import torch
from torch import nn


class Towers(nn.Module):
    """User tower: id embedding. Item tower: id embedding plus the mean of its genres'.

    ``sparse``: whether the user and item id tables hand sparse gradients (only a batch's
    rows change: see ``RowAdam``); the genres are a padded items x slots index matrix, so a
    batch pools only its own items."""

    def __init__(self, n_users: int, n_items: int, dim: int, genre_slots=None,
                 n_genres: int = 0, sparse: tuple[bool, bool] = (False, False)):
        super().__init__()
        self.n_items = n_items
        self.user_id = nn.Embedding(n_users, dim, sparse=sparse[0])
        self.item_id = nn.Embedding(n_items, dim, sparse=sparse[1])
        nn.init.normal_(self.user_id.weight, std=0.05)
        nn.init.normal_(self.item_id.weight, std=0.05)
        self.genres = None
        if genre_slots is not None and n_genres:
            self.genres = nn.Embedding(n_genres + 1, dim, padding_idx=n_genres)
            nn.init.normal_(self.genres.weight, std=0.05)
            with torch.no_grad():
                self.genres.weight[n_genres].zero_()
            slots = torch.as_tensor(genre_slots, dtype=torch.long)
            self.register_buffer("slots", slots)
            count = (slots != n_genres).sum(1, keepdim=True).clamp(min=1)
            self.register_buffer("inv_count", 1.0 / count.float())

    def users(self, u: torch.Tensor) -> torch.Tensor:
        return self.user_id(u)

    def items(self, i: torch.Tensor) -> torch.Tensor:
        v = self.item_id(i)
        if self.genres is None:
            return v
        # the mean of the item's genres (none: zero); when a batch names more items than
        # the catalogue has, pooling every item once and indexing is the cheaper way
        slots = cast(torch.Tensor, self.slots)  # buffers, typed for the checker
        inv_count = cast(torch.Tensor, self.inv_count)
        if i.numel() > self.n_items:
            return v + (self.genres(slots).sum(-2) * inv_count)[i]
        return v + self.genres(slots[i]).sum(-2) * inv_count[i]

    @torch.no_grad()
    def export(self) -> tuple[np.ndarray, np.ndarray]:
        """All user and item vectors as float32 arrays."""
        self.eval()
        u = self.user_id.weight.detach()
        i = self.items(torch.arange(self.n_items, device=u.device)).detach()
        return u.cpu().numpy().astype(np.float32), i.cpu().numpy().astype(np.float32)
