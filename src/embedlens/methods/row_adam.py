"""Adam that touches only the rows a batch used (imported only when a torch method trains).

A batch of a few thousand (user, item) pairs uses a few thousand rows of embedding tables
that hold hundreds of thousands; dense Adam (and dense weight decay) rewrites every row of
every table on every step, which at MovieLens-25M scale costs far more than the batch itself.
Here an embedding built with ``sparse=True`` hands a sparse gradient, and only its rows'
moments and weights are updated ("lazy" Adam, as TensorFlow's LazyAdam and torch's
SparseAdam); every dense parameter (genre tables, an MLP) gets plain Adam. Weight decay is
decoupled (AdamW) and, for a sparse table, applied to the rows the batch touched.

On the CPU a sparse table's update is one numba pass (duplicate rows summed through a slot
map, then each row's moments and weights updated in place): torch's coalesce, gathers and
scatters took a third of a two-tower step at ML-25M scale.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from numba import njit


class RowAdam(torch.optim.Optimizer):
    """Lazy Adam(W) for sparse embedding gradients, Adam(W) for dense ones.

    When every row is touched on every step it is exactly ``torch.optim.AdamW`` (a test
    holds it to that)."""

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps,
                                  "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: None = None) -> None:  # type: ignore[override]
        for group in self.param_groups:
            lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], \
                group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["m"] = torch.zeros_like(p)
                    state["v"] = torch.zeros_like(p)
                state["step"] += 1
                t = state["step"]
                step_size = lr / (1 - b1**t)
                root_bc2 = (1 - b2**t) ** 0.5
                if p.grad.is_sparse and p.device.type == "cpu":
                    if "slot" not in state:  # row -> its place in a step's list, or -1
                        state["slot"] = np.full(p.shape[0], -1, dtype=np.int64)
                    grad = p.grad
                    _sparse_step(p.detach().numpy(), state["m"].numpy(), state["v"].numpy(),
                                 grad._indices()[0].numpy(),
                                 grad._values().contiguous().numpy(), state["slot"],
                                 step_size, b1, b2, root_bc2, eps, lr * wd)
                elif p.grad.is_sparse:
                    _torch_sparse_step(p, p.grad, state["m"], state["v"], step_size, b1, b2,
                                       root_bc2, eps, lr * wd)
                else:
                    m, v = state["m"], state["v"]
                    m.mul_(b1).add_(p.grad, alpha=1 - b1)
                    v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                    if wd:
                        p.mul_(1 - lr * wd)
                    p.addcdiv_(m, (v.sqrt() / root_bc2).add_(eps), value=-step_size)


def _torch_sparse_step(weight: torch.Tensor, grad: torch.Tensor, m_all: torch.Tensor,
                       v_all: torch.Tensor, step_size: float, b1: float, b2: float,
                       root_bc2: float, eps: float, decay: float) -> None:
    """:func:`_sparse_step` in torch operations (any device)."""
    grad = grad.coalesce()  # one row per index, duplicates summed
    rows, values = grad.indices()[0], grad.values()
    m = m_all.index_select(0, rows).mul_(b1).add_(values, alpha=1 - b1)
    v = v_all.index_select(0, rows).mul_(b2).addcmul_(values, values, value=1 - b2)
    m_all.index_copy_(0, rows, m)
    v_all.index_copy_(0, rows, v)
    w = weight.index_select(0, rows)
    if decay:
        w.mul_(1 - decay)
    w.addcdiv_(m, v.sqrt_().div_(root_bc2).add_(eps), value=-step_size)
    weight.index_copy_(0, rows, w)


@njit(cache=True, error_model="numpy")  # numpy's: no zero-division branch in the loop
def _sparse_step(weight: np.ndarray, m: np.ndarray, v: np.ndarray, idx: np.ndarray,
                 values: np.ndarray, slot: np.ndarray, step_size: float, b1: float,
                 b2: float, root_bc2: float, eps: float, decay: float) -> None:
    """Lazy AdamW on the rows ``idx`` of ``weight`` (in place), with gradient rows ``values``
    (an uncoalesced sparse gradient: a row may come more than once; its gradients are
    summed first, in the order given). ``slot`` is all -1 and is left so."""
    rows = np.empty(idx.size, dtype=np.int64)
    n = 0
    for p in range(idx.size):
        r = idx[p]
        if slot[r] < 0:
            slot[r] = n
            rows[n] = r
            n += 1
    grads = np.zeros((n, weight.shape[1]), dtype=np.float32)
    for p in range(idx.size):
        q = slot[idx[p]]
        for c in range(weight.shape[1]):
            grads[q, c] += values[p, c]
    # float32 throughout, as torch's own update computes
    b1f, b2f, c1, c2 = np.float32(b1), np.float32(b2), np.float32(1 - b1), np.float32(1 - b2)
    size, keep = np.float32(step_size), np.float32(1 - decay)
    root, tiny = np.float32(root_bc2), np.float32(eps)
    for q in range(n):
        r = rows[q]
        slot[r] = -1
        for c in range(weight.shape[1]):
            g = grads[q, c]
            mc = m[r, c] * b1f + g * c1
            vc = v[r, c] * b2f + g * g * c2
            m[r, c] = mc
            v[r, c] = vc
            weight[r, c] = weight[r, c] * keep - size * mc / (np.sqrt(vc) / root + tiny)
