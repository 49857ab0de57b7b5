"""Adam that touches only the rows a batch used (imported only when a torch method trains).

A batch of a few thousand (user, item) pairs uses a few thousand rows of embedding tables
that hold hundreds of thousands; dense Adam (and dense weight decay) rewrites every row of
every table on every step, which at MovieLens-25M scale costs far more than the batch itself.
Here an embedding built with ``sparse=True`` hands a sparse gradient, and only its rows'
moments and weights are updated ("lazy" Adam, as TensorFlow's LazyAdam and torch's
SparseAdam); every dense parameter (genre tables, an MLP) gets plain Adam. Weight decay is
decoupled (AdamW) and, for a sparse table, applied to the rows the batch touched.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


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
                if p.grad.is_sparse:
                    grad = p.grad.coalesce()  # one row per index, duplicates summed
                    rows, values = grad.indices()[0], grad.values()
                    m = state["m"].index_select(0, rows).mul_(b1).add_(values, alpha=1 - b1)
                    v = state["v"].index_select(0, rows).mul_(b2).addcmul_(
                        values, values, value=1 - b2)
                    state["m"].index_copy_(0, rows, m)
                    state["v"].index_copy_(0, rows, v)
                    w = p.index_select(0, rows)
                    if wd:
                        w.mul_(1 - lr * wd)
                    w.addcdiv_(m, v.sqrt_().div_(root_bc2).add_(eps), value=-step_size)
                    p.index_copy_(0, rows, w)
                else:
                    m, v = state["m"], state["v"]
                    m.mul_(b1).add_(p.grad, alpha=1 - b1)
                    v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                    if wd:
                        p.mul_(1 - lr * wd)
                    p.addcdiv_(m, (v.sqrt() / root_bc2).add_(eps), value=-step_size)
