"""Interaction filters: one class per rule, each a pure function of a table (RePlay style).

Every filter takes and returns an interactions frame (``user_id, item_id, rating,
timestamp``) and raises :class:`DataError` instead of returning an empty table.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from embedlens.core.errors import DataError
from embedlens.core.schema import ITEM, RATING, USER, require_columns


def _non_empty(df: pl.DataFrame, why: str) -> pl.DataFrame:
    if df.height == 0:
        raise DataError(f"No interactions left after {why}; loosen the filter.")
    return df


@dataclass(frozen=True)
class RatingFilter:
    """Keep interactions with ``rating >= min_rating``."""

    min_rating: float

    def __call__(self, df: pl.DataFrame) -> pl.DataFrame:
        require_columns(df, [RATING], "interactions")
        return _non_empty(df.filter(pl.col(RATING) >= self.min_rating), f"{self}")


@dataclass(frozen=True)
class MinCountFilter:
    """One pass: drop users with fewer than ``min_user`` and items with fewer than ``min_item``
    interactions, both counted on the input (so a survivor may fall below after the pass;
    use :class:`KCoreFilter` when that matters)."""

    min_user: int = 0
    min_item: int = 0

    def __call__(self, df: pl.DataFrame) -> pl.DataFrame:
        require_columns(df, [USER, ITEM], "interactions")
        out = df.filter(
            (pl.len().over(USER) >= self.min_user) & (pl.len().over(ITEM) >= self.min_item)
        )
        return _non_empty(out, f"{self}")


@dataclass(frozen=True)
class KCoreFilter:
    """Iterate until every user has ``>= k_user`` and every item ``>= k_item`` interactions."""

    k_user: int = 5
    k_item: int = 5
    max_rounds: int = 100

    def __call__(self, df: pl.DataFrame) -> pl.DataFrame:
        one_pass = MinCountFilter(self.k_user, self.k_item)
        for _ in range(self.max_rounds):
            before = df.height
            df = one_pass(df) if df.height else df
            if df.height == before:
                return df
        raise DataError(f"{self} did not converge in {self.max_rounds} rounds.")
