"""The two towers in torch (imported only when the model trains or loads)."""

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
