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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
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


#: What this process did, by kind of unit ("hyperedges", "walks", "train rows", "test
#: users", ...): the share each rank took, for the run record (:func:`rank_report`).
_WORK: dict[str, int] = {}
#: The work entry counting the bytes this rank put into collectives.
EXCHANGED = "bytes exchanged"


def share(n: int, w: World | None = None, kind: str | None = None) -> tuple[int, int]:
    """This rank's contiguous share ``[lo, hi)`` of ``n`` items (the first ``n % size`` ranks
    get one more). ``kind`` names the units so that the share is counted in this rank's
    :func:`work_done`."""
    w = w or world()
    base, extra = divmod(n, w.size)
    lo = w.rank * base + min(w.rank, extra)
    hi = lo + base + (1 if w.rank < extra else 0)
    if kind is not None:
        count_work(kind, hi - lo)
    return lo, hi


def count_work(kind: str, units: int = 1) -> None:
    """Add ``units`` of ``kind`` to this process's :func:`work_done` (``"steps"`` counts
    the steps that exchange, so that a record can say what one step sends)."""
    _WORK[kind] = _WORK.get(kind, 0) + units


def work_done() -> dict[str, int]:
    """The units of work this process has counted (:func:`share`, :func:`count_work`) so
    far."""
    return dict(_WORK)


def rank_report(seconds: float, since: dict[str, int] | None = None
                ) -> list[dict[str, Any]] | None:
    """Every rank's ``seconds``, peak resident memory and the work it counted since the
    :func:`work_done` snapshot ``since``, in rank order, for the run record; None on one
    process. Every rank must call it."""
    w = world()
    if w.size == 1:
        return None
    before = since or {}
    work = {k: v - before.get(k, 0) for k, v in _WORK.items() if v != before.get(k, 0)}
    mine = {"rank": w.rank, "seconds": round(seconds, 3), "peak_rss_mb": _peak_rss_mb(),
            "work": work}
    gathered: list[Any] = [None] * w.size
    _dist().all_gather_object(gathered, mine)
    return gathered


def world_record(ranks: list[dict[str, Any]] | None = None) -> dict[str, Any] | None:
    """What a run record says of the world: None on one process, else the backend, the
    world size and (from :func:`rank_report`) each rank's share of the work and time."""
    w = world()
    if w.size == 1:
        return None
    record: dict[str, Any] = {"backend": w.backend, "world_size": w.size}
    if ranks is not None:
        record["ranks"] = ranks
    return record


