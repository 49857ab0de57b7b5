"""The cold-start protocol: held-out movies never reach train; EGES places them better than
chance."""

import numpy as np
import polars as pl

from embedlens.evaluation.coldstart import ColdSplit, evaluate_coldstart
from embedlens.methods.registry import get_method


def test_coldstart_protocol_on_ml100k(ml100k):
    split = ColdSplit.prepare(ml100k, fraction=0.1, seed=1)
    assert len(split.cold_items) == 168
    assert not np.isin(split.cold_items, split.train.items.ids).any()
    assert split.test[("item_id")].is_in(pl.Series(split.cold_items).implode()).all()
    model = get_method("eges")(epochs=2, num_walks=5).fit(
        split.train, split.train_dataset)
    out = evaluate_coldstart(model, split)
    ours = out["model, held-out only"]
    chance = out["no side info (random), held-out only"]
    assert ours["ndcg@10"] > chance["ndcg@10"] + chance["ndcg@10_ci95"]
    assert out["genre popularity, held-out only"]["cold_share@10"] == 1.0
    assert 0.0 <= out["model, full catalogue"]["cold_share@10"] <= 1.0
