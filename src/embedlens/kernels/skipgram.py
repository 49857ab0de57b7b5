"""Node vectors from a walk corpus: skip-gram with negative sampling (gensim's Word2Vec), or
the factorisation it approximates, a truncated SVD of the walks' positive PMI matrix.

The corpus is the int32 walk matrix of :mod:`embedlens.kernels.walks` (-1 pads stuck walks). For
gensim, rows go as lists of Python ints: gensim keys its vocabulary by any hashable, so no
token is ever turned into a string.

Levy and Goldberg (2014) showed SGNS implicitly factorises the shifted PMI matrix of
(node, context) pairs; with context-distribution smoothing (0.75) and ``U sqrt(S)`` vectors
(Levy, Goldberg and Dagan 2015) the explicit factorisation matches or beats it on MovieLens
at a fiftieth of the time (docs/benchmarks.md), so :func:`walk_pmi_svd` is the default.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from embedlens.core.distributed import (
    World,
    all_gather_rows,
    all_reduce_sum,
    count_work,
    exchange_rows,
    share,
    world,
)
from embedlens.core.errors import DataError
from embedlens.core.progress import bar


def _check_walks(walks: np.ndarray) -> None:
    if walks.ndim != 2:
        raise DataError(f"Walks must be a 2-D matrix, got shape {walks.shape}.")


def walk_sentences(walks: np.ndarray) -> list[list[int]]:
    """Rows of the walk matrix without their -1 padding, as lists of ints."""
    _check_walks(walks)
    if (walks >= 0).all():
        return walks.tolist()
    lengths = (walks >= 0).sum(axis=1)
    return [row[:n] for row, n in zip(walks.tolist(), lengths.tolist(), strict=True)]


def train_skipgram(
    walks: np.ndarray,
    n_nodes: int,
    dim: int = 64,
    window: int = 5,
    negative: int = 5,
    epochs: int = 5,
    seed: int = 42,
    workers: int = 1,
    history: dict[str, list[float]] | None = None,
    sample: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Node vectors (``n_nodes x dim``) and the mask of nodes that occur in the walks.

    ``workers=1`` (default) is bitwise reproducible with ``seed``; more workers train faster
    but interleave updates nondeterministically (gensim's own caveat). ``sample`` down-samples
    very frequent nodes (word2vec's ``sample``; hubs otherwise pull towards everything). The
    loss of each epoch is appended to ``history["loss"]``.
    """
    from gensim.models import Word2Vec
    from gensim.models.callbacks import CallbackAny2Vec

    sentences = walk_sentences(walks)
    losses: list[float] = []

    class _Epochs(CallbackAny2Vec):
        def __init__(self) -> None:
            self.previous = 0.0
            self.pb = bar("skip-gram", total=epochs, unit="epoch")

        def on_epoch_end(self, model: Word2Vec) -> None:
            total = model.get_latest_training_loss()
            losses.append(total - self.previous)  # gensim reports a running total
            self.previous = total
            self.pb.update(1)

        def on_train_end(self, model: Word2Vec) -> None:
            self.pb.close()

    model = Word2Vec(
        sentences, vector_size=dim, window=window, negative=negative, epochs=epochs, sg=1,
        min_count=1, workers=workers, seed=seed, compute_loss=True, callbacks=[_Epochs()],
        sample=sample,
    )
    if history is not None:
        history.setdefault("loss", []).extend(losses)
    vectors = np.zeros((n_nodes, dim), dtype=np.float32)
    keys = np.fromiter(model.wv.index_to_key, dtype=np.int64, count=len(model.wv))
    vectors[keys] = model.wv.vectors
    found = np.zeros(n_nodes, dtype=bool)
    found[keys] = True
    return vectors, found


