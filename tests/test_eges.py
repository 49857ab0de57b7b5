"""EGES: skip-gram pairs, side information, cold-start vectors, save/load."""

import numpy as np
import polars as pl
import pytest

from embedlens.core.errors import DataError
from embedlens.evaluation.evaluate import evaluate_model
from embedlens.evaluation.splits import EvalSplit
from embedlens.methods.eges.model import side_information, skipgram_pairs
from embedlens.methods.registry import get_method


def test_skipgram_pairs_by_hand():
    walks = np.array([[0, 1, 2], [3, 4, -1]])
    centre, context = skipgram_pairs(walks, window=1)
    pairs = sorted(zip(centre.tolist(), context.tolist(), strict=True))
    assert pairs == [(0, 1), (1, 0), (1, 2), (2, 1), (3, 4), (4, 3)]
    c2, _ = skipgram_pairs(walks, window=2)
    assert len(c2) == 8  # plus (0, 2) and (2, 0)


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
    # a short run (2 epochs over 3 walks per movie) with a larger step than the default:
    # row-wise Adam moves a movie's row only in the batches that name it
    model = get_method("eges")(epochs=2, num_walks=3, lr=0.03, device="cpu").fit(
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
