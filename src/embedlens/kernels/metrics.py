"""Ranking and rating metrics, with RePlay's definitions.

All ranking metrics share one input: ``hits`` (users x K booleans: is the item at rank i
relevant?) and ``n_relevant`` per user. Per-user values are averaged over the ground-truth
users (a user without recommendations scores 0), with a 95% confidence half-width
``z_0.975 * std(ddof=1) / sqrt(n)`` as RePlay's ``ConfidenceInterval``.

* HitRate@K   1 if any of the top K is relevant.
* Precision@K hits / K (always K, even if fewer items were recommended).
* Recall@K    hits / |relevant|.
* MRR@K       1 / rank of the first hit (0 without one).
* NDCG@K      binary gains, DCG = sum 1/log2(rank+1) over hits; IDCG over min(K, |relevant|).
* MAP@K       sum over hit ranks of precision@rank, divided by min(K, |relevant|).
* Coverage@K  distinct items in anyone's top K / items in the train catalogue (RePlay's
              ``Coverage``; recommendations are catalogue column indices ``0..n_items-1``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numba import njit, prange

from embedlens.core.errors import DataError

Z95 = 1.959963984540054  # scipy.stats.norm.ppf(0.975)


@dataclass(frozen=True)
class RankingMetric:
    """A metric computed per user from the hit matrix; subclasses define ``per_user``."""

    k: int = 10
    name = "metric"

    @property
    def key(self) -> str:
        """``name@k``, the key used in result tables and JSON."""
        return f"{self.name}@{self.k}"

    def per_user(self, hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
        if hits.shape[1] < self.k:
            raise DataError(f"{self.key} needs {self.k} recommendations, got {hits.shape[1]}.")
        return self.per_user(hits[:, : self.k], n_relevant).astype(np.float64)


class HitRate(RankingMetric):
    name = "hitrate"

    def per_user(self, hits, n_relevant):
        return hits.any(axis=1)


class Precision(RankingMetric):
    name = "precision"

    def per_user(self, hits, n_relevant):
        return hits.sum(axis=1) / self.k


class Recall(RankingMetric):
    name = "recall"

    def per_user(self, hits, n_relevant):
        return _safe_div(hits.sum(axis=1), n_relevant)


class MRR(RankingMetric):
    name = "mrr"

    def per_user(self, hits, n_relevant):
        first = hits.argmax(axis=1)
        return np.where(hits.any(axis=1), 1.0 / (first + 1), 0.0)


class NDCG(RankingMetric):
    name = "ndcg"

    def per_user(self, hits, n_relevant):
        discounts = 1.0 / np.log2(np.arange(2, self.k + 2))
        dcg = hits @ discounts
        ideal = np.concatenate([[0.0], np.cumsum(discounts)])[np.minimum(n_relevant, self.k)]
        return _safe_div(dcg, ideal)


class MAP(RankingMetric):
    name = "map"

    def per_user(self, hits, n_relevant):
        ranks = np.arange(1, self.k + 1)
        precision_at = np.cumsum(hits, axis=1) / ranks
        return _safe_div((precision_at * hits).sum(axis=1), np.minimum(n_relevant, self.k))


RANKING_METRICS = (NDCG, HitRate, MRR, Precision, Recall, MAP)


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=np.asarray(den) > 0)


def mean_ci(values: np.ndarray) -> tuple[float, float]:
    """Mean and 95% confidence half-width (normal approximation, sample std)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        raise DataError("No users to average a metric over (empty ground truth).")
    half = Z95 * values.std(ddof=1) / np.sqrt(values.size) if values.size > 1 else float("nan")
    return float(values.mean()), float(half)


@njit(parallel=True, cache=True)
def _hit_matrix(recs: np.ndarray, indptr: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """hits[r, i] = recs[r, i] is in the sorted ground-truth row r."""
    n, k = recs.shape
    hits = np.zeros((n, k), dtype=np.bool_)
    for r in prange(n):
        lo, hi = indptr[r], indptr[r + 1]
        for i in range(k):
            item = recs[r, i]
            if item < 0 or lo == hi:
                continue
            p = np.searchsorted(indices[lo:hi], item)
            hits[r, i] = p < hi - lo and indices[lo + p] == item
    return hits


def hit_matrix(recs: np.ndarray, truth: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """``hits`` and ``n_relevant`` for recommendation rows aligned with ``truth``'s rows."""
    truth = truth.tocsr()
    truth.sort_indices()
    if recs.shape[0] != truth.shape[0]:
        raise DataError(f"{recs.shape[0]} recommendation rows but {truth.shape[0]} truth rows.")
    hits = _hit_matrix(
        np.ascontiguousarray(recs, dtype=np.int64), truth.indptr.astype(np.int64),
        truth.indices.astype(np.int64),
    )
    return hits, np.diff(truth.indptr)


def coverage(recs: np.ndarray, k: int, n_items: int) -> float:
    """Share of the ``n_items`` catalogue columns that appear in anyone's top ``k``.

    ``recs`` holds column indices (``-1`` pads a short list), never item ids: the catalogue
    is the columns of the train matrix, whatever ids they stand for.
    """
    if n_items < 1:
        raise DataError("Coverage needs a non-empty catalogue.")
    top = recs[:, :k].ravel()
    top = top[top >= 0]
    if top.size and int(top.max()) >= n_items:
        raise DataError(f"Recommendation index {int(top.max())} is outside the catalogue of "
                        f"{n_items} items.")
    return float(np.unique(top).size / n_items)


def ranking_report(
    recs: np.ndarray, truth: sp.csr_matrix, n_items: int, k: int = 10
) -> dict[str, float]:
    """Every ranking metric @k with its CI, plus coverage, for aligned recs/truth rows."""
    hits, n_rel = hit_matrix(recs, truth)
    if n_rel.size == 0 or (n_rel == 0).all():
        raise DataError("The ground truth is empty: no user has a relevant test item.")
    keep = n_rel > 0
    hits, n_rel = hits[keep], n_rel[keep]
    out: dict[str, float] = {}
    for cls in RANKING_METRICS:
        metric = cls(k)
        mean, half = mean_ci(metric(hits, n_rel))
        out[metric.key] = mean
        out[f"{metric.key}_ci95"] = half
    out[f"coverage@{k}"] = coverage(recs[keep], k, n_items)
    return out


def rmse(predicted: np.ndarray, actual: np.ndarray) -> float:
    """Root mean squared error."""
    predicted, actual = _check_pair(predicted, actual)
    return float(np.sqrt(np.mean((predicted - actual) ** 2)))


def mae(predicted: np.ndarray, actual: np.ndarray) -> float:
    """Mean absolute error."""
    predicted, actual = _check_pair(predicted, actual)
    return float(np.mean(np.abs(predicted - actual)))


def _check_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.size == 0:
        raise DataError(f"Need two non-empty arrays of one shape, got {a.shape} and {b.shape}.")
    return a, b
