"""ELSA's two whole-table operations with hand-written backward passes (imported only when
ELSA trains). Every step touches every item row in both, so at ML-25M scale they are most of
a step; autograd's generic versions take an extra matrix product (the Gram matrix's two
operands are one table) and extra passes over the table (unit rows)."""

from __future__ import annotations

from typing import Any

import torch


class UnitRows(torch.autograd.Function):
    """Each row scaled to unit length (as ``F.normalize``, eps 1e-12); backward
    ``(g - a (a . g)) / |w|`` row by row."""

    @staticmethod
    def forward(ctx: Any, w: torch.Tensor) -> torch.Tensor:
        norm = torch.linalg.vector_norm(w, dim=-1, keepdim=True).clamp_min(1e-12)
        a = w / norm
        ctx.save_for_backward(a, norm)
        return a

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
        a, norm = ctx.saved_tensors
        along = torch.linalg.vecdot(a, g).unsqueeze(-1)
        return torch.addcmul(g, a, along, value=-1).div_(norm)


class Gram(torch.autograd.Function):
    """``a^T a``; backward ``a (g + g^T)``: one product instead of autograd's two."""

    @staticmethod
    def forward(ctx: Any, a: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(a)
        return a.T @ a

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
        (a,) = ctx.saved_tensors
        return a @ (g + g.T)
