"""What the torch methods share: the device, a validation split carved from train, the
mini-batch epoch loop with early stopping, their common parameters, and the one way a
network's weights are saved and loaded.

Mini-batches are index slices of one ``torch.randperm`` (no per-sample ``Dataset``); the
loss per epoch goes to ``history``; a GPU is used when ``device`` is ``"auto"`` (default) and
torch sees one. torch itself is imported only when a method trains or loads.
"""

from __future__ import annotations

import contextlib
import copy
from abc import abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np
import scipy.sparse as sp

from embedlens.core.distributed import (
    all_reduce_sum,
    broadcast_tensor,
    count_work,
    share,
    sum_gradients,
    world,
)
from embedlens.core.errors import DataError
from embedlens.core.files import load_arrays, save_arrays
from embedlens.core.params import param
from embedlens.core.progress import bar
from embedlens.core.threads import thread_budget

if TYPE_CHECKING:
    from embedlens.core.interactions import InteractionMatrix
    from embedlens.data.dataset import Dataset
from embedlens.methods.base import EmbeddingModel, EmbeddingParams, device_param, seed_param


@contextlib.contextmanager
def deterministic_torch(seed: int) -> Iterator[None]:
    """Seed torch, make its kernels deterministic and size its pool (:func:`thread_budget`)
    for the block, so the same seed gives bitwise the same weights in any process
    (multi-threaded CPU EmbeddingBag backward, for one, otherwise sums in a varying order).
    The global settings are restored afterwards."""
    import torch

    before = torch.are_deterministic_algorithms_enabled()
    threads_before = torch.get_num_threads()
    torch.set_num_threads(thread_budget())
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)
        torch.set_num_threads(threads_before)


def torch_device(name: str):
    """``"auto"``: CUDA when available, else CPU."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DataError("device='cuda' but torch sees no GPU.")
    return torch.device(name)


def holdout(
    matrix: sp.csr_matrix, fraction: float, seed: int
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Split a users x items matrix into fit and validation parts, a random ``fraction`` of
    each user's entries (users with a single entry keep it for fitting)."""
    coo = matrix.tocoo()
    rng = np.random.default_rng(seed)
    val = rng.random(coo.nnz) < fraction
    counts = np.bincount(coo.row, minlength=matrix.shape[0])
    val &= counts[coo.row] > 1

    def part(mask: np.ndarray) -> sp.csr_matrix:
        return sp.csr_matrix((coo.data[mask], (coo.row[mask], coo.col[mask])), shape=matrix.shape)
    return part(~val), part(val)


#: At most this many users score a validation epoch: enough for a stable NDCG@10, and a
#: full top-K over every user each epoch would cost more than the epoch at ML-25M scale.
VALIDATION_USERS = 5000


def validation_users(val: sp.csr_matrix, seed: int, limit: int = VALIDATION_USERS
                     ) -> np.ndarray:
    """The users (row positions, sorted) with validation entries; a seeded sample of
    ``limit`` of them when there are more."""
    users = np.flatnonzero(np.diff(val.indptr) > 0)
    if users.size > limit:
        users = np.sort(np.random.default_rng(seed).choice(users, limit, replace=False))
    return users


def sparse_gradients(n_rows: int, rows_per_batch: int) -> bool:
    """Whether an embedding table of ``n_rows`` should hand sparse gradients to
    :class:`~embedlens.methods.row_adam.RowAdam`: when a batch touches under half of it.
    Then only those rows are updated (10x faster per step at ML-25M scale); on a small
    table, which a batch touches almost whole, the bookkeeping costs more than it saves."""
    return n_rows > 2 * rows_per_batch


#: Negatives the rows of a batch share when the catalogue is large (at least the per-row
#: count; at most one draw per row-negative). 256 makes a two-tower step at ML-25M scale
#: about 3x cheaper than per-row draws.
SHARED_NEGATIVES = 256


def shared_pool(batch: int, negatives: int) -> int:
    """How many shared negatives a batch of ``batch`` rows draws when each row is owed
    ``negatives`` of them (each then weighs ``negatives / pool``)."""
    return min(batch * negatives, max(SHARED_NEGATIVES, negatives))


def negative_sampler(weights: np.ndarray | None, n: int, device: Any
                     ) -> Callable[[int], Any]:
    """``draw(size)``: a long tensor of ``size`` item positions drawn in proportion to
    ``weights`` (uniformly over ``n`` when None), by inverse CDF: a ``searchsorted`` of
    uniform draws costs a fraction of ``torch.multinomial`` on a large catalogue."""
    import torch

    if weights is None:
        return lambda size: torch.randint(n, (size,), device=device)
    cdf = np.cumsum(np.asarray(weights, dtype=np.float64) + 1e-12)
    cdf_t = torch.as_tensor(cdf / cdf[-1], dtype=torch.float64, device=device)

    def draw(size: int):
        u = torch.rand(size, dtype=torch.float64, device=device)
        return torch.searchsorted(cdf_t, u).clamp_(max=n - 1)

    return draw


