"""iALS's row solver: what the conjugate-gradient steps converge to, and that solving a row
from a copy of its columns' vectors changes nothing."""

from __future__ import annotations

import os

import numba
import numpy as np
import pytest
import scipy.sparse as sp

from embedlens.methods.ials.model import solve_side


def _problem(seed: int = 0, n_rows: int = 40, n_cols: int = 30, dim: int = 8):
    rng = np.random.default_rng(seed)
    # row lengths from 0 to n_cols, so some rows fit the copy buffer and some do not
    x = sp.csr_matrix(rng.random((n_rows, n_cols)) < rng.random((n_rows, 1)))
    x.sort_indices()
    pattern = (x.indptr.astype(np.int64), x.indices.astype(np.int64))
    rows = (rng.standard_normal((n_rows, dim)) * 0.1).astype(np.float32)
    cols = (rng.standard_normal((n_cols, dim)) * 0.3).astype(np.float32)
    reg = (0.05 * (np.diff(x.indptr) + 1.0)).astype(np.float32)
    return x, pattern, rows, cols, reg


@pytest.mark.parametrize("dim", [8, 10])
def test_enough_steps_solve_each_rows_normal_equations(dim):
    """Rows of 0 to 30 columns and a dimension with and without a remainder of 4: the
    four-wide loops and their tails both solve the same equations."""
    x, pattern, rows, cols, reg = _problem(dim=dim)
    alpha0 = 0.1
    solve_side(pattern, rows, cols, alpha0, reg, steps=60)
    c64 = cols.astype(np.float64)
    gram = c64.T @ c64
    for u in range(x.shape[0]):
        own = c64[x.indices[x.indptr[u]:x.indptr[u + 1]]]
        lhs = own.T @ own + alpha0 * gram + reg[u] * np.eye(cols.shape[1])
        exact = np.linalg.solve(lhs, own.sum(axis=0))
        np.testing.assert_allclose(rows[u], exact, rtol=1e-3, atol=1e-4)


def test_rows_solved_from_a_copy_of_their_columns_are_identical_to_the_bit():
    """Copied or read in place, on any number of threads: the same vectors."""
    x, pattern, rows, cols, reg = _problem(seed=1)
    lengths = np.diff(x.indptr)
    dim = cols.shape[1]
    small = 5 * 4 * dim  # rows of at most 5 columns are copied, longer ones read in place
    assert (lengths <= 5).any() and (lengths > 5).any()
    results = []
    for gather_bytes in (0, small, 1 << 20):
        mine = rows.copy()
        for _ in range(3):
            solve_side(pattern, mine, cols, 0.1, reg, steps=3, gather_bytes=gather_bytes)
        results.append(mine)
    assert not np.array_equal(results[0], rows)  # the solve did move the rows
    assert np.array_equal(results[0], results[1])
    assert np.array_equal(results[0], results[2])
    threads = numba.get_num_threads()
    try:  # one thread, so every row goes through the same buffer
        numba.set_num_threads(1)
        alone = rows.copy()
        for _ in range(3):
            solve_side(pattern, alone, cols, 0.1, reg, steps=3, gather_bytes=small)
    finally:
        numba.set_num_threads(threads)
    assert np.array_equal(results[0], alone)


def test_a_seed_gives_the_same_vectors_in_every_process(tmp_path):
    """Two fresh processes fit the same iALS: the same vectors to the bit. (With numba's
    on-disk cache, the process that compiled the kernel and the one that read it back got
    vectors differing in half their values.)"""
    import subprocess
    import sys

    code = ("import sys, numpy as np\n"
            "from embedlens.data.synthetic import synthetic_movielens\n"
            "from embedlens.evaluation.splits import EvalSplit\n"
            "from embedlens.methods.registry import get_method\n"
            "ds = synthetic_movielens('ml-1m', seed=3, scale=0.1)\n"
            "train = EvalSplit.prepare(ds, 'random-0.2').train\n"
            "v = get_method('ials')(dim=32, epochs=3).fit(train).item_vectors().vectors\n"
            "np.save(sys.argv[1], v)\n")
    for name in ("a.npy", "b.npy"):
        subprocess.run([sys.executable, "-c", code, str(tmp_path / name)], check=True,
                       env={**os.environ, "EMBEDLENS_QUIET": "1"})
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))


def test_the_loss_in_the_history_is_the_papers_loss_at_the_fitted_vectors():
    """The loss comes out of the item solve's residuals, not a pass of its own: it must
    still be the loss of the module docstring at the vectors the fit hands out."""
    from embedlens.core.interactions import InteractionMatrix
    from embedlens.data.synthetic import synthetic_movielens
    from embedlens.methods.registry import get_method

    train = InteractionMatrix.from_frame(synthetic_movielens("ml-1m", seed=1, scale=0.05)
                                         .interactions)
    alpha0, reg, nu = 0.2, 0.01, 1.0
    model = get_method("ials")(dim=16, epochs=3, alpha0=alpha0, reg=reg, nu=nu).fit(train)
    w = model.user_embeddings.aligned(train.users.ids)[0].astype(np.float64)
    h = model.item_vectors().aligned(train.items.ids)[0].astype(np.float64)
    x = train.binary().toarray()
    scores = w @ h.T
    reg_u = reg * (x.sum(axis=1) + alpha0 * x.shape[1]) ** nu
    reg_i = reg * (x.sum(axis=0) + alpha0 * x.shape[0]) ** nu
    loss = (((scores - 1) ** 2 * x).sum() + alpha0 * (scores**2).sum()
            + reg_u @ (w**2).sum(axis=1) + reg_i @ (h**2).sum(axis=1)) / x.sum()
    assert len(model.history["loss"]) == 3
    assert model.history["loss"][0] > model.history["loss"][-1]
    np.testing.assert_allclose(model.history["loss"][-1], loss, rtol=1e-4)
