"""Cleora: the propagation equals the explicit clique/star Markov matrices; known structure."""

import numpy as np
import pytest
import scipy.sparse as sp

from embedlens.core.errors import DataError
from embedlens.evaluation.evaluate import evaluate_model
from embedlens.evaluation.splits import EvalSplit
from embedlens.methods.cleora.propagate import hash_init, propagate, whiten
from embedlens.methods.registry import get_method


def l2(x):
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)


def clique(bd):
    """Cleora's clique matrix with self-loops: Bᵀ diag(1/k²) B (empty hyperedges add 0)."""
    k = bd.sum(1)
    return bd.T @ np.diag(np.divide(1, k**2, out=np.zeros_like(k), where=k > 0)) @ bd


@pytest.fixture(params=[(8, 1 << 22), (150, 1 << 22), (150, 7 * 150 * 4)],
                ids=["d8", "d150", "d150-chunks-of-7"])
def hypergraph(request, monkeypatch):
    """A random hypergraph and start vectors. d150 gives each thread a column slice that is
    not a multiple of 16; the third case propagates 7 hyperedges per chunk (5 chunks)."""
    import embedlens.kernels.sparse as sparse

    dim, chunk_bytes = request.param
    monkeypatch.setattr(sparse, "CHUNK_BYTES", chunk_bytes)
    rng = np.random.default_rng(0)
    dense = (rng.random((32, 12)) < 0.3).astype(np.float32)
    dense[dense.sum(1) == 0, 0] = 1
    dense[0, dense.sum(0) == 0] = 1  # every item in some hyperedge
    dense[31] = 0  # a hyperedge with no item passes nothing on
    b = sp.csr_matrix(dense)
    return b, rng.uniform(-1, 1, size=(12, dim)).astype(np.float32)


def test_clique_left_markov_equals_explicit_matrix(hypergraph):
    b, x0 = hypergraph
    a = clique(b.toarray())  # pycleora's clique with self-loops
    markov = a / a.sum(1, keepdims=True)  # left Markov (row-normalised)
    x = x0.copy()
    for _ in range(3):
        x = l2(markov @ x)
    assert np.allclose(propagate(b, x0, 3, "clique", "left"), x, atol=1e-5)


def test_weighted_clique_equals_explicit_matrix(hypergraph):
    b, x0 = hypergraph
    b = b.copy()
    b.data = np.random.default_rng(1).uniform(0.5, 5, b.nnz).astype(np.float32)  # ratings
    a = clique(b.toarray())
    x = x0.copy()
    for _ in range(2):
        x = l2(a @ x)
    assert np.allclose(propagate(b, x0, 2, "clique", "left"), x, atol=1e-5)


def test_propagation_is_identical_for_any_thread_count(hypergraph):
    import numba

    b, x0 = hypergraph
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = propagate(b, x0, 3, "clique", "symmetric")
    finally:
        numba.set_num_threads(threads)
    assert threads == 1 or np.array_equal(one, propagate(b, x0, 3, "clique", "symmetric"))


def test_overwrite_x_only_when_asked(hypergraph):
    b, x0 = hypergraph
    kept = x0.copy()
    first = propagate(b, x0, 3)
    assert np.array_equal(x0, kept)
    assert np.array_equal(propagate(b, x0, 3, overwrite_x=True), first)
    with pytest.raises(DataError, match="start vectors"):
        propagate(b, x0[:5], 3)


def test_symmetric_normalisation(hypergraph):
    b, x0 = hypergraph
    a = clique(b.toarray())
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
    from embedlens.core.interactions import InteractionMatrix

    rng = np.random.default_rng(0)
    rows = [(u, int(i), 5.0, t) for t, u in enumerate(range(200))
            for i in rng.choice(200, 30, replace=False) + (0 if u < 100 else 200)]
    train = InteractionMatrix.from_frame(log(rows))
    for params in ({"dim": 32}, {"expansion": "clique", "iterations": 3, "post": "none"}):
        m = get_method("cleora")(**params).fit(train)
        v = m.item_embeddings.normalized().vectors
        sim = v @ v.T
        np.fill_diagonal(sim, -np.inf)
        block = np.arange(400) < 200
        neighbours = np.argsort(-sim, axis=1)[:, :10]
        purity = (block[neighbours] == block[:, None]).mean()
        assert purity > 0.95, (params, purity)


