"""Cleora: the propagation equals the explicit clique/star Markov matrices; known structure."""

import numpy as np
import pytest
import scipy.sparse as sp

from embedlens.errors import DataError
from embedlens.evaluate import EvalSplit, evaluate_model
from embedlens.models import get_model_class
from embedlens.models.cleora import hash_init, propagate, whiten


def l2(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(params=[8, 150], ids=["d8", "d150"])
def hypergraph(request):
    """A random hypergraph and start vectors; d150 spans three column blocks (64+64+22)."""
    rng = np.random.default_rng(0)
    dense = (rng.random((30, 12)) < 0.3).astype(np.float32)
    dense[dense.sum(1) == 0, 0] = 1
    dense[0, dense.sum(0) == 0] = 1  # every item in some hyperedge
    b = sp.csr_matrix(dense)
    return b, rng.uniform(-1, 1, size=(12, request.param)).astype(np.float32)


def test_clique_left_markov_equals_explicit_matrix(hypergraph):
    b, x0 = hypergraph
    bd = b.toarray()
    k = bd.sum(1)
    a = bd.T @ np.diag(1 / k**2) @ bd  # pycleora's clique with self-loops
    markov = a / a.sum(1, keepdims=True)  # left Markov (row-normalised)
    x = x0.copy()
    for _ in range(3):
        x = l2(markov @ x)
    assert np.allclose(propagate(b, x0, 3, "clique", "left"), x, atol=1e-5)


def test_symmetric_normalisation(hypergraph):
    b, x0 = hypergraph
    bd = b.toarray()
    a = bd.T @ np.diag(1 / bd.sum(1) ** 2) @ bd
    d = 1 / np.sqrt(a.sum(1))
    sym = d[:, None] * a * d[None, :]
    x = x0.copy()
    for _ in range(2):
        x = l2(sym @ x)
    assert np.allclose(propagate(b, x0, 2, "clique", "symmetric"), x, atol=1e-5)


def test_star_expansion_is_bipartite_mean(hypergraph):
    b, x0 = hypergraph
    bd = b.toarray()
    x = x0.copy()
    for _ in range(2):
        x = l2(bd.T @ l2(bd @ x))
    assert np.allclose(propagate(b, x0, 2, "star", "left"), x, atol=1e-5)


@pytest.mark.parametrize("expansion", ["clique", "star"])
def test_torch_path_matches_numba(hypergraph, expansion):
    pytest.importorskip("torch")
    b, x0 = hypergraph
    cpu = propagate(b, x0, 3, expansion, "symmetric")
    tor = propagate(b, x0, 3, expansion, "symmetric", device="torch")
    assert np.allclose(cpu, tor, atol=1e-5)


def test_hash_init_depends_only_on_seed_and_id():
    a = hash_init(np.array([5, 7, 9]), 16, seed=3)
    b = hash_init(np.array([9, 100, 5]), 16, seed=3)
    assert np.array_equal(a[0], b[2]) and np.array_equal(a[2], b[0])
    assert not np.array_equal(a, hash_init(np.array([5, 7, 9]), 16, seed=4))
    assert a.min() >= -1 and a.max() <= 1
    s = hash_init(np.array(["x", "y"]), 4, 0)
    assert np.array_equal(s[0], hash_init(np.array(["x"]), 4, 0)[0])


def test_whitening_gives_identity_covariance():
    x = np.random.default_rng(1).standard_normal((500, 6)) @ np.diag([5, 1, 1, 0.5, 3, 2])
    cov = np.cov(whiten(x.astype(np.float32)), rowvar=False)
    assert np.allclose(cov, np.eye(6), atol=1e-3)


def test_two_communities_separate():
    """Users 0-99 rate items 0-199, users 100-199 items 200-399: the two blocks separate."""
    from conftest import log
    from embedlens.prep import InteractionMatrix

    rng = np.random.default_rng(0)
    rows = [(u, int(i), 5.0, t) for t, u in enumerate(range(200))
            for i in rng.choice(200, 30, replace=False) + (0 if u < 100 else 200)]
    train = InteractionMatrix.from_frame(log(rows))
    for params in ({"dim": 32}, {"expansion": "clique", "iterations": 3, "post": "none"}):
        m = get_model_class("cleora")(**params).fit(train)
        v = m.item_embeddings.normalized().vectors
        sim = v @ v.T
        np.fill_diagonal(sim, -np.inf)
        block = np.arange(400) < 200
        neighbours = np.argsort(-sim, axis=1)[:, :10]
        purity = (block[neighbours] == block[:, None]).mean()
        assert purity > 0.95, (params, purity)


def test_cleora_beats_popularity_on_random_split(ml100k):
    data = EvalSplit.prepare(ml100k, "random-0.2")
    cleora = evaluate_model(get_model_class("cleora")().fit(data.train), data)
    pop = evaluate_model(get_model_class("pop")().fit(data.train), data)
    assert cleora["ndcg@10"] > pop["ndcg@10"] + pop["ndcg@10_ci95"]


def test_bad_parameters(ml100k):
    data = EvalSplit.prepare(ml100k, "random-0.2")
    with pytest.raises(DataError, match="expansion"):
        get_model_class("cleora")(expansion="triangle").fit(data.train)
    with pytest.raises(DataError, match="min_rating"):
        get_model_class("cleora")(min_rating=6).fit(data.train)


def test_pattern_incidence_sorts_dedups_and_maps_ids():
    from embedlens.prep.encoding import pattern_incidence

    users = np.array([50, 50, 90, 50, 90, 70, 50], dtype=np.int32)
    items = np.array([300, 100, 100, 300, 200, 200, 100], dtype=np.int64)
    b, user_ids, item_ids = pattern_incidence(users, items)
    assert user_ids.tolist() == [50, 70, 90] and item_ids.tolist() == [100, 200, 300]
    assert b.toarray().tolist() == [[1, 0, 1], [0, 1, 0], [1, 1, 0]]  # repeats counted once
    assert b.indices.dtype == np.int32 and b.data.strides == (0,)
    with pytest.raises(DataError, match="integer"):
        pattern_incidence(np.array(["a"]), np.array([1]))
    with pytest.raises(DataError, match="empty"):
        pattern_incidence(np.array([], dtype=int), np.array([], dtype=int))
    with pytest.raises(DataError, match="re-number them first"):
        pattern_incidence(np.array([1, 2]), np.array([0, 1 << 29]))
    with pytest.raises(DataError, match="fit_log takes ids only"):
        get_model_class("cleora")(weighted=True).fit_log(users, items)


def test_fit_log_equals_fit_on_the_encoded_log(ml100k):
    from embedlens.prep.encoding import InteractionMatrix

    df = ml100k.interactions
    params = {"expansion": "clique", "iterations": 3, "post": "none", "dim": 96}
    model = get_model_class("cleora")
    full = model(**params).fit(InteractionMatrix.from_frame(df)).item_embeddings
    lean = model(**params).fit_log(df["user_id"].to_numpy(), df["item_id"].to_numpy())
    lean = lean.item_embeddings
    assert np.array_equal(full.ids, lean.ids) and np.array_equal(full.counts, lean.counts)
    assert np.allclose(full.vectors, lean.vectors, atol=1e-6)
