"""One evaluation protocol for every method: score the full catalogue, rank, measure; the
result is a typed :class:`EvalResult` (its ``to_dict`` is the ``evaluation-*.json`` format)."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from embedlens.core.distributed import all_gather_rows, all_gather_values, share
from embedlens.core.errors import DataError
from embedlens.core.schema import ITEM, RATING, USER
from embedlens.evaluation.splits import EvalSplit
from embedlens.kernels.metrics import RANKING_METRICS, mae, ranking_report, rmse
from embedlens.kernels.topk import topk
from embedlens.methods.base import Model, can

#: The ranking metrics every result carries, mean and 95% CI half-width each.
RANKED = tuple(metric.name for metric in RANKING_METRICS)


@dataclass(frozen=True)
class EvalResult:
    """What one evaluation measured. ``metrics`` maps ``"ndcg@10"`` etc. to the mean over
    test users and ``ci95`` to its 95% confidence half-width; the run context (``dataset``,
    ``trained_on``, ``fit_seconds``) is filled in when a run folder is scored."""

    method: str
    protocol: str
    k: int
    n_users: int
    metrics: dict[str, float]
    ci95: dict[str, float]
    coverage: float
    users_without_recommendations: int = 0
    relevant_excluded: int = 0
    eval_seconds: float = 0.0
    rmse: float | None = None
    mae: float | None = None
    n_ratings: int | None = None
    dataset: str | None = None
    trained_on: str | None = None
    fit_seconds: float | None = None
    similarity: dict[str, Any] | None = None  # the neighbour metrics (evaluation.similarity)

    def to_dict(self) -> dict[str, Any]:
        """The flat record of ``evaluation-<protocol>.json`` and ``leaderboard.json``."""
        out: dict[str, Any] = {"method": self.method, "protocol": self.protocol, "k": self.k,
                               "n_users": self.n_users}
        for key, value in self.metrics.items():
            out[key] = value
            out[f"{key}_ci95"] = self.ci95[key]
        out[f"coverage@{self.k}"] = self.coverage
        out["users_without_recommendations"] = self.users_without_recommendations
        out["relevant_excluded"] = self.relevant_excluded
        for key in ("rmse", "mae", "n_ratings", "dataset", "trained_on", "fit_seconds",
                    "similarity"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        out["eval_seconds"] = self.eval_seconds
        return out

    @classmethod
    def from_dict(cls, record: dict[str, Any], where: str = "evaluation") -> EvalResult:
        """Read a flat record back; a malformed one is a :class:`DataError` naming ``where``."""
        try:
            k = int(record["k"])
            metrics = {f"{m}@{k}": float(record[f"{m}@{k}"]) for m in RANKED}
            ci95 = {key: float(record[f"{key}_ci95"]) for key in metrics}
            optional = {key: record[key] for key in ("rmse", "mae", "n_ratings", "dataset",
                                                     "trained_on", "fit_seconds")
                        if record.get(key) is not None}
            if isinstance(record.get("similarity"), dict):
                optional["similarity"] = record["similarity"]
            return cls(
                method=str(record["method"]), protocol=str(record["protocol"]), k=k,
                n_users=int(record["n_users"]), metrics=metrics, ci95=ci95,
                coverage=float(record[f"coverage@{k}"]),
                users_without_recommendations=int(record.get("users_without_recommendations",
                                                             0)),
                relevant_excluded=int(record.get("relevant_excluded", 0)),
                eval_seconds=float(record.get("eval_seconds", 0.0)), **optional)
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{where} is not a valid evaluation record ({type(exc).__name__}: "
                            f"{exc}).") from None

    def __getitem__(self, key: str) -> Any:
        """A value by its key in the flat record (``result["ndcg@10"]``)."""
        return self.to_dict()[key]

    def with_run(self, **context: Any) -> EvalResult:
        """A copy with run context (``method``, ``dataset``, ``trained_on``, ...) set."""
        return replace(self, **context)


def evaluate_model(model: Model, data: EvalSplit, k: int = 10) -> EvalResult:
    """Rank the full train catalogue for every test user (train items excluded) and report
    every metric @k with 95% CIs.

    Besides the metrics the report says how many test users got no recommendation at all
    (``users_without_recommendations``: the method has no vector for them or for any
    candidate; they count as misses) and how many relevant items were left out because they
    were in train (``relevant_excluded``). A model that recommends nothing to anyone is an
    error, not a table of zeros.
    """
    start = time.perf_counter()
    # under torchrun each rank ranks its share of the test users; the top-k lists, put back
    # together in rank order, are exactly one process's, and so are the metrics and CIs
    lo, hi = share(data.users.size, kind="test users")
    recs, _ = topk(
        model.scorer(data.train), data.users[lo:hi], len(data.train.items), k,
        exclude=data.train.ratings, desc=f"{model.name}: top-{k}",
    )
    recs = all_gather_rows(recs)
    empty = int((recs[:, 0] < 0).sum())
    if empty == recs.shape[0]:
        raise DataError(
            f"{model.name} recommended nothing to any of the {empty:,} test users: every "
            "candidate scored NaN or -inf. Is it fitted on this data, and are its vectors "
            "finite?")
    ranking = ranking_report(recs, data.truth, len(data.train.items), k)
    metrics = {f"{m}@{k}": ranking[f"{m}@{k}"] for m in RANKED}
    rating = rating_report(model, data) if can(model, "ratings") else {}
    return EvalResult(
        method=model.name, protocol=data.protocol, k=k, n_users=int(data.users.size),
        metrics=metrics, ci95={key: ranking[f"{key}_ci95"] for key in metrics},
        coverage=ranking[f"coverage@{k}"], users_without_recommendations=empty,
        relevant_excluded=data.excluded_relevant,
        eval_seconds=round(time.perf_counter() - start, 3), **rating)


def rating_report(model: Model, data: EvalSplit) -> dict[str, Any]:
    """RMSE and MAE of predicted ratings on every test row (not only the relevant ones)
    whose user and item occur in train (a split held in shares: each rank predicts its
    users' ratings, and the errors are put together)."""
    test = data.split.test_all
    known = data.train.users.contains(test[USER]) & data.train.items.contains(test[ITEM])
    users, items = test[USER].to_numpy()[known], test[ITEM].to_numpy()[known]
    actual = test[RATING].to_numpy()[known].astype(np.float64)
    predicted = (model.predict_ratings(users, items)  # type: ignore[attr-defined]
                 if users.size else np.zeros(0)).astype(np.float64)
    if data.in_shares:
        predicted, actual = all_gather_values(predicted), all_gather_values(actual)
    if actual.size == 0:
        raise DataError("No test rating has both its user and item in train.")
    return {"rmse": rmse(predicted, actual), "mae": mae(predicted, actual),
            "n_ratings": int(actual.size)}