def test_cleora_beats_popularity_on_random_split(ml100k):
    data = EvalSplit.prepare(ml100k, "random-0.2")
    cleora = evaluate_model(get_method("cleora")().fit(data.train), data)
    pop = evaluate_model(get_method("pop")().fit(data.train), data)
    assert cleora["ndcg@10"] > pop["ndcg@10"] + pop["ndcg@10_ci95"]


def test_bad_parameters(ml100k):
    data = EvalSplit.prepare(ml100k, "random-0.2")
    with pytest.raises(DataError, match="expansion"):
        get_method("cleora")(expansion="triangle").fit(data.train)
    with pytest.raises(DataError, match="min_rating"):
        get_method("cleora")(min_rating=6).fit(data.train)


def test_pattern_incidence_sorts_dedups_and_maps_ids():
    from embedlens.prep.incidence import pattern_incidence

    users = np.array([50, 50, 90, 50, 90, 70, 50], dtype=np.int32)
    items = np.array([300, 100, 100, 300, 200, 200, 100], dtype=np.int64)
    b, user_ids, item_ids = pattern_incidence(users, items)
    assert user_ids.tolist() == [50, 70, 90] and item_ids.tolist() == [100, 200, 300]
    # repeats counted once; within a row, the log's order (user 50: 300 then 100)
    assert b.indptr.tolist() == [0, 2, 3, 5] and b.indices.tolist() == [2, 0, 1, 0, 1]
    assert b.to_csr().toarray().tolist() == [[1, 0, 1], [0, 1, 0], [1, 1, 0]]
    assert b.indices.dtype == np.uint16 and b.data is None
    wide, _, wide_items = pattern_incidence(np.arange(70_000) % 3, np.arange(70_000) * 2)
    assert wide.indices.dtype == np.int32 and wide_items.size == 70_000
    assert wide.indices[:2].tolist() == [0, 3] and wide.shape == (3, 70_000)
    with pytest.raises(DataError, match="integer"):
        pattern_incidence(np.array(["a"]), np.array([1]))
    with pytest.raises(DataError, match="empty"):
        pattern_incidence(np.array([], dtype=int), np.array([], dtype=int))
    with pytest.raises(DataError, match="re-number them first"):
        pattern_incidence(np.array([1, 2]), np.array([0, 1 << 29]))
    with pytest.raises(DataError, match="take ids only"):
        get_method("cleora")(weighted=True).fit_log(users, items)


def test_fit_log_equals_fit_on_the_encoded_log(ml100k):
    from embedlens.core.interactions import InteractionMatrix

    df = ml100k.interactions
    params = {"expansion": "clique", "iterations": 3, "post": "none", "dim": 96}
    model = get_method("cleora")
    full = model(**params).fit(InteractionMatrix.from_frame(df)).item_embeddings
    lean = model(**params).fit_log(df["user_id"].to_numpy(), df["item_id"].to_numpy())
    lean = lean.item_embeddings
    assert np.array_equal(full.ids, lean.ids) and np.array_equal(full.counts, lean.counts)
    assert np.allclose(full.vectors, lean.vectors, atol=1e-6)


def test_fit_parquet_reads_the_log_in_batches(ml100k, tmp_path):
    """Many small batches give the same incidence and embeddings as the whole columns."""
    from embedlens.prep.incidence import pattern_incidence, pattern_incidence_parquet

    df = ml100k.interactions
    path = tmp_path / "log.parquet"
    df.vstack(df.head(500)).write_parquet(path, row_group_size=3000)  # with repeated pairs
    whole = pattern_incidence(df["user_id"].to_numpy(), df["item_id"].to_numpy())
    batched = pattern_incidence_parquet(path, batch_rows=7001)
    for a, b in zip(whole, batched, strict=True):
        for field in ("indptr", "indices", "shape") if hasattr(a, "indptr") else ():
            assert np.array_equal(getattr(a, field), getattr(b, field))
        if not hasattr(a, "indptr"):
            assert np.array_equal(a, b)
    params = {"expansion": "clique", "iterations": 2, "post": "none", "dim": 32}
    model = get_method("cleora")
    lean = model(**params).fit_log(df["user_id"].to_numpy(), df["item_id"].to_numpy())
    read = model(**params).fit_parquet(path)
    assert np.array_equal(lean.item_embeddings.vectors, read.item_embeddings.vectors)
    assert np.array_equal(lean.item_embeddings.counts, read.item_embeddings.counts)


