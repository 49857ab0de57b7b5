"""Baseline anchors on real data (the shared contract is in test_contract.py)."""

import pytest

from embedlens.core.errors import DataError, UnknownNameError
from embedlens.evaluation.evaluate import evaluate_model
from embedlens.evaluation.splits import EvalSplit
from embedlens.methods.registry import get_method


@pytest.fixture(scope="module")
def small_split(ml100k):
    return EvalSplit.prepare(ml100k, "user-time-0.2")


def test_unknown_method_and_parameter():
    with pytest.raises(UnknownNameError, match="ease"):
        get_method("eaze")
    with pytest.raises(DataError, match="no parameter"):
        get_method("ease")(lamda=3)


def test_popularity_anchor_pinned(ml100k):
    """global-time-0.2 on ML-100k is deterministic: Pop must give RePlay's 0.139 / 0.474."""
    data = EvalSplit.prepare(ml100k, "global-time-0.2")
    report = evaluate_model(get_method("pop")().fit(data.train), data)
    assert report["n_users"] == 95
    assert report["ndcg@10"] == pytest.approx(0.13894, abs=1e-5)
    assert report["hitrate@10"] == pytest.approx(45 / 95)


def test_ease_anchor_global_time(ml100k):
    data = EvalSplit.prepare(ml100k, "global-time-0.2")
    report = evaluate_model(get_method("ease")(**{"lambda": 100}).fit(data.train), data)
    assert report["ndcg@10"] == pytest.approx(0.148, abs=0.002)
    assert report["hitrate@10"] == pytest.approx(0.463, abs=0.002)


def test_random_protocol_anchors_within_noise(ml100k):
    """random-0.2 depends on the random split; our split must land within the CI."""
    data = EvalSplit.prepare(ml100k, "random-0.2")
    pop = evaluate_model(get_method("pop")().fit(data.train), data)
    ease = evaluate_model(get_method("ease")(**{"lambda": 500}).fit(data.train), data)
    assert abs(pop["ndcg@10"] - 0.214) < pop["ndcg@10_ci95"]
    assert abs(pop["hitrate@10"] - 0.769) < pop["hitrate@10_ci95"]
    assert abs(ease["ndcg@10"] - 0.451) < ease["ndcg@10_ci95"]
    assert abs(ease["hitrate@10"] - 0.934) < ease["hitrate@10_ci95"]


def test_ease_refuses_large_catalogues(small_split):
    with pytest.raises(DataError, match="refusing above"):
        get_method("ease")(max_items=100).fit(small_split.train)
