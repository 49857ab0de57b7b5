"""iALS: implicit alternating least squares with the tuning of Rendle et al. (2021/22).

Hu, Koren and Volinsky (2008) fit user vectors ``w_u`` and item vectors ``h_i`` to the
implicit matrix; Rendle, Krichene, Zhang and Koren ("Revisiting the Performance of iALS on
Item Recommendation Benchmarks", RecSys 2022) showed that with the right loss and tuning it
matches far newer methods. Their loss, minimised here::

    sum_{(u,i) observed} (w_u . h_i - 1)^2  +  alpha0 * sum_{all u, i} (w_u . h_i)^2
    + reg * ( sum_u (|I_u| + alpha0 |I|)^nu ||w_u||^2 + sum_i (|U_i| + alpha0 |U|)^nu ||h_i||^2 )

``alpha0`` is the (small) weight of every unobserved pair, and the regularisation of a row
grows with how often it occurs (``nu = 1``). With the items fixed, each user's optimum
solves ``(sum_{i in I_u} h_i h_i^T + alpha0 H^T H + reg_u I) w_u = sum_{i in I_u} h_i``;
the sides alternate. Each solve takes ``cg_steps`` conjugate-gradient steps from the current
vectors (implicit's approach), one row per thread with everything in cache: a step costs
``O(|I_u| * dim + dim^2)`` for a row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

import numba
import numpy as np
import scipy.sparse as sp
from numba import njit, prange
from threadpoolctl import threadpool_limits

from embedlens.core.distributed import all_gather_rows, all_reduce_sum, share
from embedlens.core.embeddings import Embeddings
from embedlens.core.interactions import InteractionMatrix
from embedlens.core.params import param
from embedlens.core.progress import bar
from embedlens.data.dataset import Dataset
from embedlens.methods.base import EmbeddingModel, EmbeddingParams, item_metadata, seed_param


@dataclass(frozen=True)
class IALSParams(EmbeddingParams):
    owner: ClassVar[str] = "ials"
    dim: int = param(128, "vector dimension", ge=1, log=True, tune=(32, 512))
    epochs: int = param(16, "alternations (each solves users, then items)", ge=1, tune=(4, 32))
    alpha0: float = param(0.1, "weight of every unobserved (user, item) pair", gt=0,
                          log=True, tune=(1e-3, 1.0))
    reg: float = param(0.005, "L2 regularisation, scaled by row frequency", ge=0, log=True,
                       tune=(1e-4, 1e-1))
    nu: float = param(1.0, "exponent of the frequency scaling of the regularisation "
                      "(0: plain L2)", ge=0, le=2, tune=(0.0, 1.0))
    init_std: float = param(0.1, "standard deviation of the initial vectors (divided by "
                            "sqrt(dim))", gt=0, log=True)
    cg_steps: int = param(3, "conjugate-gradient steps per solve", ge=1, le=64)
    seed: int = seed_param()


class IALSModel(EmbeddingModel):
    """iALS (Hu et al. 2008, as revisited by Rendle et al. 2022): learned user and item
    vectors, scored by dot product."""

    name = "ials"
    Params = IALSParams

    def fit(self, train: InteractionMatrix, dataset: Dataset | None = None) -> Self:
        p = self.p
        x = train.binary()
        xt = sp.csr_matrix(x.T)
        n_users, n_items = x.shape
        rng = np.random.default_rng(p.seed)
        scale = p.init_std / np.sqrt(p.dim)
        users = (rng.standard_normal((n_users, p.dim)) * scale).astype(np.float32)
        items = (rng.standard_normal((n_items, p.dim)) * scale).astype(np.float32)
        user_reg = _frequency_reg(x, p.alpha0, p.reg, p.nu)
        item_reg = _frequency_reg(xt, p.alpha0, p.reg, p.nu)
        by_user = (x.indptr.astype(np.int64), x.indices.astype(np.int64))
        by_item = (xt.indptr.astype(np.int64), xt.indices.astype(np.int64))
        history: dict[str, list[float]] = {"loss": []}
        # BLAS only forms each side's small Gram matrix: on one thread, since OpenBLAS's idle
        # threads spin for a while after a call and took cores from the numba solve that
        # follows (ML-100k: 0.24 s a fit with two BLAS threads, 0.19 s with one)
        with threadpool_limits(1, "blas"), bar("ials", total=p.epochs, unit="epoch") as pb:
            for _ in range(p.epochs):
                solve_side(by_user, users, items, p.alpha0, user_reg, p.cg_steps)
                # the item solve hands back every term but the users' regularisation
                loss = solve_side(by_item, items, users, p.alpha0, item_reg, p.cg_steps)
                history["loss"].append((loss + penalty(users, user_reg)) / max(1, x.nnz))
                pb.update(1)
        self.history = history
        self.item_embeddings = Embeddings(train.items.ids, items, "item", item_metadata(dataset))
        self.user_embeddings = Embeddings(train.users.ids, users, "user")
        return self


def _frequency_reg(x: sp.csr_matrix, alpha0: float, reg: float, nu: float) -> np.ndarray:
    """Each row's regularisation ``reg * (count + alpha0 * n_cols) ** nu``."""
    counts = np.diff(x.indptr).astype(np.float64)
    return (reg * (counts + alpha0 * x.shape[1]) ** nu).astype(np.float32)