def test_a_ranks_part_of_a_parquet_log_holds_its_users_whole(ml100k, tmp_path):
    """``part=(k, n)``: the users whose id is k modulo n, each with every one of its rows;
    the parts together are the whole pattern, row for row; an empty part is empty."""
    from embedlens.prep.incidence import pattern_incidence_parquet

    df = ml100k.interactions
    path = tmp_path / "log.parquet"
    df.write_parquet(path, row_group_size=3000)
    whole, users, items = pattern_incidence_parquet(path, batch_rows=7001)
    rows = {u: set(items[whole.indices[whole.indptr[r]:whole.indptr[r + 1]]])
            for r, u in enumerate(users)}
    seen = set()
    for k in range(3):
        part, p_users, p_items = pattern_incidence_parquet(path, batch_rows=7001, part=(k, 3))
        assert (p_users % 3 == k).all() and part.shape == (p_users.size, p_items.size)
        for r, u in enumerate(p_users):
            assert set(p_items[part.indices[part.indptr[r]:part.indptr[r + 1]]]) == rows[u]
        seen |= set(p_users.tolist())
    assert seen == set(users.tolist())
    big = tmp_path / "one-user.parquet"
    df.filter(df["user_id"] == 3).write_parquet(big)
    empty, none_u, none_i = pattern_incidence_parquet(big, part=(1, 3))
    assert empty.shape == (0, 0) and none_u.size == none_i.size == 0
    with pytest.raises(DataError, match="part must be"):
        pattern_incidence_parquet(big, part=(3, 3))


def test_fit_parquet_errors_name_the_problem(tmp_path):
    import polars as pl

    from embedlens.prep.incidence import pattern_incidence_parquet

    path = tmp_path / "log.parquet"
    pl.DataFrame({"user_id": [1, 2], "movie": [3, 4]}).write_parquet(path)
    with pytest.raises(DataError, match="no column 'item_id'"):
        pattern_incidence_parquet(path)
    pl.DataFrame({"user_id": [1, 2], "item_id": ["a", "b"]}).write_parquet(path)
    with pytest.raises(DataError, match="not integer ids"):
        pattern_incidence_parquet(path)
    pl.DataFrame({"user_id": [1, None], "item_id": [3, 4]}).write_parquet(path)
    with pytest.raises(DataError, match="null ids"):
        pattern_incidence_parquet(path)
    (tmp_path / "bad.parquet").write_text("user_id,item_id\n1,2\n")
    with pytest.raises(DataError, match="Cannot read the Parquet log"):
        pattern_incidence_parquet(tmp_path / "bad.parquet")


def test_compact_csr_matches_scipy():
    from embedlens.kernels.sparse import CompactCsr

    rng = np.random.default_rng(2)
    dense = sp.random(40, 25, density=0.2, random_state=3, dtype=np.float32).toarray()
    dense[5] = 0  # an empty row
    m = sp.csr_matrix(dense)
    c = CompactCsr.from_csr(m)
    assert c.indices.dtype == np.uint16 and c.data is not None and c.nnz == m.nnz
    v = rng.standard_normal(40)
    assert np.allclose(c.row_sums(), np.asarray(m.sum(1)).ravel())
    assert np.allclose(c.rmatvec(v), m.T @ v)
    assert np.array_equal(c.column_counts(), np.bincount(m.indices, minlength=25))
    assert np.array_equal(c.to_csr().toarray(), m.toarray())
    ones = CompactCsr.from_csr((m != 0).astype(np.float32))
    assert ones.data is None and np.allclose(ones.rmatvec(v), (m != 0).T @ v)


def test_pattern_chunks_must_repeat_the_same_log():
    """A one-shot iterator, or a log that changes between passes, is an error, not a wrong
    (or out-of-bounds) matrix."""
    from embedlens.prep.incidence import pattern_incidence_chunks

    users, items = np.array([1, 1, 2]), np.array([10, 11, 10])
    one_shot = iter([(users, items)])
    with pytest.raises(DataError, match="changed between passes"):
        pattern_incidence_chunks(lambda: one_shot)
    calls = []

    def growing():  # the third pass (fill) sees an extra pair for user 2
        calls.append(1)
        extra = len(calls) >= 3
        return [(np.append(users, 2) if extra else users, np.append(items, 11) if extra else items)]

    with pytest.raises(DataError, match="filling pass saw 4 rows"):
        pattern_incidence_chunks(growing)
    b, _, _ = pattern_incidence_chunks(lambda: [(users[:2], items[:2]), (users[2:], items[2:])])
    assert b.indptr.tolist() == [0, 2, 3] and b.indices.tolist() == [0, 1, 0]
