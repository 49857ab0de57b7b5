"""Full-catalogue top-K for every user: embedlens' kernel vs plain NumPy argpartition.

Usage: python benchmarks/topk_eval.py [--shapes ml-100k,ml-1m,ml-20m] [--dim 64] [--k 10]

ml-100k uses the real data (EMBEDLENS_TEST_DATA or ../shared/movielens); ml-1m and ml-20m use
synthetic logs of the same shape. Vectors are random (the ranking work does not depend on
them); train items are excluded for both implementations, and their outputs are compared.
"""

from __future__ import annotations

import argparse
from functools import partial

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_info

from _common import ML_DIR, print_table, timed
from embedlens.core.interactions import InteractionMatrix
from embedlens.core.progress import set_quiet
from embedlens.kernels.topk import dot_scorer, topk


def numpy_topk(u: np.ndarray, v: np.ndarray, exclude: sp.csr_matrix, k: int, batch: int = 2048):
    """The straightforward baseline: score a batch, mask seen, argpartition, sort the K."""
    out = np.empty((u.shape[0], k), dtype=np.int64)
    vt = v.T
    for start in range(0, u.shape[0], batch):
        s = u[start : start + batch] @ vt
        block = exclude[start : start + batch]
        rows = np.repeat(np.arange(block.shape[0]), np.diff(block.indptr))
        s[rows, block.indices] = -np.inf
        part = np.argpartition(-s, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(s, part, axis=1), axis=1, kind="stable")
        out[start : start + batch] = np.take_along_axis(part, order, axis=1)
    return out


def load_shape(name: str) -> InteractionMatrix:
    if name == "ml-100k":
        from embedlens.data import load_movielens

        return InteractionMatrix.from_frame(load_movielens(name, data_dir=ML_DIR).interactions)
    from embedlens.data import synthetic_movielens

    return InteractionMatrix.from_frame(synthetic_movielens(name, seed=0).interactions)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shapes", default="ml-100k,ml-1m,ml-20m")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--k", type=int, default=10)
    args = ap.parse_args()
    set_quiet(True)
    # warm the numba kernels so compile time is not counted
    topk(dot_scorer(np.ones((2, 2), np.float32), np.ones((3, 2), np.float32)), np.arange(2), 3, 2)
    rows = []
    for shape in args.shapes.split(","):
        m = load_shape(shape)
        n_users, n_items = m.shape
        rng = np.random.default_rng(0)
        u = rng.standard_normal((n_users, args.dim), dtype=np.float32)
        v = rng.standard_normal((n_items, args.dim), dtype=np.float32)
        users = np.arange(n_users)
        scorer = dot_scorer(u, v)
        (ours, _), t_ours = timed(partial(topk, scorer, users, n_items, args.k, m.ratings))
        base, t_np = timed(partial(numpy_topk, u, v, m.ratings, args.k))
        agree = float((ours == base).mean())
        rows.append({
            "shape": shape, "users": n_users, "items": n_items, "train nnz": m.ratings.nnz,
            "dim": args.dim, "numpy argpartition s": t_np, "embedlens s": t_ours,
            "speed-up": t_np / t_ours, "same top-K": f"{agree:.4%}",
        })
    blas = ", ".join(f"{i['internal_api']} {i['num_threads']} threads" for i in threadpool_info())
    print_table(rows, f"Top-{args.k} for all users (BLAS: {blas})")


if __name__ == "__main__":
    main()
