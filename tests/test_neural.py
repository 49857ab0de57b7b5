"""Two-tower and rating regression: beat their anchors on real data; training mechanics."""

import numpy as np
import pytest
import scipy.sparse as sp

from embedlens.core.errors import DataError
from embedlens.evaluation.evaluate import evaluate_model
from embedlens.evaluation.splits import EvalSplit
from embedlens.methods.registry import get_method
from embedlens.methods.training import holdout


@pytest.fixture(scope="module")
def user_time(ml100k):
    return EvalSplit.prepare(ml100k, "user-time-0.2")


@pytest.fixture(scope="module")
def random_split(ml100k):
    return EvalSplit.prepare(ml100k, "random-0.2")


def test_two_tower_beats_popularity(user_time, ml100k):
    tt = get_method("two-tower")(device="cpu").fit(
        user_time.train, user_time.train_dataset(ml100k))
    pop = get_method("pop")().fit(user_time.train)
    a, b = evaluate_model(tt, user_time), evaluate_model(pop, user_time)
    assert a["ndcg@10"] > b["ndcg@10"] + b["ndcg@10_ci95"]
    assert len(tt.history["loss"]) == len(tt.history["val_ndcg@10"]) >= 2
    assert tt.history["loss"][-1] < tt.history["loss"][0]


def test_two_tower_softmax_and_popularity_sampler_train(user_time):
    for params in ({"loss": "softmax"}, {"sampler": "popularity"}):
        m = get_method("two-tower")(epochs=2, device="cpu", **params).fit(user_time.train)
        assert np.isfinite(m.item_embeddings.vectors).all()
    with pytest.raises(DataError, match="loss"):
        get_method("two-tower")(loss="hinge").fit(user_time.train)


def test_rating_regression_beats_the_bias_baseline(random_split, ml100k, tmp_path):
    model = get_method("rating-mf")(device="cpu").fit(
        random_split.train, random_split.train_dataset(ml100k))
    report = evaluate_model(model, random_split)
    # regularised user+item bias baseline: RMSE 0.962 on a random 80/20 split of ML-100k
    assert report["rmse"] < 0.955
    assert report["n_ratings"] > 19_000 and 0.5 < report["mae"] < report["rmse"]
    model.save(tmp_path)
    back = get_method("rating-mf").load(tmp_path)
    users, items = np.array([1, 2, 99999]), np.array([50, 50, 50])
    assert np.allclose(back.predict_ratings(users, items), model.predict_ratings(users, items))
    assert back.predict_ratings(users, items)[2] == pytest.approx(
        model.global_mean, abs=1.0)  # unknown user: mean plus the item's bias


def test_holdout_keeps_single_entries_and_partitions():
    m = sp.csr_matrix(np.array([[1, 1, 1, 1, 1, 1, 1, 1, 1, 1], [0, 0, 0, 1, 0, 0, 0, 0, 0, 0]]))
    fit, val = holdout(m, 0.5, seed=0)
    assert (fit + val - m).nnz == 0 and fit.multiply(val).nnz == 0
    assert fit[1].nnz == 1 and val[1].nnz == 0
    assert 0 < val[0].nnz < 10


def test_early_stopping_waits_out_a_dip_in_the_first_checks():
    """A score that dips for a few checks before it climbs (a model leaving its popularity
    plateau) is not stopped before MIN_CHECKS; after that, patience decides."""
    from embedlens.methods.training import MIN_CHECKS, MIN_ROWS, EarlyStopping

    class Net:
        def __init__(self) -> None:
            self.value = 0.0

        def state_dict(self) -> dict[str, float]:
            return {"value": self.value}

        def load_state_dict(self, state: dict[str, float]) -> None:
            self.value = state["value"]

    net, stopper = Net(), EarlyStopping(patience=3, higher_is_better=True)
    scores = [0.099, 0.092, 0.093, 0.097, 0.123, 0.143, 0.14, 0.13, 0.12]
    stopped_at = None
    for check, score in enumerate(scores, start=1):
        net.value = score
        if stopper.update(score, net):
            stopped_at = check
            break
    assert MIN_CHECKS > 4  # the dip of checks 2-4 alone would have stopped patience 3
    assert stopped_at == 9  # three checks without a gain after the best (0.143 at check 6)
    stopper.restore(net)
    assert net.value == 0.143
    late = EarlyStopping(patience=1, higher_is_better=False)
    assert [late.update(s, net) for s in [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]] == [
        False] * (MIN_CHECKS - 1) + [True]
    # a large log's checks come every 2M rows, long past a start's dip: rows decide there
    big = EarlyStopping(patience=1, higher_is_better=False)
    assert [big.update(s, net, trained_rows=(c + 1) * 2_000_000)
            for c, s in enumerate([1.0, 2.0])] == [False, True]
    assert MIN_ROWS <= 2_000_000
