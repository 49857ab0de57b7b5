"""What lets every method run at MovieLens-25M scale: row-wise optimiser steps, sparse
gradients where a batch touches little of a table, thread pools that do not fight, and a
synthetic log whose quality can be measured."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

from embedlens.data.synthetic import planted_vectors, synthetic_movielens
from embedlens.evaluation.evaluate import evaluate_model
from embedlens.evaluation.splits import EvalSplit
from embedlens.methods.base import ImportedModel
from embedlens.methods.registry import get_method
from embedlens.methods.training import sparse_gradients
from embedlens.testing.planted import group_cosines, planted_log

torch = pytest.importorskip("torch")


def test_row_adam_is_adamw_when_every_row_is_touched_and_lazy_otherwise():
    from embedlens.methods.row_adam import RowAdam

    torch.manual_seed(0)
    sparse, dense = torch.nn.Embedding(40, 6, sparse=True), torch.nn.Embedding(40, 6)
    dense.weight.data.copy_(sparse.weight.data)
    head_a, head_b = torch.nn.Linear(6, 1), torch.nn.Linear(6, 1)
    head_b.load_state_dict(head_a.state_dict())
    opt_a = RowAdam([*sparse.parameters(), *head_a.parameters()], lr=0.02, weight_decay=0.1)
    opt_b = torch.optim.AdamW([*dense.parameters(), *head_b.parameters()], lr=0.02,
                              weight_decay=0.1)
    for _ in range(15):  # every row each step, some twice (duplicates must be summed)
        idx = torch.cat([torch.arange(40), torch.randint(0, 40, (25,))])
        y = torch.randn(idx.numel())
        for emb, head, opt in ((sparse, head_a, opt_a), (dense, head_b, opt_b)):
            opt.zero_grad()
            ((head(emb(idx)).squeeze(-1) - y) ** 2).mean().backward()
            opt.step()
    assert torch.allclose(sparse.weight, dense.weight, atol=1e-5)
    assert torch.allclose(head_a.weight, head_b.weight, atol=1e-6)
    # a step that touches rows 0..4 leaves every other row (and its moments) alone
    before = sparse.weight.detach().clone()
    opt_a.zero_grad()
    sparse(torch.arange(5)).sum().backward()
    opt_a.step()
    changed = (sparse.weight != before).any(1)
    assert changed[:5].all() and not changed[5:].any()


def test_sparse_gradients_only_where_a_batch_touches_little_of_a_table():
    assert not sparse_gradients(1_682, 1024 * 11)  # ML-100k items: dense is cheaper
    assert sparse_gradients(162_541, 1024)  # ML-25M users
    assert sparse_gradients(59_047, 1024 * 11)  # ML-25M items


@pytest.mark.parametrize("method, params", [
    ("two-tower", {"batch_size": 16, "negatives": 2, "epochs": 4}),
    ("rating-mf", {"batch_size": 16, "epochs": 4}),
])
def test_the_sparse_path_learns_the_planted_tastes_and_is_deterministic(method, params):
    log = planted_log(n_users=240, n_items=120)
    train = EvalSplit.prepare(log, "user-time-0.2")
    model = get_method(method)(device="cpu", **params)
    # the batch is small beside the tables, so this run takes the sparse-gradient path
    assert sparse_gradients(240, params["batch_size"])
    fitted = model.fit(train.train, train.train_dataset(log))
    again = get_method(method)(device="cpu", **params).fit(train.train,
                                                          train.train_dataset(log))
    assert np.array_equal(fitted.item_embeddings.vectors, again.item_embeddings.vectors)
    # movies of one taste group sit nearer each other than movies of different groups
    same, other = group_cosines(fitted.item_embeddings, log)
    assert same > other + 0.05


def test_the_synthetic_log_has_planted_tastes_that_beat_popularity():
    ds = synthetic_movielens("ml-1m", seed=1, scale=0.2)
    taste, cluster = ds.meta["taste"], ds.meta["cluster"]
    users = ds.interactions["user_id"].to_numpy() - 1
    items = ds.interactions["item_id"].to_numpy() - 1
    liked = taste[users] == cluster[items]
    # far more of a user's movies are of their taste than popularity alone would give
    # (heavy users exhaust a small cluster, so less than IN_TASTE at this size)
    mass = np.bincount(cluster, weights=ds.meta["popularity"], minlength=cluster.max() + 1)
    assert liked.mean() > 2 * (mass**2).sum()
    ratings = ds.interactions["rating"].to_numpy()
    assert ratings[liked].mean() > ratings[~liked].mean() + 0.5
    # a movie's first genre names its taste cluster
    first = ds.items["genres"].list.first().to_list()
    from embedlens.data.synthetic import GENRES

    assert first == [GENRES[c] for c in cluster]
    data = EvalSplit.prepare(ds, "user-time-0.2")
    users_v, items_v = planted_vectors(ds)
    oracle = ImportedModel.from_embeddings(items_v, similarity="dot")
    oracle.user_embeddings = users_v
    pop = get_method("pop")().fit(data.train)
    cleora = get_method("cleora")().fit(data.train, data.train_dataset(ds))
    o, p, c = (evaluate_model(m, data) for m in (oracle, pop, cleora))
    assert o["ndcg@10"] > 2 * p["ndcg@10"]  # popularity is clearly beatable
    assert o["ndcg@10"] >= c["ndcg@10"] - c["ndcg@10_ci95"]  # the oracle is the ceiling
    assert c["ndcg@10"] > p["ndcg@10"] + p["ndcg@10_ci95"]  # a real method beats pop


def _fresh(code: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("OMP_WAIT_POLICY", "EMBEDLENS_THREADS", "NUMBA_NUM_THREADS",
                          "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**clean, **env}, timeout=120)


def test_idle_threads_wait_passively_unless_the_user_chose():
    show = "import embedlens, os; print(os.environ['OMP_WAIT_POLICY'])"
    assert _fresh(show).stdout.strip() == "PASSIVE"
    assert _fresh(show, OMP_WAIT_POLICY="ACTIVE").stdout.strip() == "ACTIVE"


def test_embedlens_threads_sizes_every_pool_and_torch_during_a_fit():
    code = ("import embedlens, os, numba, torch\n"
            "from embedlens.methods.training import deterministic_torch\n"
            "torch.set_num_threads(2)\n"
            "with deterministic_torch(0):\n"
            "    inside = torch.get_num_threads()\n"
            "print(os.environ['NUMBA_NUM_THREADS'], numba.config.NUMBA_NUM_THREADS, inside,"
            " torch.get_num_threads())")
    assert _fresh(code, EMBEDLENS_THREADS="1").stdout.split() == ["1", "1", "1", "2"]


def test_ranks_torchrun_starts_on_one_machine_share_its_cores(monkeypatch):
    from embedlens.core.threads import THREADS_ENV, thread_budget, usable_cores

    monkeypatch.delenv(THREADS_ENV, raising=False)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert thread_budget() == max(1, usable_cores() // 2)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(usable_cores() * 4))
    assert thread_budget() == 1  # never none
    monkeypatch.setenv(THREADS_ENV, "3")  # the user's word wins
    assert thread_budget() == 3


def test_a_bad_thread_budget_is_one_line_and_exit_2():
    proc = subprocess.run([sys.executable, "-c", "from embedlens.app.cli import main; main()",
                           "methods"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "EMBEDLENS_THREADS": "many"})
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1
    assert lines[0] == ("Error: EMBEDLENS_THREADS='many' is not a positive whole number of "
                        f"threads; set it to 1..{len(os.sched_getaffinity(0))} or unset it.")


def test_a_large_epoch_is_validated_in_parts_and_stops_at_its_best_check():
    from embedlens.methods.training import MIN_CHECKS, fit_epochs

    net = torch.nn.Linear(1, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.0)
    scores = iter([0.1, 0.3, 0.2, 0.25, 0.2, 0.2, 0.9])
    heard = []
    history = fit_epochs(net, opt, "cpu", 100, lambda idx: net.weight.sum() * 0,
                         epochs=5, batch_size=10, desc="t", validate=lambda: next(scores),
                         val_key="val", patience=3, check_rows=30,
                         on_epoch=lambda k, s: heard.append(k))
    # 100 rows in parts of 30: four checks per epoch; the best (0.3, check 2) is followed by
    # three checks without a gain by check 5, but training never stops before MIN_CHECKS
    # (6), so it stops at check 6, inside the second epoch, and never sees the 0.9
    assert MIN_CHECKS == 6
    assert history["val"] == [0.1, 0.3, 0.2, 0.25, 0.2, 0.2]
    assert len(history["loss"]) == 6 and heard == [1, 2, 3, 4, 5, 6]


def test_elsa_loss_without_the_score_matrix_is_the_dense_loss_and_gradient():
    from embedlens.methods.elsa.model import normalised_error

    normalize = torch.nn.functional.normalize
    rng = np.random.default_rng(0)
    x = torch.as_tensor((rng.random((9, 40)) < 0.2).astype(np.float32))
    x[3] = 0  # a user with no items contributes 0 to both forms
    weights = [torch.nn.Parameter(torch.randn(40, 8, generator=torch.Generator().manual_seed(1)))
               for _ in range(2)]
    a_dense, a_gram = (normalize(w, dim=-1) for w in weights)
    scores = x @ a_dense @ a_dense.T - x
    dense = (normalize(scores, dim=-1) - normalize(x, dim=-1)).pow(2).sum(-1).mean()
    gram = normalised_error(x @ a_gram, a_gram.T @ a_gram, x.sum(-1))
    dense.backward()
    gram.backward()
    assert dense.item() > 0.1
    assert abs(gram.item() - dense.item()) < 1e-5
    assert torch.allclose(weights[0].grad, weights[1].grad, atol=1e-5)


def test_elsa_batches_grow_with_the_log_only_when_left_to_it():
    from embedlens.methods.elsa.model import batch_users

    assert batch_users(None, 943) == 256
    assert batch_users(None, 8192) == 256
    assert batch_users(None, 162_541) == 5080  # ML-25M: 32 steps an epoch
    assert batch_users(64, 162_541) == 64


def test_elsa_whole_table_operations_have_the_right_gradients():
    from embedlens.methods.elsa.ops import Gram, UnitRows

    w = torch.randn(12, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(UnitRows.apply, (w,))
    assert torch.autograd.gradcheck(Gram.apply, (w,))
    assert torch.allclose(UnitRows.apply(w), torch.nn.functional.normalize(w, dim=-1))


def test_row_adam_cpu_kernel_equals_its_torch_form():
    # the numba pass (CPU) and the torch operations (any other device) give the same update,
    # an uncoalesced gradient with repeated rows included
    import numpy as np

    from embedlens.methods.row_adam import _sparse_step, _torch_sparse_step

    gen = torch.Generator().manual_seed(1)
    weight = torch.randn(50, 8, generator=gen)
    m, v = torch.randn(50, 8, generator=gen) * 0.1, torch.rand(50, 8, generator=gen) * 0.1
    rows = torch.tensor([3, 7, 3, 49, 0, 7, 7])
    values = torch.randn(rows.numel(), 8, generator=gen)
    grad = torch.sparse_coo_tensor(rows[None, :], values, (50, 8))
    args = (0.01, 0.9, 0.999, 0.7, 1e-8, 0.001)
    w_t, m_t, v_t = weight.clone(), m.clone(), v.clone()
    _torch_sparse_step(w_t, grad, m_t, v_t, *args)
    w_n, m_n, v_n = weight.clone(), m.clone(), v.clone()
    slot = np.full(50, -1, dtype=np.int64)
    _sparse_step(w_n.numpy(), m_n.numpy(), v_n.numpy(), rows.numpy(), values.numpy(), slot,
                 *args)
    assert (slot == -1).all()
    for a, b in ((w_n, w_t), (m_n, m_t), (v_n, v_t)):
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-7)
    untouched = torch.ones(50, dtype=torch.bool)
    untouched[rows] = False
    assert torch.equal(w_n[untouched], weight[untouched])


def test_the_sparse_product_with_a_floor_is_scipys_product_filtered():
    """``sparse_product`` against SciPy: the same entries and values, with a floor, above
    the diagonal, for rows of any length (some empty), on one thread or all."""
    import numba

    from embedlens.kernels.sparse import sparse_product

    rng = np.random.default_rng(0)
    a = sp.random(60, 300, density=0.05, random_state=1, format="csr")
    a.data[:] = 1.0
    keep = np.ones(60)
    keep[5] = 0  # an empty row
    a = (sp.diags(keep) @ a).tocsr()
    a.eliminate_zeros()
    assert a[5].nnz == 0
    b = sp.random(300, 80, density=0.1, random_state=2, format="csr")
    b.data = rng.integers(1, 4, b.nnz).astype(np.float64)
    full = (a @ b).toarray()
    for least, upper in ((-np.inf, False), (2.0, False), (1.0, True)):
        want = np.where(full >= least, full, 0.0)
        if upper:
            want = np.triu(want[:, :60], k=1)
            got = sparse_product(a, b[:, :60].tocsr(), least=least, above_diagonal=True)
        else:
            got = sparse_product(a, b, least=least)
        assert got.has_sorted_indices
        np.testing.assert_array_equal(got.toarray(), want)
        assert got.nnz == np.count_nonzero(want)
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        alone = sparse_product(a, b, least=2.0)
    finally:
        numba.set_num_threads(threads)
    together = sparse_product(a, b, least=2.0)
    assert (alone != together).nnz == 0
    with pytest.raises(ValueError, match="shape mismatch"):
        sparse_product(a, b.T.tocsr())


def test_the_pmi_graph_and_the_neighbour_split_are_the_scipy_ones(ml100k, monkeypatch):
    """The two users of ``sparse_product`` give what SciPy's product gave: the PMI graph
    (node2vec's) and the neighbour split's query movies and companions, to the bit."""
    import embedlens.evaluation.similarity as similarity
    import embedlens.kernels.graphs as graphs

    data = EvalSplit.prepare(ml100k, "user-time-0.2")
    ours = graphs.pmi_graph(data.train), similarity.SimilaritySplit.prepare(data,
                                                                             max_queries=300)
    monkeypatch.setattr(graphs, "sparse_product", lambda a, b, least, above_diagonal:
                        sp.triu(a @ b, k=1).tocsr())
    monkeypatch.setattr(similarity, "sparse_product", lambda a, b, least: (a @ b).tocsr())
    scipys = graphs.pmi_graph(data.train), similarity.SimilaritySplit.prepare(data,
                                                                               max_queries=300)
    for mine, theirs in zip((ours[0].adj, ours[1].companions),
                            (scipys[0].adj, scipys[1].companions), strict=True):
        assert mine.nnz > 100
        for part in ("indptr", "indices", "data"):
            np.testing.assert_array_equal(getattr(mine, part), getattr(theirs, part))
    np.testing.assert_array_equal(ours[0].ids, scipys[0].ids)
    np.testing.assert_array_equal(ours[1].queries, scipys[1].queries)