#: Bytes of column vectors a row is solved from after copying them into its thread's own
#: buffer (all threads together; each gets its part, at least 256 KiB). A row's ``cg_steps +
#: 1`` passes then read one contiguous block (from the core's cache for most rows) instead of
#: rows scattered over a table larger than the cache. At the ML-25M shape the item side's
#: long rows (5,705 movies with over 512 users hold 69% of the ratings, up to 47,773 users:
#: 24 MB of vectors) are what this buffer is sized for (``benchmarks/ials_vs_implicit.py``).
GATHER_BYTES = 128 * 2**20
#: The least buffer a thread gets, whatever the thread count: half a 1 MiB L2 cache.
MIN_GATHER_BYTES = 256 * 1024
#: Column tables up to this size are read where they are: they stay in the caches (the
#: ML-100k and ML-1M shapes: 0.5-3 MB at 128 factors), so a copy would be one more pass.
GATHER_TABLES_ABOVE = 4 * 2**20


#: numba compiles fastmath code differently when it compiles it fresh and when it reads it
#: from its on-disk cache (numba issue 10617): the vectorised sums add up in another order,
#: and iALS's vectors differed in about half their values (up to 1.5e-5) between the first
#: process after a change and every later one, so a seed did not give the same vectors (the
#: flaky contract test, the tuned means that moved between runs). These kernels are
#: therefore compiled in every process (about 7 s, once), never read from the cache: a
#: kernel that sums in a fixed order is the same everywhere but 1.7x slower.
_CACHE = False


