"""ease-lowrank: EASE's eigen-factorisation as user and item vectors.

At full rank its dot products are EASE's scores on every unseen item, computed here by hand
from the dense inverse; the two solvers and the two sides of the exact one find the same
eigenpairs; and the Gram products go through the rows as the dense formula says.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from embedlens.core.interactions import InteractionMatrix
from embedlens.kernels.sparse import CompactCsr, through_rows
from embedlens.methods.ease_lowrank.model import exact_eigenpairs, randomized_eigenpairs
from embedlens.methods.registry import get_method


def _log(n_users: int, n_items: int, seed: int = 0) -> InteractionMatrix:
    """A random 0/1 log in which every user and every item occurs."""
    rng = np.random.default_rng(seed)
    dense = rng.random((n_users, n_items)) < rng.uniform(0.1, 0.5, size=(n_users, 1))
    dense[np.arange(n_users), rng.integers(0, n_items, n_users)] = True
    dense[rng.integers(0, n_users, n_items), np.arange(n_items)] = True
    u, i = np.nonzero(dense)
    return InteractionMatrix.from_frame(pl.DataFrame({
        "user_id": u.astype(np.int64), "item_id": (i + 100).astype(np.int64),
        "rating": np.ones(u.size), "timestamp": np.arange(u.size, dtype=np.int64)}))


def _ease_scores(x: np.ndarray, lam: float) -> np.ndarray:
    """EASE by its definition: ``x B`` with ``B = I - P / diag(P)``, zero diagonal."""
    p = np.linalg.inv(x.T @ x + lam * np.eye(x.shape[1]))
    b = -p / np.diag(p)
    np.fill_diagonal(b, 0.0)
    return x @ b


@pytest.mark.parametrize(("n_users", "n_items"), [(60, 25), (20, 45)],
                         ids=["more-users", "more-items"])
def test_full_rank_vectors_score_unseen_items_as_ease_does(n_users, n_items):
    train = _log(n_users, n_items)
    x = train.binary().toarray().astype(np.float64)
    model = get_method("ease-lowrank")(dim=n_items, solver="exact", reg=0.5).fit(train)
    lam = 0.5 * x.sum() / n_items  # reg x the mean number of users per item
    users = model.user_vectors(train).vectors.astype(np.float64)
    items = model.item_vectors().vectors.astype(np.float64)
    assert items.shape == (n_items, n_items)
    unseen = x == 0
    np.testing.assert_allclose((users @ items.T)[unseen], _ease_scores(x, lam)[unseen],
                               rtol=1e-4, atol=1e-5)


def test_the_two_sides_and_the_two_solvers_find_the_same_eigenpairs():
    x = _log(80, 50, seed=1).binary()
    by_items, v_items = exact_eigenpairs(x)  # 80 x 50: the items' Gram matrix
    wide = sp.csr_matrix(x.T)  # 50 x 80: the users' side is the smaller one
    s_wide, v_wide = exact_eigenpairs(wide)
    gram = (wide.T @ wide).toarray()
    assert s_wide.size == 50 and v_wide.shape == (80, 50)  # rank 50: the positive ones
    np.testing.assert_allclose(gram @ v_wide, v_wide * s_wide, atol=1e-8)
    np.testing.assert_allclose(v_wide.T @ v_wide, np.eye(s_wide.size), atol=1e-8)
    # XXᵀ and XᵀX share their non-zero eigenvalues
    np.testing.assert_allclose(s_wide, by_items, rtol=1e-10)
    # asked for the 5 largest, the users' side maps only those to the items
    s5, v5 = exact_eigenpairs(wide, 5)
    np.testing.assert_allclose(s5, s_wide[:5])
    np.testing.assert_allclose(v5, v_wide[:, :5], atol=1e-10)
    top, vectors = randomized_eigenpairs(CompactCsr.from_csr(x), 6, iterations=8, seed=0)
    np.testing.assert_allclose(top, by_items[:6], rtol=1e-5)
    # the same directions up to sign
    np.testing.assert_allclose(np.abs((vectors * v_items[:, :6]).sum(axis=0)), 1.0, atol=1e-4)


def test_low_rank_keeps_the_largest_eigenpairs_and_pads_beyond_the_rank():
    train = _log(12, 30, seed=2)  # rank at most 12
    model = get_method("ease-lowrank")(dim=20, solver="exact").fit(train)
    items = model.item_vectors().vectors
    assert items.shape == (30, 20)
    rank = np.linalg.matrix_rank(train.binary().toarray())
    assert np.abs(items[:, :rank]).sum(axis=0).min() > 0
    assert not items[:, rank:].any()
    # the first column is the top eigenvector scaled by sqrt(w) / P_ii: signs fixed
    first = items[:, 0]
    assert first[np.abs(first).argmax()] > 0


def test_auto_takes_the_exact_solver_on_a_small_side_and_agrees_with_randomized():
    train = _log(70, 40, seed=3)
    auto = get_method("ease-lowrank")(dim=8).fit(train)
    exact = get_method("ease-lowrank")(dim=8, solver="exact").fit(train)
    assert np.array_equal(auto.item_vectors().vectors, exact.item_vectors().vectors)
    rand = get_method("ease-lowrank")(dim=8, solver="randomized", iterations=12).fit(train)
    a, b = exact.item_vectors().vectors, rand.item_vectors().vectors
    np.testing.assert_allclose(np.abs(a), np.abs(b), rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("rows", [(0, 9), (3, 7)], ids=["all-rows", "a-share"])
def test_through_rows_is_bt_diag_b_diag_x(rows):
    rng = np.random.default_rng(4)
    b = sp.csr_matrix(rng.random((9, 6)) < 0.4, dtype=np.float32)
    b.data = rng.uniform(0.5, 2, b.nnz).astype(np.float32)
    x = rng.standard_normal((6, 5)).astype(np.float32)
    row_scale = rng.uniform(0.5, 2, 9).astype(np.float32)
    col_scale = rng.uniform(0.5, 2, 6).astype(np.float32)
    out = np.full((6, 5), np.nan, dtype=np.float32)
    through_rows(CompactCsr.from_csr(b), x, out, rows, row_scale, col_scale)
    part = b.toarray()[rows[0]:rows[1]]
    want = part.T @ np.diag(row_scale[rows[0]:rows[1]]) @ part @ np.diag(col_scale) @ x
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
