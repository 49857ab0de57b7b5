"""The one table schema: column names every loader produces and every method consumes."""

from __future__ import annotations

import polars as pl

from embedlens.core.errors import DataError

USER, ITEM, RATING, TIMESTAMP = "user_id", "item_id", "rating", "timestamp"
INTERACTION_COLUMNS = (USER, ITEM, RATING, TIMESTAMP)
ITEM_COLUMNS = (ITEM, "title", "year", "genres")
TAG_COLUMNS = (USER, ITEM, "tag", TIMESTAMP)

#: Ratings of larger magnitude are refused as absurd: no scale in use comes near, and sums
#: of squares of such values overflow the float32 arithmetic the methods train in.
MAX_ABS_RATING = 1e6


def require_columns(df: pl.DataFrame, columns: tuple[str, ...] | list[str], what: str) -> None:
    """Raise a :class:`DataError` naming every column of ``columns`` missing from ``df``."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(
            f"{what} is missing column(s) {', '.join(missing)}; it has {', '.join(df.columns)}."
        )
