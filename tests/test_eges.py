"""EGES: negative sampling, planted tastes, side information, cold-start vectors, save/load."""

import numpy as np
import polars as pl
import pytest

from embedlens.core.errors import DataError
from embedlens.evaluation.evaluate import evaluate_model
from embedlens.evaluation.splits import EvalSplit
from embedlens.methods.eges.model import side_information
from embedlens.methods.eges.sgd import negative_table
from embedlens.methods.registry import get_method
from embedlens.testing.planted import group_cosines, planted_log


def test_negatives_are_drawn_by_unigram_to_the_075():
    freq = np.array([1.0, 16.0, 0.0, 81.0])
    table = negative_table(freq, size=100_000)
    share = np.bincount(table, minlength=4) / table.size
    expected = freq**0.75 / (freq**0.75).sum()  # 1 : 8 : 0 : 27
    assert np.allclose(share, expected, atol=1e-3)
    assert share[2] == 0


def test_the_trainer_learns_planted_tastes_and_is_deterministic():
    log = planted_log(n_users=240, n_items=120)
    split = EvalSplit.prepare(log, "user-time-0.2")
    params = {"dim": 16}
    fitted = get_method("eges")(**params).fit(split.train, split.train_dataset(log))
    again = get_method("eges")(**params).fit(split.train, split.train_dataset(log))
    assert np.array_equal(fitted.item_embeddings.vectors, again.item_embeddings.vectors)
    # movies of one taste group sit nearer each other than movies of different groups
    same, other = group_cosines(fitted.item_embeddings, log)
    assert same > other + 0.05
    # and users rank their own group's unseen movies above the rest
    rnd = evaluate_model(get_method("random")().fit(split.train), split)
    assert evaluate_model(fitted, split)["ndcg@10"] > rnd["ndcg@10"] + 0.1


def test_a_diverging_fit_is_a_clear_error_not_a_zero_division():
    # found by the tuner: at a large step the vectors overflow and the fields' softmax
    # divided by zero inside the kernel (a ZeroDivisionError the tuner did not catch)
    log = planted_log(n_users=240, n_items=120)
    split = EvalSplit.prepare(log, "user-time-0.2")
    with pytest.raises(DataError, match=r"EGES diverged in epoch 1 .* Lower lr"):
        get_method("eges")(dim=16, lr=1e4).fit(split.train, split.train_dataset(log))


def test_side_information_fields():
    items = pl.DataFrame({"item_id": [1, 2], "title": ["A", "B"], "year": [1994, None],
                          "genres": [["Action"], []]})
    tags = pl.DataFrame({"user_id": [1, 2], "item_id": [1, 1], "tag": ["Marvel ", "marvel"],
                         "timestamp": [0, 0]})
    side = side_information(items, tags, year_bucket=5)
    assert side.row(0) == (1, ["Action"], ["marvel"], ["1990"])
    assert side.row(1) == (2, [], [], [])


@pytest.fixture(scope="module")
def small(ml_small):
    data = EvalSplit.prepare(ml_small, "random-0.2")
    model = get_method("eges")(epochs=2, num_walks=3).fit(
        data.train, data.train_dataset(ml_small))
    return data, model


def test_eges_learns_and_weights_fields(small):
    data, model = small
    weights = model.field_weights()
    assert set(weights) == {"id", "genres", "tags", "year"}
    assert sum(weights.values()) == pytest.approx(1.0)
    assert model.history["loss"][-1] < model.history["loss"][0]
    rnd = evaluate_model(get_method("random")().fit(data.train), data)
    assert evaluate_model(model, data)["ndcg@10"] > rnd["ndcg@10"] + 0.05


def test_coldstart_from_side_information(small, tmp_path):
    _, model = small
    v = model.coldstart(genres=["Animation", "Children"], tags=["pixar"])
    top = model.item_embeddings.similar_by_vector(v, 10)
    animated = sum("Animation" in (g or []) for g in top["genres"].to_list())
    assert animated >= 5
    model.save(tmp_path)
    back = get_method("eges").load(tmp_path)
    assert np.allclose(back.coldstart(genres=["Animation", "Children"], tags=["pixar"]), v)
    with pytest.raises(DataError, match="None of the side information"):
        model.coldstart(genres=["Not-a-genre"])


def test_a_model_saved_with_retired_parameters_loads_and_a_user_is_told_why(small, tmp_path):
    import json

    _, model = small
    model.save(tmp_path)
    saved = json.loads((tmp_path / "model.json").read_text())
    saved["params"].update({"batch_size": 4096, "device": "auto"})  # the torch trainer's
    (tmp_path / "model.json").write_text(json.dumps(saved))
    back = get_method("eges").load(tmp_path)
    assert np.array_equal(back.item_embeddings.vectors, model.item_embeddings.vectors)
    with pytest.raises(DataError, match="eges no longer has batch_size: EGES trains by SGD"):
        get_method("eges")(batch_size=64)