def padded_slots(values: list[list[str]], vocab: dict[str, int]) -> np.ndarray:
    """items x max-list-length index matrix of each item's values (genres, tags) in
    ``vocab``, padded with ``len(vocab)`` (an embedding's padding row)."""
    rows = [[vocab[v] for v in row if v in vocab] for row in values]
    out = np.full((len(rows), max(1, max(map(len, rows), default=1))), len(vocab), np.int64)
    for r, row in enumerate(rows):
        out[r, : len(row)] = row
    return out


#: Early stopping validates at least every this many training rows: at ML-25M scale one
#: epoch is tens of thousands of steps and models converge within one or two, so a check per
#: epoch (and a patience of epochs) would train minutes past the best point. Smaller data
#: (under this many rows) is checked once per epoch, as before.
CHECK_ROWS = 2_000_000


def train_rows(rows, batch_size: int, opt, batch_loss) -> float:
    """One pass over ``rows`` (a tensor of training-row positions, already shuffled) in
    mini-batches (index slices): ``batch_loss(idx)`` gives each batch's loss, a mean over
    its rows; returns the mean loss.

    Under torchrun every rank holds the same ``rows`` and takes its :func:`share` of each
    batch; its loss is weighted by that share and the gradients are summed over the ranks
    (:func:`sum_gradients`), so each rank's optimiser takes the step one process takes on
    the whole batch (to float rounding, as long as the loss draws nothing at random)."""
    w = world()
    total = 0.0
    for start in range(0, rows.numel(), batch_size):
        idx = rows[start : start + batch_size]
        if w.size == 1:
            loss = batch_loss(idx)
        else:
            lo, hi = share(idx.numel(), w, kind="train rows")
            # a rank left without rows (a last batch smaller than the world) still hands
            # in zero gradients of the right kind, so that the collectives line up
            loss = batch_loss(idx[lo:hi]) * ((hi - lo) / idx.numel()) if hi > lo else \
                batch_loss(idx[:1]) * 0.0
        opt.zero_grad()
        loss.backward()
        if w.size > 1:
            sum_gradients(p for group in opt.param_groups for p in group["params"])
            count_work("steps")
        opt.step()
        total += float(loss.detach()) * idx.numel()
    if w.size > 1:
        total = float(all_reduce_sum(np.array([total]))[0])
    return total / max(1, rows.numel())


#: Early stopping never stops before this many checks, or this many trained rows, whichever
#: comes first. A model leaving its first plateau (where it ranks by popularity) can score
#: lower for a few checks before it climbs: the tuned ML-100k random-0.2 two-tower at seed 43
#: validated 0.099, 0.092, 0.093, 0.097, then 0.123 up to 0.186 (epochs of 80k rows), and a
#: patience of 3 had stopped it at the fourth check with a test NDCG@10 of 0.226 instead of
#: 0.380. A large log's checks come every CHECK_ROWS rows, long past such a start, so there
#: the rows decide and the first check may already stop.
MIN_CHECKS = 6
MIN_ROWS = 1_000_000
#: The history entry naming the check (1-based) whose network early stopping kept.
KEPT = "kept_check"


class EarlyStopping:
    """Keeps the best network state by a validation score; says when to stop."""

    def __init__(self, patience: int, higher_is_better: bool,
                 min_checks: int = MIN_CHECKS, min_rows: int = MIN_ROWS) -> None:
        self.patience, self.sign = patience, 1.0 if higher_is_better else -1.0
        self.min_checks, self.min_rows = min_checks, min_rows
        self.best, self.state, self.waited, self.checks = -np.inf, None, 0, 0
        self.best_check = 0  # 1-based: the check whose state restore() brings back

    def update(self, score: float, net, trained_rows: int = 0) -> bool:
        """Record a check's score after ``trained_rows`` rows of training in all; True when
        ``patience`` checks passed without a gain, after at least ``min_checks`` checks or
        ``min_rows`` rows."""
        self.checks += 1
        if self.sign * score > self.best:
            self.best, self.state, self.waited = self.sign * score, copy.deepcopy(
                net.state_dict()), 0
            self.best_check = self.checks
            return False
        self.waited += 1
        warmed = self.checks >= self.min_checks or trained_rows >= self.min_rows
        return self.waited >= self.patience and warmed

    def restore(self, net) -> None:
        net.load_state_dict(self.state)


