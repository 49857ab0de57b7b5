"""One evaluation protocol for every method: split, score all items, rank, measure."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from embedlens.data.dataset import ITEM, RATING, USER, Dataset
from embedlens.errors import DataError
from embedlens.metrics import mae, ranking_report, rmse
from embedlens.models.base import Model
from embedlens.prep.encoding import InteractionMatrix
from embedlens.prep.protocols import Split, get_protocol
from embedlens.topk import topk


@dataclass(frozen=True)
class EvalSplit:
    """A protocol's split, encoded: train matrix, and the relevant test items of each test
    user (``truth`` rows align with ``users``, columns with ``train.items``)."""

    protocol: str
    split: Split
    train: InteractionMatrix
    users: np.ndarray
    truth: sp.csr_matrix

    @classmethod
    def prepare(cls, dataset: Dataset, protocol: str) -> EvalSplit:
        """Split ``dataset`` by ``protocol`` and encode both sides on the train ids."""
        split = get_protocol(protocol).split(dataset.interactions)
        train = InteractionMatrix.from_frame(split.train)
        test = InteractionMatrix.from_frame(split.test, users=train.users, items=train.items)
        users = np.flatnonzero(np.diff(test.ratings.indptr) > 0)
        if users.size == 0:
            raise DataError(f"Protocol {protocol}: no test user has a relevant item in train.")
        return cls(protocol, split, train, users, test.ratings[users])

    def train_dataset(self, dataset: Dataset) -> Dataset:
        """``dataset`` restricted to the train interactions (what a model may learn from)."""
        return dataset.with_interactions(self.split.train)


def evaluate_model(model: Model, data: EvalSplit, k: int = 10) -> dict[str, Any]:
    """Rank the full train catalogue for every test user (train items excluded) and report
    every metric @k with 95% CIs."""
    start = time.perf_counter()
    recs, _ = topk(
        model.scorer(data.train), data.users, len(data.train.items), k,
        exclude=data.train.ratings, desc=f"{model.name}: top-{k}",
    )
    report: dict[str, Any] = {
        "method": model.name,
        "protocol": data.protocol,
        "k": k,
        "n_users": int(data.users.size),
    }
    report.update(ranking_report(recs, data.truth, data.train.items.ids, k))
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
    predicted = model.predict_ratings(users, items)
    return {"rmse": rmse(predicted, actual), "mae": mae(predicted, actual),
            "n_ratings": int(users.size)}
