"""Running on several processes or machines through ``torch.distributed``.

Launched by ``torchrun --nproc-per-node N [--nnodes M --rdzv-endpoint HOST:PORT]``, every
process (rank) runs the same command; :func:`init_from_env` joins them into one process
group (gloo on CPUs, NCCL when every rank has a GPU). Work is split by contiguous shares
(:func:`share`), so putting the ranks' parts back together in rank order gives exactly what
one process computes; the collectives here move NumPy arrays. Outside torchrun the world is
one process and every helper is a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from embedlens.core.errors import DataError


@dataclass(frozen=True)
class World:
    """This process's place among the ranks."""

    rank: int = 0
    size: int = 1
    backend: str | None = None

    @property
    def main(self) -> bool:
        """Whether this rank writes files and prints (rank 0)."""
        return self.rank == 0


def world() -> World:
    """The current world: the process group's, or one process when there is none."""
    if not launched():  # the usual case answers without importing torch
        return World()
    dist = _dist()
    if dist is None or not dist.is_initialized():
        return World()
    return World(dist.get_rank(), dist.get_world_size(), str(dist.get_backend()))


def launched() -> bool:
    """Whether torchrun (or another launcher setting ``WORLD_SIZE``) started several ranks."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False


def init_from_env(backend: str | None = None) -> World:
    """Join the process group torchrun describes in the environment (``RANK``,
    ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``), once; a single process stays alone.
    ``backend``: gloo (CPU, the default) or nccl (one GPU per rank)."""
    if not launched():
        return World()
    dist = _dist()
    if dist is None:
        raise DataError("WORLD_SIZE > 1 but torch.distributed is not available in this torch "
                        "build; run without torchrun.")
    if not dist.is_initialized():
        chosen = backend or os.environ.get("EMBEDLENS_BACKEND", "gloo")
        if chosen not in ("gloo", "nccl"):
            raise DataError(f"Unknown distributed backend {chosen!r}; choose gloo or nccl.")
        dist.init_process_group(chosen)
    return world()


def share(n: int, w: World | None = None) -> tuple[int, int]:
    """This rank's contiguous share ``[lo, hi)`` of ``n`` items (the first ``n % size`` ranks
    get one more)."""
    w = w or world()
    base, extra = divmod(n, w.size)
    lo = w.rank * base + min(w.rank, extra)
    return lo, lo + base + (1 if w.rank < extra else 0)


def all_reduce_sum(array: np.ndarray) -> np.ndarray:
    """``array`` summed over the ranks, in place (float32/float64/int64, C-contiguous); the
    same array back on one process."""
    w = world()
    if w.size == 1:
        return array
    import torch
    import torch.distributed as dist

    if not array.flags.c_contiguous:
        raise ValueError("all_reduce_sum needs a C-contiguous array")
    tensor = torch.from_numpy(array)  # shares the memory
    if w.backend == "nccl":  # NCCL moves GPU memory only
        on_gpu = tensor.cuda()
        dist.all_reduce(on_gpu, op=dist.ReduceOp.SUM)
        tensor.copy_(on_gpu.cpu())
    else:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return array


def all_gather_rows(part: np.ndarray) -> np.ndarray:
    """Every rank's ``part`` (same trailing shape and dtype, any number of rows) stacked in
    rank order: what one process computes over all rows when each rank took its
    :func:`share`."""
    w = world()
    if w.size == 1:
        return part
    import torch
    import torch.distributed as dist

    part = np.ascontiguousarray(part)
    counts = np.zeros(w.size, dtype=np.int64)
    counts[w.rank] = part.shape[0]
    all_reduce_sum(counts)
    most = int(counts.max())
    padded = np.zeros((most, *part.shape[1:]), dtype=part.dtype)
    padded[: part.shape[0]] = part
    mine = torch.from_numpy(padded)
    if w.backend == "nccl":  # NCCL moves GPU memory only
        mine = mine.cuda()
    gathered = [torch.empty_like(mine) for _ in range(w.size)]
    dist.all_gather(gathered, mine)
    return np.concatenate([g.cpu().numpy()[: int(c)]
                           for g, c in zip(gathered, counts, strict=True)])


def _dist() -> Any:
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover - torch without distributed
        return None
    return dist if dist.is_available() else None