def fit_epochs(
    net, opt, device, n_rows: int, batch_loss, epochs: int, batch_size: int, desc: str,
    validate=None, val_key: str = "val", higher_is_better: bool = True, patience: int = 1,
    on_epoch: Callable[[int, float], None] | None = None, check_rows: int = CHECK_ROWS,
) -> dict[str, list[float]]:
    """The one training loop: up to ``epochs`` shuffled passes over the ``n_rows`` training
    rows in mini-batches. With ``validate`` (a score, kept in ``history[val_key]``) it checks
    after each epoch, or after each ``check_rows`` rows of an epoch when it has more, stops
    after ``patience`` checks without a gain and leaves ``net`` at its best check; without,
    it runs every epoch (``net`` may then be None: parameters trained outside a module).
    ``on_epoch(check, score)`` hears each validation score, higher always better (a tuner
    prunes poor trials with it, by raising). Returns the history (``loss`` per check, the
    validation scores, and under ``KEPT`` the check whose network was kept)."""
    import torch

    if validate is not None and net is None:
        raise ValueError("early stopping needs the network to restore its best epoch")
    stopper = EarlyStopping(patience, higher_is_better) if validate is not None else None
    history: dict[str, list[float]] = {"loss": []}
    if stopper is not None:
        history[val_key] = []
    part = n_rows if stopper is None else max(1, min(n_rows, check_rows))
    parts = -(-n_rows // part) if n_rows else 1
    pb = bar(desc, total=epochs * parts, unit="check" if parts > 1 else "epoch")
    stop = False
    trained = 0
    for _ in range(epochs):
        # every rank walks rank 0's order (their random streams part once their shares
        # of a batch draw negatives)
        perm = broadcast_tensor(torch.randperm(n_rows, device=device))
        for start in range(0, max(n_rows, 1), part):
            if net is not None:
                net.train()
            history["loss"].append(train_rows(perm[start : start + part], batch_size, opt,
                                              batch_loss))
            trained += min(part, n_rows - start)
            pb.update(1)
            if stopper is None:
                continue
            # rank 0's score decides for all (every rank holds the same weights, so this
            # only guards against a rank's rounding parting the ranks' early stopping)
            score = float(broadcast_tensor(torch.tensor([float(validate())],
                                                        dtype=torch.float64))[0])
            history[val_key].append(score)
            if on_epoch is not None:
                on_epoch(len(history["loss"]), score if higher_is_better else -score)
            if stopper.update(score, net, trained):
                stop = True
                break
        if stop:
            break
    pb.close()
    if stopper is not None:
        stopper.restore(net)
        history[KEPT] = [float(stopper.best_check)]
    return history


@dataclass(frozen=True)
class TrainingParams(EmbeddingParams):
    """What the torch models with early stopping share."""

    epochs: int = param(30, "most passes over the train rows", ge=1)
    batch_size: int = param(1024, "rows per mini-batch", ge=1, log=True, tune=(256, 4096))
    lr: float = param(5e-3, "Adam learning rate (row-wise: only a batch's rows move)", gt=0,
                      log=True, tune=(1e-3, 3e-2))
    weight_decay: float = param(0.0, "decoupled weight decay (AdamW), on the rows a batch "
                                "touches", ge=0, log=True, tune=(1e-8, 1e-3))
    val_fraction: float = param(0.1, "share of each user's train rows held out for early "
                                "stopping", gt=0, lt=1)
    patience: int = param(3, "validation checks without a gain before stopping (a check per "
                          "epoch, or per 2M rows of a larger one)", ge=1)
    seed: int = seed_param()
    device: str = device_param()


def save_network(path: Path, net: Any, **extra: np.ndarray) -> None:
    """A torch module's weights (and ``extra`` arrays) as an ``.npz`` (no pickle),
    atomically."""
    state = {k: v.detach().cpu().numpy() for k, v in net.state_dict().items()}
    save_arrays(path, **extra, **state)


def network_arrays(path: Path, what: str, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """The arrays :func:`save_network` wrote, checked."""
    return load_arrays(path, required, what)


def load_network(path: Path, net: Any, arrays: dict[str, Any]) -> Any:
    """Load ``arrays`` (from :func:`network_arrays`, ``extra`` removed) into ``net``; a
    file that does not fit the network is one :class:`DataError` naming it."""
    import torch

    try:
        net.load_state_dict({k: torch.as_tensor(v) for k, v in arrays.items()})
    except (RuntimeError, KeyError, TypeError) as exc:
        raise DataError(f"{path} does not match the run's model ({str(exc)[:120]}).") from None
    return net.eval()


class TorchModel(EmbeddingModel):
    """An embedding method trained in torch. ``fit`` seeds torch, makes its kernels
    deterministic and picks the device (``params.seed``, ``params.device``), then calls
    :meth:`fit_torch`, which subclasses write."""

    #: Called after each validated epoch with (epoch, score, higher better): the tuner's
    #: pruning hook. None: nobody listens.
    epoch_hook: Callable[[int, float], None] | None = None

    def fit(self, train: InteractionMatrix, dataset: Dataset | None = None) -> Self:
        with deterministic_torch(self.p.seed):
            return self.fit_torch(train, dataset, torch_device(self.p.device))

    def train_loop(self, *args: Any, **kwargs: Any) -> dict[str, list[float]]:
        """:func:`fit_epochs`, with this model's :attr:`epoch_hook`."""
        kwargs["on_epoch"] = self.epoch_hook
        return fit_epochs(*args, **kwargs)

    @abstractmethod
    def fit_torch(self, train: InteractionMatrix, dataset: Dataset | None, device: Any) -> Self:
        """Train on ``device``; set ``item_embeddings`` (and ``user_embeddings``)."""