@njit(parallel=True, fastmath=True, cache=_CACHE)
def _cg_rows(indptr, indices, rows, cols, gram, alpha0, reg, steps, work, gathered,
             objective):  # pragma: no cover - numba
    """In place, for every row ``u``: ``steps`` conjugate-gradient steps on
    ``(sum_i c_i c_i^T + alpha0 G + reg_u I) x = sum_i c_i`` from ``x = rows[u]`` (``c_i``: the
    row's columns' vectors); ``objective[u]`` gets the row's part of the loss at the new
    ``x`` (:func:`_cg_row`). Each row is solved by one thread, so the result does not depend
    on the number of threads.

    ``work`` (threads x 4 x dim) and ``gathered`` (threads x cap x dim) are each pool
    thread's own buffers, allocated by the caller. A row with at most ``cap`` columns first
    copies its columns' vectors into ``gathered``: the ``steps + 1`` passes over them then
    read one contiguous block, most often from the core's cache, instead of rows scattered
    over a table larger than the cache (at the ML-25M shape, 59k x 128 floats one way and
    162k x 128 the other), which is what made the solve slow down faster than the log grew.
    The same arithmetic runs on the same values in the same order either way, so the vectors
    are identical to the bit."""
    n, dim = rows.shape
    cap = gathered.shape[1]
    own = np.arange(max(cap, 1))
    n_chunks = min(n, 256)
    for chunk in prange(n_chunks):
        thread = numba.get_thread_id()
        resid = work[thread, 0]
        direction = work[thread, 1]
        applied = work[thread, 2]
        target = work[thread, 3]
        local = gathered[thread]
        for u in range(chunk * n // n_chunks, (chunk + 1) * n // n_chunks):
            lo, hi = indptr[u], indptr[u + 1]
            if hi - lo <= cap:
                for k in range(hi - lo):
                    c = cols[indices[lo + k]]
                    for j in range(dim):
                        local[k, j] = c[j]
                vectors, index, first, last = local, own, 0, hi - lo
            else:
                vectors, index, first, last = cols, indices, lo, hi
            objective[u] = _cg_row(rows[u], vectors, index, first, last, gram, alpha0, reg[u],
                                   steps, resid, direction, applied, target)


@njit(inline="always", fastmath=True, cache=_CACHE)
def _cg_row(x, cols, indices, lo, hi, gram, alpha0, reg, steps, resid, direction, applied,
            target):  # pragma: no cover - numba
    """``steps`` conjugate-gradient steps for one row, in place on ``x``; its columns'
    vectors are ``cols[indices[lo:hi]]``. Returns the row's part of the loss at the new
    ``x``, ``sum_i (c_i . x - 1)^2 + alpha0 x^T G x + reg |x|^2``, which is
    ``x^T A x - 2 b^T x + n`` for the row's system ``A x = b`` over ``n`` columns, and so
    ``n - b . x - r . x`` with the residual ``r = b - A x`` the steps keep: the loss costs no
    pass over the columns."""
    dim = x.size
    # resid = b - A x, with b = sum_i c_i summed in the same pass over the columns as A x
    _apply_gram(x, gram, alpha0, reg, applied)
    for j in range(dim):
        target[j] = 0.0
    _add_columns(x, cols, indices, lo, hi, applied, target, True)
    for j in range(dim):
        resid[j] = target[j] - applied[j]
    rs = np.float32(0.0)
    for j in range(dim):
        direction[j] = resid[j]
        rs += resid[j] * resid[j]
    for _ in range(steps):
        if rs <= 1e-20:
            break
        _apply(direction, cols, indices, lo, hi, gram, alpha0, reg, applied)
        curv = np.float32(0.0)
        for j in range(dim):
            curv += direction[j] * applied[j]
        if curv <= 0:
            break
        step = rs / curv
        rs_new = np.float32(0.0)
        for j in range(dim):
            x[j] += step * direction[j]
            resid[j] -= step * applied[j]
            rs_new += resid[j] * resid[j]
        ratio = rs_new / rs
        for j in range(dim):
            direction[j] = resid[j] + ratio * direction[j]
        rs = rs_new
    fitted = 0.0  # float64: n can be tens of thousands, the loss a fraction of it
    for j in range(dim):
        fitted += np.float64(x[j]) * (np.float64(target[j]) + np.float64(resid[j]))
    return np.float64(hi - lo) - fitted


@njit(inline="always", fastmath=True, cache=_CACHE)
def _apply(v, cols, indices, lo, hi, gram, alpha0, reg, out):  # pragma: no cover - numba
    """``out = sum_i c_i (c_i . v) + alpha0 G v + reg v`` for one row's columns."""
    _apply_gram(v, gram, alpha0, reg, out)
    _add_columns(v, cols, indices, lo, hi, out, out, False)


@njit(inline="always", fastmath=True, cache=_CACHE)
def _dot4(r0, r1, r2, r3, v):  # pragma: no cover - numba
    """The four dot products ``(r0 . v, r1 . v, r2 . v, r3 . v)`` in one pass over ``v``: the
    four-wide step of both :func:`_add_columns` (four columns) and :func:`_apply_gram` (four
    rows of ``G``)."""
    s0 = np.float32(0.0)
    s1 = np.float32(0.0)
    s2 = np.float32(0.0)
    s3 = np.float32(0.0)
    for j in range(v.size):
        vj = v[j]
        s0 += r0[j] * vj
        s1 += r1[j] * vj
        s2 += r2[j] * vj
        s3 += r3[j] * vj
    return s0, s1, s2, s3


# _add_columns and _apply_gram are called, not inlined: inlined in both passes of
# _cg_row, their unrolled loops doubled the kernel's compile time (5.7 s to 11 s, paid by
# every process that fits iALS) and ran no faster
@njit(fastmath=True, cache=_CACHE)
def _add_columns(v, cols, indices, lo, hi, out, total, summed):  # pragma: no cover - numba
    """``out += sum_i c_i (c_i . v)`` over one row's columns, and ``total += sum_i c_i``
    when ``summed``. Four columns at a time: one pass over ``v`` gives their four products
    and one pass over ``out`` adds them, half the loads and stores of one column at a time
    (on the ML-100k shape this loop ran at 15 multiply-adds per ns a core one column at a
    time and 29 four at a time)."""
    dim = v.size
    p = lo
    while p + 4 <= hi:
        c0 = cols[indices[p]]
        c1 = cols[indices[p + 1]]
        c2 = cols[indices[p + 2]]
        c3 = cols[indices[p + 3]]
        s0, s1, s2, s3 = _dot4(c0, c1, c2, c3, v)
        for j in range(dim):
            out[j] += s0 * c0[j] + s1 * c1[j] + s2 * c2[j] + s3 * c3[j]
        if summed:
            for j in range(dim):
                total[j] += c0[j] + c1[j] + c2[j] + c3[j]
        p += 4
    while p < hi:
        c = cols[indices[p]]
        s = np.float32(0.0)
        for j in range(dim):
            s += c[j] * v[j]
        for j in range(dim):
            out[j] += s * c[j]
        if summed:
            for j in range(dim):
                total[j] += c[j]
        p += 1


@njit(fastmath=True, cache=_CACHE)
def _apply_gram(v, gram, alpha0, reg, out):  # pragma: no cover - numba
    """``out = alpha0 G v + reg v``: the part of ``A v`` shared by every row. Four rows of
    ``G`` at a time, so one load of ``v[j]`` serves four sums."""
    dim = v.size
    a = 0
    while a + 4 <= dim:
        s0, s1, s2, s3 = _dot4(gram[a], gram[a + 1], gram[a + 2], gram[a + 3], v)
        out[a + 0] = alpha0 * s0 + reg * v[a + 0]
        out[a + 1] = alpha0 * s1 + reg * v[a + 1]
        out[a + 2] = alpha0 * s2 + reg * v[a + 2]
        out[a + 3] = alpha0 * s3 + reg * v[a + 3]
        a += 4
    while a < dim:
        g = gram[a]
        acc = np.float32(0.0)
        for b in range(dim):
            acc += g[b] * v[b]
        out[a] = alpha0 * acc + reg * v[a]
        a += 1


def solve_side(pattern: tuple[np.ndarray, np.ndarray], rows: np.ndarray, cols: np.ndarray,
               alpha0: float, reg: np.ndarray, steps: int,
               gather_bytes: int | None = None) -> float:
    """``steps`` conjugate-gradient steps, in place on ``rows`` (float32, C order), on every
    row's normal equations with the other side ``cols`` fixed (see the module docstring).
    ``pattern`` is the rows' (indptr, indices) over the columns of ``cols``; rows whose
    column vectors fit in ``gather_bytes`` (a thread's buffer; by default its part of
    ``GATHER_BYTES``, at least ``MIN_GATHER_BYTES``, and none when ``cols`` is at most
    ``GATHER_TABLES_ABOVE``; 0: never) are solved from a copy of them (the result is the
    same).

    Returns the loss's terms that involve ``rows`` (observed errors, the unobserved weight
    and ``rows``' regularisation) at the new ``rows``: the loss is that plus the other side's
    regularisation."""
    dim = rows.shape[1]
    # float32 like the tables (OpenBLAS sums in blocks: within 1e-6 of a float64 Gram at the
    # ML-20M shape); forming it in float64 took 2.6 ms of each 6 ms half-sweep at ML-100k
    gram = cols.T @ cols
    threads = numba.get_num_threads()  # the ids numba.get_thread_id() returns in this call
    work = np.zeros((threads, 4, dim), np.float32)
    longest = int(np.diff(pattern[0]).max(initial=0))
    if gather_bytes is not None:
        per_thread = gather_bytes
    elif cols.nbytes <= GATHER_TABLES_ABOVE:
        per_thread = 0
    else:
        per_thread = max(MIN_GATHER_BYTES, GATHER_BYTES // threads)
    gathered = np.zeros((threads, min(longest, per_thread // (4 * dim)), dim), np.float32)
    # under torchrun each rank solves its share of the rows (a row's solve reads only the
    # fixed side, so it is the same wherever it runs) and the shares are gathered back
    lo, hi = share(rows.shape[0], kind="rows solved")
    mine = rows[lo:hi]  # a view: solved in place
    objective = np.zeros(hi - lo, np.float64)
    _cg_rows(pattern[0][lo:hi + 1], pattern[1], mine, cols, gram, np.float32(alpha0),
             reg[lo:hi].astype(np.float32), steps, work, gathered, objective)
    if hi - lo != rows.shape[0]:
        rows[:] = all_gather_rows(mine)
    return float(all_reduce_sum(np.array([objective.sum()]))[0])


def penalty(rows: np.ndarray, reg: np.ndarray) -> float:
    """The regularisation of one side, ``sum_u reg_u |rows_u|^2``."""
    return float(reg.astype(np.float64) @ np.einsum("ij,ij->i", rows, rows, dtype=np.float64))
