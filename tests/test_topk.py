import numpy as np
import pytest
import scipy.sparse as sp

from embedlens.kernels.topk import FixedScorer, dot_scorer, prior_scorer, topk


def brute(scores, exclude, k):
    s = scores.astype(np.float64).copy()
    s[exclude.toarray() > 0] = -np.inf
    out = []
    for row in s:
        order = sorted((j for j in range(row.size) if np.isfinite(row[j])),
                       key=lambda j: (-row[j], j))
        out.append((order + [-1] * k)[:k])
    return np.array(out)


@pytest.mark.parametrize("batch", [1, 7, 1000])
def test_matches_brute_force_with_ties_and_exclusions(batch):
    rng = np.random.default_rng(0)
    n_users, n_items, k = 50, 40, 10
    u = rng.integers(-2, 3, size=(n_users, 3)).astype(np.float32)  # small ints: many ties
    v = rng.integers(-2, 3, size=(n_items, 3)).astype(np.float32)
    exclude = sp.random(n_users, n_items, density=0.3, random_state=1, format="csr")
    users = np.arange(n_users)
    items, scores = topk(dot_scorer(u, v), users, n_items, k, exclude, batch_size=batch)
    expected = brute(u @ v.T, exclude, k)
    assert (items == expected).all()
    full = u @ v.T
    assert np.allclose(scores, np.take_along_axis(full, items, axis=1))


def test_subset_of_users_and_padding():
    # user 1 has seen 3 of 4 items: one candidate, then padding
    scores = np.array([[4, 3, 2, 1], [1, 2, 3, 4]], dtype=np.float32)
    exclude = sp.csr_matrix(np.array([[0, 0, 0, 0], [1, 1, 0, 1]]))
    items, s = topk(lambda b, out=None: scores[b], np.array([1, 0]), 4, 3, exclude)
    assert items.tolist() == [[2, -1, -1], [0, 1, 2]]
    assert s[0, 1] == -np.inf


def test_invalid_items_and_users_never_recommended():
    u = np.ones((2, 2), dtype=np.float32)
    v = np.array([[5, 5], [1, 1], [2, 2]], dtype=np.float32)
    ok_users, ok_items = np.array([True, False]), np.array([False, True, True])
    scorer = dot_scorer(u, v, user_ok=ok_users, item_ok=ok_items)
    items, _ = topk(scorer, np.array([0, 1]), 3, 3)
    assert items.tolist() == [[2, 1, -1], [-1, -1, -1]]


def test_nan_scores_skipped():
    scores = np.array([[np.nan, 1.0, 2.0]], dtype=np.float32)
    items, _ = topk(lambda b, out=None: scores[b], np.array([0]), 3, 3)
    assert items.tolist() == [[2, 1, -1]]


@pytest.mark.parametrize("k", [1, 10, 70])
def test_many_items_blocks_match_brute_force(k):
    # more items than one block of the kernel's quick check, ties, NaN and -inf among them
    rng = np.random.default_rng(3)
    n_users, n_items = 30, 300
    scores = rng.integers(0, 40, size=(n_users, n_items)).astype(np.float32)
    scores[rng.random(scores.shape) < 0.05] = np.nan
    scores[rng.random(scores.shape) < 0.05] = -np.inf
    exclude = sp.random(n_users, n_items, density=0.2, random_state=2, format="csr")
    items, _ = topk(lambda b, out=None: scores[b], np.arange(n_users), n_items, k, exclude)
    s = np.nan_to_num(scores, nan=-np.inf)
    assert (items == brute(s, exclude, k)).all()


def test_fixed_row_walk_equals_the_full_scan():
    rng = np.random.default_rng(4)
    row = rng.integers(0, 5, size=200).astype(np.float32)  # ties everywhere
    row[[3, 50]] = -np.inf
    row[7] = np.nan
    exclude = sp.random(40, 200, density=0.5, random_state=5, format="csr")
    users = np.array([5, 0, 39, 5])
    fixed = topk(FixedScorer(row), users, 200, 12, exclude)
    scanned = topk(lambda b, out=None: np.tile(row, (b.size, 1)), users, 200, 12, exclude)
    assert (fixed[0] == scanned[0]).all() and np.array_equal(fixed[1], scanned[1])
    # a user who has seen all but two items gets two, then padding
    full = sp.csr_matrix(np.r_[np.zeros(2), np.ones(198)][None, :])
    items, _ = topk(FixedScorer(np.arange(200, dtype=np.float32)), np.array([0]), 200, 3,
                    full)
    assert items.tolist() == [[1, 0, -1]]


def test_scorer_fills_the_buffer_it_is_given():
    u = np.arange(6, dtype=np.float32).reshape(3, 2)
    v = np.ones((4, 2), dtype=np.float32)
    buf = np.zeros((2, 4), dtype=np.float32)
    got = dot_scorer(u, v)(np.array([2, 0]), out=buf)
    assert got is buf and buf.tolist() == [[9.0] * 4, [1.0] * 4]


def test_random_scores_are_each_users_stream():
    from numba import njit

    from embedlens.core.rng import next_float, stream
    from embedlens.methods.baselines.random import RandomModel

    @njit
    def draws(seed, user, n):
        state = np.empty(1, dtype=np.uint64)
        state[0] = stream(seed, user)
        return np.array([next_float(state) for _ in range(n)], dtype=np.float32)

    class Train:
        items = range(50)

    scores = RandomModel(seed=7).scorer(Train())(np.array([3, 11]))  # type: ignore[arg-type]
    assert np.array_equal(scores[0], draws(7, 3, 50))
    assert np.array_equal(scores[1], draws(7, 11, 50))


def test_prior_scorer_standardises_each_user_then_adds_the_prior() -> None:
    raw = np.array([[1.0, 2.0, 3.0, -np.inf],    # scored items: mean 2, sd sqrt(2/3)
                    [4.0, 4.0, 4.0, 4.0],         # all equal: ranked by the prior alone
                    [-np.inf] * 4], dtype=np.float32)  # a user without a vector

    def scorer(users: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return raw[users].copy()

    prior = np.array([1.0, 0.0, -1.0, 9.0])
    got = prior_scorer(scorer, prior, 0.5)(np.arange(3))
    sd = np.sqrt(2 / 3)
    np.testing.assert_allclose(got[0, :3], [-1 / sd + 0.5, 0.0, 1 / sd - 0.5], rtol=1e-6)
    assert got[0, 3] == -np.inf
    np.testing.assert_allclose(got[1], 0.5 * prior, rtol=1e-6)
    assert np.isneginf(got[2]).all()
    assert prior_scorer(scorer, prior, 0.0) is scorer  # no prior: the scorer untouched
