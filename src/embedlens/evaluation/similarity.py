"""Judging ``similar``: are a method's nearest movies ones that people who liked a movie went
on to like, beyond what popularity explains?

The ground truth comes from the split, never from the method. For a query movie ``i`` (a
train movie at least ``min_users`` test users had in train), a movie ``j`` is a *held-out
companion* when at least two test users who had ``i`` in train have ``j`` among their
relevant *test* items, and more of them than popularity predicts (lift > 1: the count
exceeds ``|users with i| * |users with j in test| / |test users|``). A method's ``k``
nearest movies by cosine are scored against the companions:

* ``sim_ndcg@k`` (binary gains, the ranking metric's definition; mean and 95% CI over the
  query movies; a query the method did not embed scores 0): the headline; ``similar`` uses
  the method best at it;
* ``genre_agreement@k``: the mean Jaccard overlap of a neighbour's genres with the query's;
* ``neighbour_popularity@k``: the mean popularity percentile of the neighbours among train
  movies (1.0: the most popular): descriptive, showing how popularity-driven they are.

Above :data:`MAX_QUERIES` such movies a seeded uniform sample of that many is judged
(``sim_sampled_from``: how many movies were held by ``min_users`` test users, 0 when all
were judged): at the ML-25M shape counting every movie's held-out co-occurrences took 78 s
and 12.7 GB, and judging all 59,047 movies 23 s per method, for a mean whose CI at 10,000
is +-0.007 (benchmarks/similarity_sample.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp

from embedlens.core.embeddings import Embeddings, l2_normalize
from embedlens.core.errors import DataError
from embedlens.evaluation.splits import EvalSplit
from embedlens.kernels.metrics import NDCG, hit_matrix, mean_ci
from embedlens.kernels.sparse import sparse_product
from embedlens.kernels.topk import nearest_rows

#: At most this many query movies are judged (a seeded sample above it).
MAX_QUERIES = 10_000


@dataclass(frozen=True)
class SimilaritySplit:
    """Query movies (indices into the train catalogue) and their held-out companions."""

    queries: np.ndarray
    companions: sp.csr_matrix  # queries x train items, 1 where a companion
    popularity_pct: np.ndarray  # per train item, its popularity percentile in train
    item_ids: np.ndarray
    sampled_from: int = 0  # candidates the queries were sampled from (0: not sampled)

    @classmethod
    def prepare(cls, data: EvalSplit, min_users: int = 5, max_queries: int = MAX_QUERIES,
                seed: int = 0) -> SimilaritySplit:
        """Companions of every train movie held by at least ``min_users`` test users that
        has any; above ``max_queries`` such movies, of a seeded uniform sample of that many
        (the first to have companions in a seeded shuffle of the candidates, found a chunk
        at a time, so that only the sample's co-occurrences are ever counted)."""
        if max_queries < 1:
            raise DataError(f"max_queries must be at least 1, got {max_queries}.")
        before = data.train.binary()[data.users]  # test users' train items
        after = data.truth.astype(np.float32)  # their relevant test items
        n_users, n_items = data.users.size, before.shape[1]
        holders = np.asarray(before.sum(axis=0)).ravel()  # test users with i in train
        takers = np.asarray(after.sum(axis=0)).ravel()  # test users with j in test
        candidates = np.flatnonzero(holders >= min_users)
        sampled = candidates.size > max_queries
        if sampled:
            candidates = np.random.default_rng(seed).permutation(candidates)
        by_item = sp.csr_matrix(before.T)  # items x test users
        chunk = max_queries if sampled else max(1, candidates.size)
        queries: list[np.ndarray] = []
        rows: list[sp.csr_matrix] = []
        found = 0
        for start in range(0, candidates.size, chunk):
            part = candidates[start:start + chunk]
            # held-out co-occurrences; fewer than 2 never make a companion
            coo = sparse_product(by_item[part], after, least=2).tocoo()
            expected = holders[part[coo.row]] * takers[coo.col] / max(1, n_users)
            keep = (coo.data >= 2) & (coo.data > expected) & (part[coo.row] != coo.col)
            companions = sp.csr_matrix((np.ones(int(keep.sum()), dtype=np.float32),
                                        (coo.row[keep], coo.col[keep])),
                                       shape=(part.size, n_items))
            has = np.flatnonzero(np.diff(companions.indptr) > 0)[:max_queries - found]
            queries.append(part[has])
            rows.append(companions[has])
            found += has.size
            if found >= max_queries:
                break
        if found == 0:
            raise DataError("No movie has held-out companions: too few test users to judge "
                            "neighbours.")
        query = np.concatenate(queries)
        order = np.argsort(query, kind="stable")
        popularity = data.train.item_counts()
        rank = popularity.argsort(kind="stable")
        pct = np.empty(popularity.size)
        pct[rank] = (np.arange(popularity.size) + 1) / popularity.size
        return cls(query[order], sp.vstack(rows, format="csr")[order], pct,
                   data.train.items.ids, int(candidates.size) if sampled else 0)


def evaluate_similarity(items: Embeddings, split: SimilaritySplit, k: int = 10,
                        genres: pl.DataFrame | None = None) -> dict[str, Any]:
    """The neighbour metrics of ``items`` (see the module docstring)."""
    vectors, found = items.aligned(split.item_ids)
    unit = l2_normalize(vectors)
    q = split.queries
    query_ok = found[q]
    neighbours, _ = nearest_rows(unit, q, k, row_ok=found, desc="neighbours")
    hits, n_rel = hit_matrix(neighbours, split.companions)
    ndcg, ci = mean_ci(NDCG(k)(hits, n_rel))
    out: dict[str, Any] = {f"sim_ndcg@{k}": ndcg, f"sim_ndcg@{k}_ci95": ci,
                           "sim_queries": int(q.size),
                           "sim_sampled_from": int(split.sampled_from),
                           "sim_queries_embedded": int(query_ok.sum())}
    valid = neighbours >= 0
    out[f"neighbour_popularity@{k}"] = float(split.popularity_pct[neighbours[valid]].mean()) \
        if valid.any() else float("nan")
    if genres is not None:
        out[f"genre_agreement@{k}"] = _genre_agreement(q, neighbours, split.item_ids, genres)
    return out


def _genre_agreement(queries: np.ndarray, neighbours: np.ndarray, item_ids: np.ndarray,
                     genres: pl.DataFrame) -> float:
    """Mean Jaccard overlap of each neighbour's genres with its query's."""
    table = dict(zip(genres["item_id"].to_list(), genres["genres"].to_list(), strict=True))
    sets = [frozenset(table.get(i) or ()) for i in item_ids.tolist()]
    scores = []
    for row, query in enumerate(queries.tolist()):
        mine = sets[query]
        for n in neighbours[row].tolist():
            if n < 0:
                continue
            other = sets[n]
            union = mine | other
            scores.append(len(mine & other) / len(union) if union else 0.0)
    return float(np.mean(scores)) if scores else float("nan")
