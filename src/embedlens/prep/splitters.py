"""Train/test splitters: one class per strategy, with RePlay's semantics.

Each ``split(df)`` returns ``(train, test)`` and never drops a row silently except the cold
rows it is configured to drop (test rows whose user or item never occurs in train). Given a
:class:`~embedlens.prep.scope.ShareScope`, ``df`` is one rank's users' rows under torchrun
and the split is that rank's part of the whole log's split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from embedlens.core.errors import DataError
from embedlens.core.schema import ITEM, TIMESTAMP, USER, require_columns
from embedlens.prep.scope import WHOLE, Scope


@dataclass(frozen=True)
class Splitter:
    """Base: validation and the optional removal of cold users/items from test."""

    drop_cold_users: bool = False
    drop_cold_items: bool = False

    def split(self, df: pl.DataFrame, scope: Scope = WHOLE) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Split ``df`` into ``(train, test)``; ``scope`` answers for the whole log when
        ``df`` is a share of it (all of each user's rows in one share)."""
        require_columns(df, [USER, ITEM, TIMESTAMP], "interactions")
        n = scope.total(df.height)
        if n < 2:
            raise DataError(f"Cannot split {n} interaction(s).")
        is_test = self._is_test(df, scope)
        train, test = df.filter(~is_test), df.filter(is_test)
        if self.drop_cold_items:
            known = scope.union(train[ITEM].unique())
            test = test.filter(pl.col(ITEM).is_in(known.implode()))
        if self.drop_cold_users:  # a user's rows are all in this frame
            test = test.filter(pl.col(USER).is_in(train[USER].unique().implode()))
        n_train, n_test = scope.total(train.height), scope.total(test.height)
        if n_train == 0 or n_test == 0:
            part = "train" if n_train == 0 else "test"
            raise DataError(f"{type(self).__name__} produced an empty {part} set.")
        return train, test

    def _is_test(self, df: pl.DataFrame, scope: Scope) -> pl.Series:
        raise NotImplementedError


def _check_fraction(f: float) -> None:
    if not 0.0 < f < 1.0:
        raise DataError(f"test_fraction must be strictly between 0 and 1, got {f}.")


@dataclass(frozen=True)
class GlobalTimeSplitter(Splitter):
    """Everything from one moment on is test (RePlay ``TimeSplitter`` with a float threshold).

    Rows are sorted by time and the cut is the timestamp of row ``int(n * (1 - f))``
    (0-based); every row at or after that timestamp is test, so ties go to test.
    """

    test_fraction: float = 0.2

    def _is_test(self, df: pl.DataFrame, scope: Scope) -> pl.Series:
        _check_fraction(self.test_fraction)
        ts = df[TIMESTAMP]
        first, last = scope.bounds(ts)
        if first == last:
            raise DataError("A time split needs timestamps; every row has the same time.")
        cut = scope.kth(ts, int(scope.total(df.height) * (1 - self.test_fraction)))
        return ts >= cut


@dataclass(frozen=True)
class UserTimeSplitter(Splitter):
    """Each user's latest interactions are test: the last ``test_fraction`` or the last
    ``last_n``.

    The fraction follows RePlay's ``RatioSplitter``: within a user, ordered by time (then item
    id, for determinism), the row numbered ``r`` of ``n`` (1-based) is test when
    ``round(r/n, 3) > round(1 - f, 3)``.
    """

    test_fraction: float | None = 0.2
    last_n: int | None = None

    def _is_test(self, df: pl.DataFrame, scope: Scope) -> pl.Series:
        # per user: a share holds all of each of its users' rows, so no scope is needed
        if (self.test_fraction is None) == (self.last_n is None):
            raise DataError("UserTimeSplitter needs exactly one of test_fraction and last_n.")
        order = df.with_row_index("_row").sort([USER, TIMESTAMP, ITEM])
        rank = pl.int_range(1, pl.len() + 1).over(USER)
        count = pl.len().over(USER)
        if self.last_n is not None:
            if self.last_n < 1:
                raise DataError(f"last_n must be >= 1, got {self.last_n}.")
            flag = rank > count - self.last_n
        else:
            assert self.test_fraction is not None  # exactly one of the two: checked above
            fraction = self.test_fraction
            _check_fraction(fraction)
            flag = (rank / count).round(3) > round(1 - fraction, 3)
        marked = order.select("_row", flag.alias("t")).sort("_row")
        return marked["t"]


@dataclass(frozen=True)
class RandomSplitter(Splitter):
    """A random ``test_fraction`` of the interactions is test (reproducible with ``seed``)."""

    test_fraction: float = 0.2
    seed: int = 42

    def _is_test(self, df: pl.DataFrame, scope: Scope) -> pl.Series:
        _check_fraction(self.test_fraction)
        n = scope.total(df.height)
        n_test = n - round(n * (1 - self.test_fraction))
        mask = np.zeros(n, dtype=bool)
        mask[np.random.default_rng(self.seed).permutation(n)[:n_test]] = True
        return pl.Series(mask[scope.row_numbers(df.height)])
