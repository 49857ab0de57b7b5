import numpy as np
import pytest
import scipy.sparse as sp

from embedlens.kernels.topk import dot_scorer, topk


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
    items, s = topk(lambda b: scores[b], np.array([1, 0]), 4, 3, exclude)
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
    items, _ = topk(lambda b: scores[b], np.array([0]), 3, 3)
    assert items.tolist() == [[2, 1, -1]]