def _peak_rss_mb() -> float | None:
    """This process's peak resident memory (the kernel's high-water mark), or None where
    /proc is not there."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def all_reduce_sum(array: np.ndarray) -> np.ndarray:
    """``array`` summed over the ranks, in place (float32/float64/int64, C-contiguous); the
    same array back on one process."""
    w = world()
    if w.size == 1:
        return array
    import torch

    if not array.flags.c_contiguous:
        raise ValueError("all_reduce_sum needs a C-contiguous array")
    _all_reduce(torch.from_numpy(array), w)  # shares the memory
    return array


def all_gather_rows(part: np.ndarray) -> np.ndarray:
    """Every rank's ``part`` (same trailing shape and dtype, any number of rows) stacked in
    rank order: what one process computes over all rows when each rank took its
    :func:`share`."""
    if world().size == 1:
        return part
    import torch

    gathered = gather_tensor_rows(torch.from_numpy(np.ascontiguousarray(part)))
    return np.asarray(gathered.cpu().numpy())


def all_gather_values(values: np.ndarray) -> np.ndarray:
    """Every rank's 1-D ``values`` (any length; numbers, or ids of any kind such as strings)
    concatenated in rank order."""
    w = world()
    if w.size == 1:
        return values
    if values.dtype.kind in "biuf":
        return all_gather_rows(values.reshape(-1, 1)).reshape(-1)
    parts: list[Any] = [None] * w.size
    _dist().all_gather_object(parts, values)
    return np.concatenate(parts)


def all_gather_csr_rows(local: Any) -> Any:
    """The ``scipy.sparse`` CSR matrix whose rows each rank holds a contiguous block of, in
    rank order (rank 0's rows first; every other row of ``local`` empty; one shape and
    dtype on every rank): the same matrix on every rank."""
    import scipy.sparse as sp

    if world().size == 1:
        return local
    lengths = all_reduce_sum(np.diff(local.indptr).astype(np.int64))
    indptr = np.zeros(lengths.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    indices = all_gather_values(local.indices.astype(
        np.int32 if local.shape[1] < 2**31 else np.int64, copy=False))  # alike on every rank
    data = all_gather_values(local.data)
    if indptr.size and indptr[-1] < 2**31:
        indptr = indptr.astype(np.int32)
    return sp.csr_matrix((data, indices, indptr), shape=local.shape)


@contextmanager
def together() -> Iterator[None]:
    """A step every rank must pass: a :class:`DataError` raised on any rank is raised on
    every rank (the first failing rank's message), rather than leave the others waiting in
    the next collective. One process: the error passes through unchanged."""
    if world().size == 1:
        yield
        return
    failure: str | None = None
    try:
        yield
    except DataError as exc:
        failure = str(exc)
    said: list[Any] = [None] * world().size
    _dist().all_gather_object(said, failure)
    first = next((m for m in said if m is not None), None)
    if first is not None:
        raise DataError(first)


def gather_tensor_rows(part: Any, sizes: list[int] | None = None) -> Any:
    """:func:`all_gather_rows` for a torch tensor (on the GPU under NCCL); ``sizes``: every
    rank's row count when already known (saves one exchange)."""
    w = world()
    if w.size == 1:
        return part
    import torch
    import torch.distributed as dist

    device = _collective_device(w)
    if sizes is None:
        counts = torch.zeros(w.size, dtype=torch.int64, device=device)
        counts[w.rank] = part.shape[0]
        _all_reduce(counts, w)
        sizes = [int(c) for c in counts.cpu()]
    padded = torch.zeros((max(sizes), *part.shape[1:]), dtype=part.dtype, device=device)
    padded[: part.shape[0]] = part
    gathered = [torch.empty_like(padded) for _ in range(w.size)]
    dist.all_gather(gathered, padded)
    _count_sent(padded)
    return torch.cat([g[:n] for g, n in zip(gathered, sizes, strict=True)]).to(part.device)


def _collective_device(w: World) -> Any:
    import torch

    return torch.device("cuda", torch.cuda.current_device()) if w.backend == "nccl" \
        else torch.device("cpu")


def exchange_rows(parts: list[np.ndarray]) -> np.ndarray:
    """All-to-all: ``parts[r]`` (every part with the same trailing shape and dtype) goes to
    rank ``r``; returns what every rank sent to this one, stacked in rank order (one
    process: ``parts[0]``)."""
    w = world()
    if len(parts) != w.size:
        raise ValueError(f"exchange_rows needs one part per rank ({w.size}), got {len(parts)}")
    if w.size == 1:
        return parts[0]
    return send_rows(np.concatenate(parts), [p.shape[0] for p in parts])


def send_rows(rows: np.ndarray, counts: list[int] | np.ndarray) -> np.ndarray:
    """All-to-all of rows already in rank order: the first ``counts[0]`` rows go to rank 0,
    the next ``counts[1]`` to rank 1, ...; returns what every rank sent to this one,
    stacked in rank order. Only the rows travel (no padding): one output buffer the size
    of what arrives."""
    w = world()
    counts = [int(c) for c in counts]
    if len(counts) != w.size or sum(counts) != rows.shape[0]:
        raise ValueError(f"send_rows needs {w.size} counts summing to {rows.shape[0]}, got "
                         f"{counts}")
    if w.size == 1:
        return rows
    import torch
    import torch.distributed as dist

    device = _collective_device(w)
    sizes_out = torch.tensor(counts, dtype=torch.int64, device=device)
    sizes_in = torch.empty_like(sizes_out)
    dist.all_to_all_single(sizes_in, sizes_out)
    arriving = [int(n) for n in sizes_in.cpu()]
    send = torch.from_numpy(np.ascontiguousarray(rows)).to(device)
    received = torch.empty((sum(arriving), *send.shape[1:]), dtype=send.dtype, device=device)
    dist.all_to_all_single(received, send, arriving, counts)
    row_bytes = send.element_size() * (int(np.prod(send.shape[1:])) if send.dim() > 1 else 1)
    count_work(EXCHANGED, (sum(counts) - counts[w.rank]) * row_bytes)
    return np.asarray(received.cpu().numpy())


def broadcast_tensor(tensor: Any) -> Any:
    """Rank 0's ``tensor`` on every rank (in place; same shape and dtype everywhere)."""
    w = world()
    if w.size == 1:
        return tensor
    import torch.distributed as dist

    if w.backend == "nccl" and not tensor.is_cuda:
        on_gpu = tensor.cuda()
        dist.broadcast(on_gpu, 0)
        _count_sent(on_gpu)
        return tensor.copy_(on_gpu.cpu())
    dist.broadcast(tensor, 0)
    _count_sent(tensor)
    return tensor


def sum_gradients(parameters: Any) -> None:
    """Every parameter's gradient summed over the ranks, in place, so that each rank's
    optimiser takes the same step (data parallelism: each rank's loss covered its share of
    one batch). Dense gradients travel as one buffer per dtype; a sparse gradient (an
    embedding's rows) is gathered, not densified, so only the rows some rank touched
    travel. Every rank must pass the same parameters, each with a gradient of the same
    kind (or none on every rank)."""
    w = world()
    if w.size == 1:
        return
    import torch

    # a parameter the loss did not use has no gradient, and the optimiser leaves it alone;
    # so does the exchange (the same code runs on every rank, so they all leave it out)
    params = [p for p in parameters if p.grad is not None]
    by_dtype: dict[Any, list[Any]] = {}
    for p in params:
        if not p.grad.is_sparse:
            by_dtype.setdefault(p.grad.dtype, []).append(p)
    for group in by_dtype.values():
        flat = torch.cat([p.grad.reshape(-1) for p in group])
        _all_reduce(flat, w)
        offset = 0
        for p in group:
            p.grad.copy_(flat[offset : offset + p.grad.numel()].view_as(p.grad))
            offset += p.grad.numel()
    sparse = [p for p in params if p.grad.is_sparse]
    if not sparse:
        return
    grads = [p.grad.coalesce() for p in sparse]
    counts = torch.zeros((w.size, len(grads)), dtype=torch.int64, device=_collective_device(w))
    counts[w.rank] = torch.tensor([g.indices().shape[1] for g in grads])
    _all_reduce(counts, w)  # one exchange tells every table's row counts
    per_rank = counts.cpu().tolist()  # [rank][table]
    widths = [int(np.prod(g.shape[1:])) for g in grads]
    # every table's rows in one gather, every table's values in another (one per dtype),
    # rather than two exchanges per table: a rating-mf step has four tables
    rows = gather_tensor_rows(torch.cat([g.indices()[0] for g in grads]),
                              [sum(r) for r in per_rank])
    row_parts = _split_by_rank(rows, per_rank, [1] * len(grads))
    value_parts: list[Any] = [None] * len(grads)
    for dtype in {g.values().dtype for g in grads}:
        tables = [k for k, g in enumerate(grads) if g.values().dtype == dtype]
        mine = torch.cat([grads[k].values().reshape(-1) for k in tables])
        sizes = [sum(r[k] * widths[k] for k in tables) for r in per_rank]
        values = gather_tensor_rows(mine, sizes)
        split = _split_by_rank(values, [[r[k] for k in tables] for r in per_rank],
                               [widths[k] for k in tables])
        for j, k in enumerate(tables):
            value_parts[k] = split[j]
    for k, (p, g) in enumerate(zip(sparse, grads, strict=True)):
        # rows some ranks share appear once per rank; the optimiser's coalesce adds them
        p.grad = torch.sparse_coo_tensor(
            row_parts[k][None, :], value_parts[k].reshape(-1, *g.shape[1:]), g.shape,
            check_invariants=False)


def _split_by_rank(flat: Any, per_rank: list[list[int]], widths: list[int]) -> list[Any]:
    """Undo the packing of :func:`sum_gradients`: ``flat`` holds, rank after rank, each
    table's ``per_rank[r][k]`` rows of ``widths[k]`` numbers; returns each table's rows of
    every rank, in rank order."""
    import torch

    tables: list[list[Any]] = [[] for _ in widths]
    at = 0
    for counts in per_rank:
        for k, (n, width) in enumerate(zip(counts, widths, strict=True)):
            tables[k].append(flat[at : at + n * width])
            at += n * width
    return [torch.cat(parts) for parts in tables]


def sum_tensor(tensor: Any) -> Any:
    """A torch ``tensor`` summed over the ranks, in place (itself on one process)."""
    w = world()
    if w.size > 1:
        _all_reduce(tensor, w)
    return tensor


def _all_reduce(tensor: Any, w: World) -> None:
    """Sum ``tensor`` over the ranks in place (through the GPU under NCCL, which moves GPU
    memory only)."""
    import torch.distributed as dist

    if w.backend == "nccl" and not tensor.is_cuda:
        on_gpu = tensor.cuda()
        dist.all_reduce(on_gpu)
        tensor.copy_(on_gpu.cpu())
    else:
        dist.all_reduce(tensor)
    _count_sent(tensor)


def _count_sent(tensor: Any) -> None:
    """Count a collective's payload (what this rank put in; a ring all-reduce sends about
    twice that over the wire) under :data:`EXCHANGED` in :func:`work_done`."""
    count_work(EXCHANGED, tensor.numel() * tensor.element_size())


def _dist() -> Any:
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover - torch without distributed
        return None
    return dist if dist.is_available() else None
