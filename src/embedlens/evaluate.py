"""One evaluation protocol for every method: split, score all items, rank, measure."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from embedlens.data.dataset import ITEM, RATING, USER, Dataset
from embedlens.errors import DataError, EmbedlensWarning
from embedlens.metrics import mae, ranking_report, rmse
from embedlens.models.base import Model
from embedlens.prep.encoding import InteractionMatrix
from embedlens.prep.protocols import Split, get_protocol
from embedlens.topk import topk


@dataclass(frozen=True)
class EvalSplit:
    """A protocol's split, encoded: train matrix, and the relevant test items of each test
    user (``truth`` rows align with ``users``, columns with ``train.items``).

    A relevant test item the user also has in train can never be recommended (train items
    are excluded from ranking), so it is left out of ``truth`` rather than counted as a
    miss; ``excluded_relevant`` says how many were (0 for any log loaded by embedlens, which
    merges repeated pairs at load).
    """

    protocol: str
    split: Split
    train: InteractionMatrix
    users: np.ndarray
    truth: sp.csr_matrix
    excluded_relevant: int = 0

    @classmethod
    def prepare(cls, dataset: Dataset, protocol: str) -> EvalSplit:
        """Split ``dataset`` by ``protocol`` and encode both sides on the train ids."""
        split = get_protocol(protocol).split(dataset.interactions,
                                             implicit=bool(dataset.meta.get("implicit")))
        train = InteractionMatrix.from_frame(split.train)
        test = InteractionMatrix.from_frame(split.test, users=train.users, items=train.items)
        truth = test.binary()
        seen = truth.multiply(train.binary()).tocsr()
        if seen.nnz:
            truth = (truth - seen).tocsr()
            truth.eliminate_zeros()
            warnings.warn(
                f"{dataset.name}, {protocol}: {seen.nnz:,} relevant test item(s) are also in "
                "their user's train rows (repeated user-item pairs); they cannot be ranked and "
                "are left out of the ground truth.", EmbedlensWarning, stacklevel=2)
        users = np.flatnonzero(np.diff(truth.indptr) > 0)
        if users.size == 0:
            raise DataError(f"Protocol {protocol}: no test user has a relevant item that can "
                            "be ranked (every one is unknown to train or already in the "
                            "user's train rows).")
        return cls(protocol, split, train, users, truth[users], int(seen.nnz))

    def train_dataset(self, dataset: Dataset) -> Dataset:
        """``dataset`` restricted to the train interactions (what a model may learn from)."""
        return dataset.with_interactions(self.split.train)


def evaluate_model(model: Model, data: EvalSplit, k: int = 10) -> dict[str, Any]:
    """Rank the full train catalogue for every test user (train items excluded) and report
    every metric @k with 95% CIs.

    Besides the metrics the report says how many test users got no recommendation at all
    (``users_without_recommendations``: the method has no vector for them or for any
    candidate; they count as misses) and how many relevant items were left out because they
    were in train (``relevant_excluded``). A model that recommends nothing to anyone is an
    error, not a table of zeros.
    """
    start = time.perf_counter()
    recs, _ = topk(
        model.scorer(data.train), data.users, len(data.train.items), k,
        exclude=data.train.ratings, desc=f"{model.name}: top-{k}",
    )
    empty = int((recs[:, 0] < 0).sum())
    if empty == recs.shape[0]:
        raise DataError(
            f"{model.name} recommended nothing to any of the {empty:,} test users: every "
            "candidate scored NaN or -inf. Is it fitted on this data, and are its vectors "
            "finite?")
    report: dict[str, Any] = {
        "method": model.name,
        "protocol": data.protocol,
        "k": k,
        "n_users": int(data.users.size),
    }
    report.update(ranking_report(recs, data.truth, len(data.train.items), k))
    report["users_without_recommendations"] = empty
    report["relevant_excluded"] = data.excluded_relevant
    if hasattr(model, "predict_ratings"):
        report.update(rating_report(model, data))
    report["eval_seconds"] = round(time.perf_counter() - start, 3)
    return report


def rating_report(model: Model, data: EvalSplit) -> dict[str, float]:
    """RMSE and MAE of predicted ratings on every test row (not only the relevant ones)
    whose user and item occur in train."""
    test = data.split.test_all
    known = data.train.users.contains(test[USER]) & data.train.items.contains(test[ITEM])
    users, items = test[USER].to_numpy()[known], test[ITEM].to_numpy()[known]
    if users.size == 0:
        raise DataError("No test rating has both its user and item in train.")
    actual = test[RATING].to_numpy()[known]
    predicted = model.predict_ratings(users, items)  # type: ignore[attr-defined]
    return {"rmse": rmse(predicted, actual), "mae": mae(predicted, actual),
            "n_ratings": int(users.size)}
