"""A protocol's split, encoded once for evaluation: the train matrix and each test user's
relevant items."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import polars as pl
import scipy.sparse as sp

from embedlens.core.distributed import all_gather_csr_rows, all_gather_values, world
from embedlens.core.errors import DataError, EmbedlensWarning
from embedlens.core.ids import IdMap
from embedlens.core.interactions import InteractionMatrix
from embedlens.core.schema import ITEM, USER
from embedlens.data.dataset import Dataset
from embedlens.prep.protocols import Split, get_protocol
from embedlens.prep.scope import Scope, ShareScope, scope_of


@dataclass(frozen=True)
class EvalSplit:
    """A protocol's split, encoded: train matrix, and the relevant test items of each test
    user (``truth`` rows align with ``users``, columns with ``train.items``).

    A relevant test item the user also has in train can never be recommended (train items
    are excluded from ranking), so it is left out of ``truth`` rather than counted as a
    miss; ``excluded_relevant`` says how many were (0 for any log loaded by embedlens, which
    merges repeated pairs at load).

    Under torchrun, from a log read in shares (``Dataset.is_share``), every rank holds the
    same ``train``, ``users`` and ``truth`` as one process would, while ``split``'s frames
    hold only the rank's own users' rows (``in_shares``).
    """

    protocol: str
    split: Split
    train: InteractionMatrix
    users: np.ndarray
    truth: sp.csr_matrix
    excluded_relevant: int = 0
    in_shares: bool = False

    @classmethod
    def prepare(cls, dataset: Dataset, protocol: str) -> EvalSplit:
        """Split ``dataset`` by ``protocol`` and encode both sides on the train ids (a share
        of the log: with the other ranks, see the class)."""
        shared = dataset.is_share
        scope = scope_of(dataset)
        split = get_protocol(protocol).split(dataset.interactions,
                                             implicit=bool(dataset.meta.get("implicit")),
                                             scope=scope)
        train = encode_train(split.train, scope)
        test = _encoded(split.test, train.users, train.items)
        truth = test.binary()
        seen = truth.multiply(train.binary()).tocsr()
        n_seen = scope.total(seen.nnz)
        if seen.nnz:
            truth = (truth - seen).tocsr()
            truth.eliminate_zeros()
        if shared:  # each rank holds its users' rows: put them together
            truth = all_gather_csr_rows(truth)
        if n_seen and world().main:
            warnings.warn(
                f"{dataset.name}, {protocol}: {n_seen:,} relevant test item(s) are also in "
                "their user's train rows (repeated user-item pairs); they cannot be ranked and "
                "are left out of the ground truth.", EmbedlensWarning, stacklevel=2)
        users = np.flatnonzero(np.diff(truth.indptr) > 0)
        if users.size == 0:
            raise DataError(f"Protocol {protocol}: no test user has a relevant item that can "
                            "be ranked (every one is unknown to train or already in the "
                            "user's train rows).")
        return cls(protocol, split, train, users, truth[users], n_seen, shared)

    def train_dataset(self, dataset: Dataset) -> Dataset:
        """``dataset`` restricted to the train interactions (what a model may learn from)."""
        return dataset.with_interactions(self.split.train)


def encode_train(train: pl.DataFrame, scope: Scope) -> InteractionMatrix:
    """The train rows encoded on their own ids. Under torchrun, from a share of the log
    (:class:`~embedlens.prep.scope.ShareScope`): on the ids of every rank's train rows, and
    every rank's rows put together, so that every rank holds one process's matrix."""
    if not isinstance(scope, ShareScope):
        return InteractionMatrix.from_frame(train)
    mine = _encoded(train, IdMap.fit(scope.union(train[USER].unique())),
                    IdMap.fit(scope.union(train[ITEM].unique())))
    ratings = all_gather_csr_rows(mine.ratings)
    # the times share the ratings' rows and columns: only their values travel
    times = sp.csr_matrix((all_gather_values(mine.timestamps.data), ratings.indices,
                           ratings.indptr), shape=ratings.shape)
    return InteractionMatrix(mine.users, mine.items, ratings, times)


def _encoded(frame: pl.DataFrame, users: IdMap, items: IdMap) -> InteractionMatrix:
    """``frame`` encoded on ``users`` x ``items``; a share may hold no such rows (its users
    all on one side of a global cut): the empty matrix then."""
    if frame.height:
        return InteractionMatrix.from_frame(frame, users=users, items=items)
    shape = (len(users), len(items))
    return InteractionMatrix(users, items, sp.csr_matrix(shape, dtype=np.float32),
                             sp.csr_matrix(shape, dtype=np.int64))
