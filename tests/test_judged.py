"""What a run judges besides ranking: the neighbours `similar` shows, cold start, and the
spread over seeds."""

from __future__ import annotations

import json

import numpy as np
import pytest

from embedlens.app.pipeline import seed_summary
from embedlens.core.embeddings import Embeddings
from embedlens.evaluation.similarity import SimilaritySplit, evaluate_similarity
from embedlens.evaluation.splits import EvalSplit
from embedlens.testing import planted_log
from embedlens.testing.planted import GROUPS
from test_cli import run


@pytest.fixture(scope="module")
def planted():
    ds = planted_log()
    return ds, EvalSplit.prepare(ds, "random-0.2")


def test_companions_follow_the_planted_groups(planted):
    ds, data = planted
    sim = SimilaritySplit.prepare(data)
    group = dict(zip(ds.items["item_id"].to_list(),
                     [GROUPS.index(g[0]) for g in ds.items["genres"].to_list()], strict=True))
    coo = sim.companions.tocoo()
    same = [group[data.train.items.ids[sim.queries[r]]] == group[data.train.items.ids[c]]
            for r, c in zip(coo.row, coo.col, strict=True)]
    # chance is 1/6: companions are mostly the query's taste group, beyond popularity
    assert np.mean(same) > 0.7


def test_above_the_cap_a_seeded_sample_of_movies_is_judged(planted):
    _, data = planted
    every = SimilaritySplit.prepare(data)
    assert every.sampled_from == 0 and every.queries.size > 40
    few = SimilaritySplit.prepare(data, max_queries=40)
    assert few.queries.size == 40 and few.sampled_from >= every.queries.size
    assert np.isin(few.queries, every.queries).all() and (np.diff(few.queries) > 0).all()
    assert np.array_equal(few.queries, SimilaritySplit.prepare(data, max_queries=40).queries)
    assert not np.array_equal(few.queries,
                              SimilaritySplit.prepare(data, max_queries=40, seed=1).queries)
    rows = np.searchsorted(every.queries, few.queries)  # the same companions per movie
    assert (few.companions != every.companions[rows]).nnz == 0
    ids = data.train.items.ids
    judged = evaluate_similarity(Embeddings(ids, np.eye(ids.size)[:, :8]), few)
    assert (judged["sim_queries"], judged["sim_sampled_from"]) == (40, few.sampled_from)
    # chunk by chunk: a cap near the whole yields what the whole does, in the same order
    most = SimilaritySplit.prepare(data, max_queries=every.queries.size - 1)
    assert np.isin(most.queries, every.queries).all()
    assert (most.companions != every.companions[np.searchsorted(every.queries,
                                                                 most.queries)]).nnz == 0


def test_group_vectors_beat_random_vectors_on_neighbours(planted):
    ds, data = planted
    sim = SimilaritySplit.prepare(data)
    ids = data.train.items.ids
    group = {i: GROUPS.index(g[0]) for i, g in zip(ds.items["item_id"].to_list(),
                                                    ds.items["genres"].to_list(), strict=True)}
    rng = np.random.default_rng(0)
    planted_vectors = np.eye(len(GROUPS))[[group[i] for i in ids]] + 0.01 * rng.standard_normal(
        (ids.size, len(GROUPS)))
    good = evaluate_similarity(Embeddings(ids, planted_vectors), sim, 10, ds.items)
    noise = evaluate_similarity(Embeddings(ids, rng.standard_normal((ids.size, 6))), sim, 10,
                                ds.items)
    assert good["sim_ndcg@10"] > noise["sim_ndcg@10"] + 0.3
    assert good["genre_agreement@10"] == pytest.approx(1.0)
    # a method that embeds half the catalogue scores 0 on the queries it cannot answer
    half = Embeddings(ids[::2], planted_vectors[::2])
    partial = evaluate_similarity(half, sim, 10)
    assert partial["sim_queries_embedded"] < partial["sim_queries"]
    assert partial["sim_ndcg@10"] < good["sim_ndcg@10"]


def test_seed_summary_is_the_t_interval():
    out = seed_summary([1, 2, 3], [0.10, 0.12, 0.14], "ndcg@10")
    # mean 0.12, sd 0.02, t(0.975, 2) = 4.3027
    assert out["mean"] == pytest.approx(0.12)
    assert out["ci95"] == pytest.approx(4.302653 * 0.02 / np.sqrt(3), rel=1e-5)


def test_a_run_judges_neighbours_cold_start_and_seeds(tmp_path):
    from embedlens.app.config import RunConfig
    from embedlens.app.pipeline import run_all

    cfg = RunConfig(dataset="planted", protocol="random-0.2", methods=["cleora", "eges"],
                    baselines=["pop"], seeds=2, params={"eges": {"epochs": 1,
                                                                   "num_walks": 2}})
    result = run_all(cfg, tmp_path / "run", dataset=planted_log())  # with its movie table
    rows = {r["method"]: r for r in json.loads((tmp_path / "run" / "leaderboard.json")
                                               .read_text())}
    assert rows["cleora"]["seeds"]["n"] == 2 and len(rows["cleora"]["seeds"]["values"]) == 2
    assert "seeds" not in rows["pop"]  # no seed: one run
    assert rows["cleora"]["similarity"]["sim_ndcg@10"] > 0
    cold = json.loads((tmp_path / "run" / "coldstart.json").read_text())
    names = [r["ranking"] for r in cold["rows"]]
    assert set(names) == {"eges", "genre popularity", "no side information (random order)"}
    md = (tmp_path / "run" / "leaderboard.md").read_text()
    assert "over seeds" in md and "Nearest movies" in md and "Cold start" in md
    page = (tmp_path / "run" / "report.html").read_text()
    assert "How good are the neighbours" in page and "<h2>Cold start" in page
    assert result.board.ranked()[0].seeds is not None or result.board.ranked()[0].method == "pop"
    # queries: similar defaults to the best at neighbours, coldstart to the best cold method
    out = run("coldstart", str(tmp_path / "run"), "--genres", "Horror", "--k", "3").stdout
    assert "Nearest to an unseen movie" in out
