"""Every metric against cases computed by hand."""

import math

import numpy as np
import pytest
import scipy.sparse as sp

from embedlens.core.errors import DataError
from embedlens.kernels.metrics import (
    MAP,
    MRR,
    NDCG,
    HitRate,
    Precision,
    Recall,
    coverage,
    hit_matrix,
    mae,
    mean_ci,
    ranking_report,
    rmse,
)

# user 0: recs [5, 1, 7, 2] relevant {1, 2, 9}; hits at ranks 2 and 4
# user 1: recs [3, 4, 6, 8] relevant {4};        hit at rank 2
# user 2: recs [-1, -1, -1, -1] (nothing recommended) relevant {0}
RECS = np.array([[5, 1, 7, 2], [3, 4, 6, 8], [-1, -1, -1, -1]])
TRUTH = sp.csr_matrix(
    (np.ones(5), ([0, 0, 0, 1, 2], [1, 2, 9, 4, 0])), shape=(3, 10)
)


@pytest.fixture
def hits():
    return hit_matrix(RECS, TRUTH)


def test_hit_matrix(hits):
    h, n_rel = hits
    assert h.tolist() == [[False, True, False, True], [False, True, False, False], [False] * 4]
    assert n_rel.tolist() == [3, 1, 1]


def test_hitrate_precision_recall(hits):
    h, n = hits
    assert HitRate(4)(h, n).tolist() == [1, 1, 0]
    assert Precision(4)(h, n).tolist() == [0.5, 0.25, 0.0]
    assert Recall(4)(h, n).tolist() == pytest.approx([2 / 3, 1.0, 0.0])
    assert HitRate(1)(h, n).tolist() == [0, 0, 0]


def test_mrr(hits):
    h, n = hits
    assert MRR(4)(h, n).tolist() == [0.5, 0.5, 0.0]


def test_ndcg(hits):
    h, n = hits
    d = [1 / math.log2(i + 2) for i in range(4)]
    # user 0: DCG = d[1] + d[3]; ideal over min(4, 3) = 3 relevant
    u0 = (d[1] + d[3]) / (d[0] + d[1] + d[2])
    u1 = d[1] / d[0]
    assert NDCG(4)(h, n) == pytest.approx([u0, u1, 0.0])
    # @2: user 0 ideal is over min(2, 3) = 2 positions
    assert NDCG(2)(h, n) == pytest.approx([d[1] / (d[0] + d[1]), d[1] / d[0], 0.0])


def test_map(hits):
    h, n = hits
    # user 0: precision@2 = 1/2, precision@4 = 2/4 -> (0.5 + 0.5) / min(4, 3)
    assert MAP(4)(h, n) == pytest.approx([1.0 / 3, 0.5, 0.0])
    # @2: (1/2) / min(2, 3)
    assert MAP(2)(h, n) == pytest.approx([0.25, 0.5, 0.0])


def test_metric_needs_k_columns(hits):
    with pytest.raises(DataError, match="needs 10"):
        NDCG(10)(*hits)


def test_coverage():
    recs = np.array([[1, 2], [2, 3], [4, -1]])
    # columns 1..4 recommended in the top 2 of a 5-item catalogue; -1 pads
    assert coverage(recs, 2, 5) == pytest.approx(4 / 5)
    assert coverage(recs, 1, 5) == pytest.approx(3 / 5)  # columns 1, 2, 4
    with pytest.raises(DataError, match="outside the catalogue"):
        coverage(recs, 2, 4)


def test_coverage_counts_catalogue_columns_not_item_ids():
    """Item ids far from 0..n-1 (as in ml-latest-small): coverage must count the columns the
    recommendations index, checked against an independent computation on the ids."""
    import polars as pl

    from embedlens.data.dataset import Dataset
    from embedlens.evaluation.evaluate import evaluate_model
    from embedlens.evaluation.splits import EvalSplit
    from embedlens.methods.registry import get_method

    rng = np.random.default_rng(3)
    ids = np.sort(rng.choice(np.arange(1000, 200_000), size=60, replace=False))
    rows = [(u, int(i), 4.0, t) for u in range(40)
            for t, i in enumerate(rng.choice(ids, size=12, replace=False))]
    log = pl.DataFrame(rows, schema=["user_id", "item_id", "rating", "timestamp"],
                       orient="row").with_columns(pl.col("rating").cast(pl.Float32))
    data = EvalSplit.prepare(Dataset("sparse-ids", log), "random-0.2")
    model = get_method("random")(seed=1).fit(data.train)
    report = evaluate_model(model, data, k=5)
    # independent: the top-5 item ids per test user, mapped back to ids, over train's ids
    recs = model.recommend(data.train, data.train.users.ids[data.users], k=5)
    expected = recs["item_id"].n_unique() / data.split.train["item_id"].n_unique()
    assert report["coverage@5"] == pytest.approx(expected)
    assert report["coverage@5"] > 0.5  # the old id-vs-index mix-up gave 0 here


def test_confidence_interval_matches_replay_docstring():
    # RePlay's ConfidenceInterval example: per-user values -> half-width 0.35086
    mean, half = mean_ci(np.array([0.38685280723454163, 0.0, 0.6131471927654584]))
    assert half == pytest.approx(0.35086, abs=1e-5)
    assert mean == pytest.approx(1.0 / 3)
    with pytest.raises(DataError):
        mean_ci(np.array([]))


def test_ranking_report_averages_over_truth_users():
    report = ranking_report(RECS, TRUTH, 10, k=4)
    assert report["hitrate@4"] == pytest.approx(2 / 3)
    assert report["mrr@4"] == pytest.approx(1 / 3)
    assert report["precision@4"] == pytest.approx(0.25)
    assert report["coverage@4"] == pytest.approx(8 / 10)
    assert set(report) >= {"ndcg@4_ci95", "map@4", "recall@4_ci95"}


def test_rmse_mae():
    assert rmse([1, 2, 3], [1, 2, 5]) == pytest.approx(math.sqrt(4 / 3))
    assert mae([1, 2, 3], [2, 2, 5]) == pytest.approx(1.0)
    with pytest.raises(DataError):
        rmse([1], [1, 2])
