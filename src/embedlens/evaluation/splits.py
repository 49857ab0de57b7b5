"""A protocol's split, encoded once for evaluation: the train matrix and each test user's
relevant items."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from embedlens.core.errors import DataError, EmbedlensWarning
from embedlens.core.interactions import InteractionMatrix
from embedlens.data.dataset import Dataset
from embedlens.prep.protocols import Split, get_protocol


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
