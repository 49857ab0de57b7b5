"""The one table schema every loader produces and every method consumes."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import polars as pl

from embedlens.errors import DataError

USER, ITEM, RATING, TIMESTAMP = "user_id", "item_id", "rating", "timestamp"
INTERACTION_COLUMNS = (USER, ITEM, RATING, TIMESTAMP)
ITEM_COLUMNS = (ITEM, "title", "year", "genres")
TAG_COLUMNS = (USER, ITEM, "tag", TIMESTAMP)


def require_columns(df: pl.DataFrame, columns: tuple[str, ...] | list[str], what: str) -> None:
    """Raise a :class:`DataError` naming every column of ``columns`` missing from ``df``."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(
            f"{what} is missing column(s) {', '.join(missing)}; it has {', '.join(df.columns)}."
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

    def __post_init__(self) -> None:
        require_columns(self.interactions, INTERACTION_COLUMNS, f"{self.name} interactions")
        if self.items is not None:
            require_columns(self.items, ITEM_COLUMNS, f"{self.name} items")
        if self.tags is not None:
            require_columns(self.tags, TAG_COLUMNS, f"{self.name} tags")

    @property
    def n_interactions(self) -> int:
        """Number of interaction rows."""
        return self.interactions.height

    @property
    def n_users(self) -> int:
        """Number of distinct users with at least one interaction."""
        return self.interactions[USER].n_unique()

    @property
    def n_items(self) -> int:
        """Number of distinct items with at least one interaction."""
        return self.interactions[ITEM].n_unique()

    def with_interactions(self, interactions: pl.DataFrame) -> Dataset:
        """A copy sharing the side tables, with new interactions (e.g. after filtering)."""
        return replace(self, interactions=interactions)

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
            out["rating_min"] = float(df[RATING].min())
            out["rating_max"] = float(df[RATING].max())
            out["rating_mean"] = round(float(df[RATING].mean()), 4)
            out["time_first"] = _iso(int(df[TIMESTAMP].min()))
            out["time_last"] = _iso(int(df[TIMESTAMP].max()))
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
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d")


def top_tags(tags: pl.DataFrame, max_tags: int) -> pl.DataFrame:
    """item_id -> its ``max_tags`` most used tags (lower-cased, stripped; ties by name)."""
    return (
        tags.select(ITEM, pl.col("tag").str.to_lowercase().str.strip_chars())
        .filter(pl.col("tag") != "")
        .group_by(ITEM, "tag").len()
        .sort([ITEM, "len", "tag"], descending=[False, True, False])
        .group_by(ITEM, maintain_order=True).agg(pl.col("tag").head(max_tags))
    )
