"""The cold-start protocol: can side information place movies nobody has rated?

A random ``fraction`` of the movies is held out entirely (every interaction with them leaves
train). A model is fitted on the rest; the held-out movies get vectors from their side
information alone (``model.coldstart``); each user who rated a held-out movie (and has train
history) is scored against them. Two candidate sets: the held-out movies only, and the full
catalogue (warm movies plus the cold vectors, the user's train movies excluded). Relevant:
the user's held-out movies (all of them: a rating shows interest in a movie nobody knew).

Baselines on the same split: genre popularity (a cold movie scores the mean train share of
its genres; not personalised) and random order (what a model without side information can
do: it has no vector for a movie it never saw).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp

from embedlens.core.embeddings import l2_normalize
from embedlens.core.errors import DataError
from embedlens.core.ids import IdMap
from embedlens.core.interactions import InteractionMatrix
from embedlens.core.schema import ITEM, USER
from embedlens.data.dataset import Dataset
from embedlens.evaluation.splits import encode_train
from embedlens.kernels.metrics import ranking_report
from embedlens.kernels.topk import FixedScorer, dot_scorer, topk
from embedlens.methods.base import place_unseen
from embedlens.prep.scope import scope_of


@dataclass(frozen=True)
class ColdSplit:
    """Warm train interactions, held-out movie ids and their test interactions."""

    train: InteractionMatrix
    train_dataset: Dataset
    cold_items: np.ndarray
    test: pl.DataFrame

    @property
    def items(self) -> pl.DataFrame:
        """The movie table (the protocol refuses data without one)."""
        assert self.train_dataset.items is not None
        return self.train_dataset.items

    @classmethod
    def prepare(cls, dataset: Dataset, fraction: float = 0.1, seed: int = 42) -> ColdSplit:
        if dataset.items is None:
            raise DataError("The cold-start protocol needs a movie table (side information).")
        # under torchrun, from a share of the log (each rank its users' rows): the movies of
        # every share, the train matrix put together, and every rank's test rows gathered
        scope = scope_of(dataset)
        rated = np.unique(scope.union(dataset.interactions[ITEM].unique()).to_numpy())
        rng = np.random.default_rng(seed)
        cold = np.sort(rng.choice(rated, size=max(1, round(fraction * rated.size)),
                                  replace=False))
        is_cold = pl.col(ITEM).is_in(pl.Series(cold).implode())
        train_df = dataset.interactions.filter(~is_cold)
        test = dataset.interactions.filter(is_cold)
        test = scope.gather(test.filter(pl.col(USER).is_in(train_df[USER].unique().implode())))
        if test.height == 0:
            raise DataError("No held-out movie was rated by a user with train history.")
        return cls(encode_train(train_df, scope), dataset.with_interactions(train_df), cold,
                   test)


def _report(scores_fn, users: np.ndarray, n_items: int, exclude, truth, k,
            first_cold: int = 0) -> dict[str, float]:
    recs, _ = topk(scores_fn, users, n_items, k, exclude, desc="cold-start top-K")
    r = ranking_report(recs, truth, n_items, k)
    return {f"ndcg@{k}": r[f"ndcg@{k}"], f"ndcg@{k}_ci95": r[f"ndcg@{k}_ci95"],
            f"hitrate@{k}": r[f"hitrate@{k}"], f"hitrate@{k}_ci95": r[f"hitrate@{k}_ci95"],
            # share of recommended slots taken by cold movies (1.0 when only cold compete)
            f"cold_share@{k}": float((recs[recs >= 0] >= first_cold).mean())}


def evaluate_coldstart(model: Any, split: ColdSplit, k: int = 10, seed: int = 0
                       ) -> dict[str, dict[str, float]]:
    """NDCG/HitRate @k of ``model``'s cold vectors and of the two baselines, on both
    candidate sets. ``model`` must be fitted on ``split`` and have ``coldstart``."""
    if not getattr(model, "places_unseen", True):  # not one movie could be placed
        raise DataError(f"{getattr(model, 'name', 'this model')} cannot place unseen movies "
                        "as fitted (no side information); there is nothing to evaluate.")
    side = split.items.filter(pl.col(ITEM).is_in(pl.Series(split.cold_items)
                                                              .implode()))
    side = pl.DataFrame({ITEM: split.cold_items}).join(side, on=ITEM, how="left",
                                                       maintain_order="left")
    tags = split.train_dataset.tags
    tag_lists = {}
    if tags is not None:
        grouped = tags.group_by(ITEM).agg(pl.col("tag"))
        tag_lists = dict(zip(grouped[ITEM].to_list(), grouped["tag"].to_list(), strict=True))
    movies = [{"genres": genres or [], "tags": tag_lists.get(item, []), "year": year,
               "title": title}
              for item, genres, year, title in side.select(ITEM, "genres", "year", "title")
              .iter_rows()]
    cold, cold_ok = place_unseen(model, movies, model.item_embeddings.dim)
    train = split.train
    users_all = train.users.index(split.test[USER])
    cold_map = IdMap(split.cold_items)
    truth_cold = sp.csr_matrix(
        (np.ones(split.test.height), (users_all, cold_map.index(split.test[ITEM]))),
        shape=(len(train.users), cold.shape[0]))
    users = np.flatnonzero(np.diff(truth_cold.indptr) > 0)
    warm_vecs, warm_ok = model.item_embeddings.aligned(train.items.ids)
    user_vecs, _ = model.user_vectors(train).aligned(train.users.ids)

    u, c, w = l2_normalize(user_vecs), l2_normalize(cold), l2_normalize(warm_vecs)
    n_warm = w.shape[0]
    genre_pop = _genre_popularity(split)
    rng_scores = np.asarray(np.random.default_rng(seed).random(cold.shape[0]),
                            dtype=np.float32)
    out: dict[str, dict[str, float]] = {}
    out["model, held-out only"] = _report(dot_scorer(u, c, item_ok=cold_ok), users,
                                          c.shape[0], None, truth_cold[users], k)
    out["genre popularity, held-out only"] = _report(
        FixedScorer(genre_pop), users,
        genre_pop.size, None, truth_cold[users], k)
    out["no side info (random), held-out only"] = _report(
        FixedScorer(rng_scores), users,
        rng_scores.size, None, truth_cold[users], k)
    full, full_ok = np.vstack([w, c]), np.concatenate([warm_ok, cold_ok])
    exclude = sp.hstack([train.binary(), sp.csr_matrix((len(train.users), c.shape[0]))]).tocsr()
    truth_full = sp.hstack([sp.csr_matrix((len(train.users), n_warm)), truth_cold]).tocsr()
    out["model, full catalogue"] = _report(dot_scorer(u, full, item_ok=full_ok), users,
                                           full.shape[0], exclude, truth_full[users], k,
                                           first_cold=n_warm)
    return out


def _genre_popularity(split: ColdSplit) -> np.ndarray:
    """Each held-out movie's mean train share of its genres (0 without genres): a genre's
    share is the train interactions with its movies over those of all genres (a movie with
    two genres counts for both). Counted per movie from the train matrix, then per genre:
    joining the genres onto every interaction row cost 4.5 GB at the ML-25M shape."""
    items = split.items.select(ITEM, "genres")
    per_movie = pl.DataFrame({ITEM: split.train.items.ids, "n": split.train.item_counts()})
    counts = (per_movie.join(items, on=ITEM, how="left").explode("genres")
              .drop_nulls("genres").group_by("genres").agg(pl.col("n").sum()))
    share = dict(zip(counts["genres"].to_list(),
                     (counts["n"] / counts["n"].sum()).to_list(), strict=True))
    cold = pl.DataFrame({ITEM: split.cold_items}).join(items, on=ITEM, how="left",
                                                       maintain_order="left")
    return np.array([np.mean([share.get(g, 0.0) for g in (gs or [])]) if gs else 0.0
                     for gs in cold["genres"].to_list()], dtype=np.float32)


def coldstart_board(models: dict[str, Any], split: ColdSplit, k: int = 10, seed: int = 0
                    ) -> list[dict[str, Any]]:
    """The cold-start leaderboard: each model (fitted on ``split``) on the held-out movies
    alone and in the full catalogue, then genre popularity and random order (what any method
    without side information can do), best first by held-out NDCG@k."""
    rows: list[dict[str, Any]] = []
    baselines: dict[str, dict[str, float]] = {}
    for name, model in models.items():
        found = evaluate_coldstart(model, split, k, seed)
        rows.append({"ranking": name, "role": "method",
                     "held_out": found["model, held-out only"],
                     "full": found["model, full catalogue"]})
        baselines = {"genre popularity": found["genre popularity, held-out only"],
                     "no side information (random order)":
                         found["no side info (random), held-out only"]}
    rows += [{"ranking": name, "role": "baseline", "held_out": r, "full": None}
             for name, r in baselines.items()]
    return sorted(rows, key=lambda r: (-r["held_out"][f"ndcg@{k}"], r["ranking"]))
