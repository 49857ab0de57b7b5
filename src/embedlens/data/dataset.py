"""The one table schema every loader produces and every method consumes."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import polars as pl

from embedlens.core.errors import DataError
from embedlens.core.schema import (
    INTERACTION_COLUMNS,
    ITEM,
    ITEM_COLUMNS,
    MAX_ABS_RATING,
    RATING,
    TAG_COLUMNS,
    TIMESTAMP,
    USER,
    require_columns,
)


@dataclass
class Dataset:
    """An interaction log and, where the source has them, movie, tag and user tables.

    ``interactions``: user_id, item_id, rating (Float32), timestamp (Int64, Unix seconds).
    ``items``: item_id, title, year (nullable Int32), genres (list of str).
    ``tags``: user_id, item_id, tag, timestamp.  ``users``: user_id plus whatever the source
    has (gender, age, occupation for ml-100k and ml-1m).
    """

    name: str
    interactions: pl.DataFrame
    items: pl.DataFrame | None = None
    tags: pl.DataFrame | None = None
    users: pl.DataFrame | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    #: Under torchrun, when ``interactions`` is one rank's share of the log (its users' rows,
    #: :mod:`embedlens.data.shares`): each row's number in the whole log; None for a whole
    #: log. ``meta["share"]`` then holds the whole log's counts.
    rows: np.ndarray | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        require_columns(self.interactions, INTERACTION_COLUMNS, f"{self.name} interactions")
        check_ratings(self.interactions, f"{self.name}")
        if self.items is not None:
            require_columns(self.items, ITEM_COLUMNS, f"{self.name} items")
        if self.tags is not None:
            require_columns(self.tags, TAG_COLUMNS, f"{self.name} tags")

    @property
    def is_share(self) -> bool:
        """Whether ``interactions`` holds one rank's share of the log, not the whole log."""
        return self.rows is not None

    @property
    def n_interactions(self) -> int:
        """Number of interaction rows (of the whole log, also when this holds a share)."""
        return int(self.meta["share"]["interactions"]) if self.is_share \
            else self.interactions.height

    @property
    def n_users(self) -> int:
        """Number of distinct users with at least one interaction."""
        return int(self.meta["share"]["users"]) if self.is_share \
            else self.interactions[USER].n_unique()

    @property
    def n_items(self) -> int:
        """Number of distinct items with at least one interaction."""
        return int(self.meta["share"]["items"]) if self.is_share \
            else self.interactions[ITEM].n_unique()

    def with_interactions(self, interactions: pl.DataFrame) -> Dataset:
        """A copy sharing the side tables, with new interactions (e.g. after filtering);
        never marked as a share of the log."""
        meta = {k: v for k, v in self.meta.items() if k != "share"}
        return replace(self, interactions=interactions, meta=meta, rows=None)

    def summary(self) -> dict[str, Any]:
        """Counts and ranges that describe the dataset (what ``datasets info`` prints)."""
        df = self.interactions
        n_u, n_i = self.n_users, self.n_items
        out: dict[str, Any] = {
            "dataset": self.name,
            "interactions": df.height,
            "users": n_u,
            "items": n_i,
            "density": df.height / (n_u * n_i) if n_u and n_i else 0.0,
        }
        if df.height:
            low, high, mean, first, last = df.select(
                pl.col(RATING).min().cast(pl.Float64).alias("low"),
                pl.col(RATING).max().cast(pl.Float64).alias("high"),
                pl.col(RATING).mean().alias("mean"), pl.col(TIMESTAMP).min().alias("first"),
                pl.col(TIMESTAMP).max().alias("last")).row(0)
            out["rating_min"], out["rating_max"] = low, high
            out["rating_mean"] = round(mean, 4)
            out["time_first"], out["time_last"] = _iso(first), _iso(last)
        if self.items is not None:
            out["movies"] = self.items.height
            out["genres"] = self.items["genres"].explode().drop_nulls().n_unique()
        if self.tags is not None:
            out["tags"] = self.tags.height
        if self.users is not None:
            out["user_profiles"] = self.users.height
        return out

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, interactions={self.n_interactions:,}, "
            f"users={self.n_users:,}, items={self.n_items:,})"
        )


def _iso(ts: int) -> str:
    """A Unix time as a date; any int64, including times before 1970 or out of range."""
    from datetime import UTC, datetime, timedelta

    try:
        return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=ts)).strftime("%Y-%m-%d")
    except OverflowError:
        return f"{ts} (not a date)"


def check_ratings(df: pl.DataFrame, source: str, column: str = RATING) -> None:
    """Refuse ratings that are missing, not finite, or beyond :data:`MAX_ABS_RATING`,
    naming the column, how many rows and the first bad value."""
    values = df[RATING]
    if not values.dtype.is_numeric():
        raise DataError(f"{source}: column {column!r} holds {values.dtype}, not numbers.")
    if values.dtype.is_float():
        bad = values.is_null() | ~values.is_finite() | (values.abs() > MAX_ABS_RATING)
    else:
        bad = values.is_null() | (values.abs() > MAX_ABS_RATING)
    n_bad = int(bad.sum())
    if n_bad:
        first = values.filter(bad).head(1).to_list()[0]
        raise DataError(f"{source}: column {column!r} has {n_bad:,} row(s) that are missing, "
                        f"not finite or beyond ±{MAX_ABS_RATING:g} (first: {first}); fix or "
                        "drop them.")


def merge_duplicates(df: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """The load-time policy for repeated (user, item) rows: keep the latest one (by
    timestamp; on a tie, the later row of the log), drop the others, keep the row order.

    A repeated pair would otherwise put one interaction on both sides of a split, and the
    test copy could never be ranked (train items are excluded) yet would count as a miss.
    Returns the merged frame and how many rows were dropped.
    """
    if df.height < 2:
        return df, 0
    ints = all(df.schema[c].is_integer() for c in (USER, ITEM))
    if ints and df.select(
            (pl.min_horizontal(pl.col(USER).min(), pl.col(ITEM).min()) >= 0).alias("low"),
            (pl.max_horizontal(pl.col(USER).max(), pl.col(ITEM).max()) < 2**31).alias("high"),
    ).row(0) == (True, True):
        key = pl.col(USER).cast(pl.Int64) * 2**31 + pl.col(ITEM).cast(pl.Int64)
        distinct = df.select(key.n_unique()).item()  # 0.5 s at 25M rows
    else:
        distinct = df.select(USER, ITEM).n_unique()
    if distinct == df.height:
        return df, 0
    latest = (df.select(USER, ITEM, TIMESTAMP).with_row_index("_row")
              .group_by(USER, ITEM)
              .agg(pl.col("_row").sort_by([TIMESTAMP, "_row"]).last()))["_row"].to_numpy()
    keep = np.zeros(df.height, dtype=bool)
    keep[latest] = True
    return df.filter(pl.Series(keep)), df.height - int(latest.size)


def top_tags(tags: pl.DataFrame, max_tags: int) -> pl.DataFrame:
    """item_id -> its ``max_tags`` most used tags (lower-cased, stripped; ties by name)."""
    return (
        tags.select(ITEM, pl.col("tag").str.to_lowercase().str.strip_chars())
        .filter(pl.col("tag") != "")
        .group_by(ITEM, "tag").len()
        .sort([ITEM, "len", "tag"], descending=[False, True, False])
        .group_by(ITEM, maintain_order=True).agg(pl.col("tag").head(max_tags))
    )