def window_pairs(walks: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair of walk positions at most ``window`` apart, once each: the earlier node,
    the later node and their distance ``d``, in blocks of increasing ``d`` (within a block,
    walk by walk, position by position). PMI-SVD counts them. Padding (-1) is skipped."""
    _check_walks(walks)
    firsts, seconds, offsets = [], [], []
    for d in range(1, window + 1):
        if d >= walks.shape[1]:
            break
        a, b = walks[:, :-d].ravel(), walks[:, d:].ravel()
        ok = (a >= 0) & (b >= 0)
        firsts.append(a[ok])
        seconds.append(b[ok])
        offsets.append(np.full(firsts[-1].size, d, dtype=np.int32))
    if not firsts:
        empty = np.empty(0, dtype=walks.dtype)
        return empty, empty, np.empty(0, dtype=np.int32)
    return np.concatenate(firsts), np.concatenate(seconds), np.concatenate(offsets)


def owned_pair_counts(walks: np.ndarray, n_nodes: int, window: int) -> sp.csr_matrix:
    """This rank's rows (its :func:`share` of the nodes) of the walks' pair-count matrix:
    each pair at most ``window`` apart counted from both ends, weighted ``(window - d + 1)
    / window`` as word2vec's shrinking window samples it; the rows are numbered from the
    share's first.

    Under torchrun each rank counts its own walks' pairs, sums them, and sends every row to
    the rank that owns it (one all-to-all); the owner adds what it gets. The weights are
    summed as whole numbers (``window - d + 1``, exact in float64), so the counts are the
    same to the bit in whatever order the ranks' sums arrive, and equal one process's."""
    rows, cols, offsets = window_pairs(np.asarray(walks, dtype=np.int32), window)
    weights = (window - offsets + 1).astype(np.float64)
    local = sp.coo_matrix((np.concatenate([weights, weights]),
                           (np.concatenate([rows, cols]), np.concatenate([cols, rows]))),
                          shape=(n_nodes, n_nodes)).tocsr()  # duplicates summed, exactly
    w = world()
    lo, hi = share(n_nodes)
    if w.size > 1:
        index_parts, value_parts = [], []
        for k in range(w.size):
            first, last = share(n_nodes, World(k, w.size))
            block = local[first:last].tocoo()
            index_parts.append(np.stack([block.row + first, block.col], axis=1)
                               .astype(np.int64))
            value_parts.append(block.data)
        got = exchange_rows(index_parts)
        local = sp.coo_matrix((exchange_rows(value_parts), (got[:, 0], got[:, 1])),
                              shape=(n_nodes, n_nodes)).tocsr()
    owned = local if w.size == 1 else local[lo:hi]  # (slicing every row would copy it)
    owned.data /= window
    return owned


def walk_pmi_svd(
    walks: np.ndarray,
    n_nodes: int,
    dim: int = 64,
    window: int = 5,
    seed: int = 42,
    smoothing: float = 0.75,
) -> tuple[np.ndarray, np.ndarray]:
    """Node vectors ``U sqrt(S)`` of the rank-``dim`` SVD of the walks' positive PMI matrix,
    and the mask of nodes that occur in the walks (others get zero vectors).

    Pairs are counted both ways within ``window``; context counts are raised to
    ``smoothing`` (word2vec's 0.75 negative-sampling distribution). Deterministic: ARPACK
    starts from a vector drawn from ``seed``.

    Under torchrun each rank holds its own walks and only its share of the matrix's rows
    (:func:`owned_pair_counts`); ARPACK runs on every rank with products that each rank
    computes for its rows and the ranks put together (the matrix times a vector gathered,
    its transpose times a vector summed), so every rank finds the same vectors, one
    process's to float rounding.
    """
    from scipy.sparse.linalg import LinearOperator, svds

    _check_walks(walks)
    if dim < 1 or window < 1:
        raise DataError("walk_pmi_svd needs dim >= 1 and window >= 1.")
    seen = np.zeros(n_nodes, dtype=np.int64)
    seen[walks[walks >= 0]] = 1
    found = all_reduce_sum(seen) > 0  # on any rank's walks
    vectors = np.zeros((n_nodes, dim), dtype=np.float32)
    counts = owned_pair_counts(walks, n_nodes, window).tocoo()
    lo, hi = share(n_nodes)
    node = all_gather_rows(np.asarray(counts.sum(axis=1), dtype=np.float64).ravel())
    total = node.sum()
    if total == 0:
        return vectors, found
    context = node**smoothing
    pmi = (np.log(counts.data / total) - np.log(node[counts.row + lo] / total)
           - np.log(context[counts.col] / context.sum()))
    keep = pmi > 0
    ppmi = sp.csr_matrix((pmi[keep], (counts.row[keep], counts.col[keep])),
                         shape=(hi - lo, n_nodes))
    rank = min(dim, n_nodes - 1)
    if rank < 1 or all_reduce_sum(np.array([ppmi.nnz]))[0] == 0:
        return vectors, found
    start = np.random.default_rng(seed).standard_normal(n_nodes)
    operator: sp.csr_matrix | LinearOperator = ppmi
    if world().size > 1:
        transposed = ppmi.T.tocsr()

        def product(x: np.ndarray) -> np.ndarray:
            count_work("steps")
            return all_gather_rows(np.ascontiguousarray(ppmi @ x))

        operator = LinearOperator(
            (n_nodes, n_nodes), dtype=np.float64,
            matvec=product,
            rmatvec=lambda y: all_reduce_sum(np.ascontiguousarray(transposed @ y[lo:hi])))
    u, s, _ = svds(operator, k=rank, v0=start)
    order = np.argsort(-s, kind="stable")  # ARPACK returns ascending singular values
    u = u[:, order]
    # a singular vector's sign is arbitrary, and rounding (one process or several) can
    # flip it: each column's largest entry is made positive (no similarity changes)
    u *= np.sign(u[np.abs(u).argmax(axis=0), np.arange(rank)])
    vectors[:, :rank] = u * np.sqrt(s[order])
    return vectors, found
