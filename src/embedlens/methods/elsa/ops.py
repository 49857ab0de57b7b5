"""ELSA's two whole-table operations with hand-written backward passes (imported only when
ELSA trains). Every step touches every item row in both, so at ML-25M scale they are most of
a step; autograd's generic versions take an extra matrix product (the Gram matrix's two
operands are one table) and extra passes over the table (unit rows)."""

from __future__ import annotations

from typing import Any

import torch

from embedlens.core.distributed import share, sum_tensor


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
    """``a^T a``; backward ``a (g + g^T)``: one product instead of autograd's two.

    Under torchrun each rank multiplies only its share of the rows and the ranks' dim x dim
    products are summed; backward sums the ranks' gradients of the Gram (every rank's loss
    depends on all of it) and hands back its own rows' part, zeros elsewhere (the ranks'
    parts are then summed with the rest of the gradient). Each step's items x dim^2 work is
    thus shared out, not repeated on every rank, for two dim x dim exchanges."""

    @staticmethod
    def forward(ctx: Any, a: torch.Tensor) -> torch.Tensor:
        lo, hi = share(a.shape[0])
        part = a[lo:hi]
        ctx.save_for_backward(part)
        ctx.rows = (lo, hi, a.shape[0])
        return sum_tensor(part.T @ part)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
        (part,) = ctx.saved_tensors
        lo, hi, n = ctx.rows
        grad = part @ sum_tensor(g + g.T)
        if hi - lo == n:  # one process: every row is this rank's
            return grad
        whole = torch.zeros((n, grad.shape[1]), dtype=grad.dtype, device=grad.device)
        whole[lo:hi] = grad
        return whole
