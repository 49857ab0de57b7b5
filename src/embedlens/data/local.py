"""Loading any user–item interaction log from a CSV or Parquet file."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from embedlens.data.dataset import ITEM, RATING, TIMESTAMP, USER, Dataset, require_columns
from embedlens.errors import DataError


def load_log(
    path: str | Path,
    user: str = USER,
    item: str = ITEM,
    rating: str | None = RATING,
    timestamp: str | None = TIMESTAMP,
    separator: str = ",",
    name: str | None = None,
) -> Dataset:
    """Load an interaction log, mapping its column names onto the embedlens schema.

    ``rating=None`` marks an implicit log (every row gets rating 1.0); ``timestamp=None`` means
    the log has no time (every row gets 0, so time-based splits refuse it). A timestamp column
    of datetimes is converted to Unix seconds.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"No such interaction log: {path}")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        df = pl.read_parquet(path)
    elif suffix in (".csv", ".tsv", ".txt", ".dat"):
        df = pl.read_csv(path, separator="\t" if suffix == ".tsv" else separator)
    else:
        raise DataError(f"{path.name}: unsupported log format {suffix!r}; use CSV or Parquet.")
    wanted = [c for c in (user, item, rating, timestamp) if c is not None]
    require_columns(df, wanted, f"Log {path.name}")
    if df.height == 0:
        raise DataError(f"Log {path.name} has no rows.")
    ts = pl.col(timestamp) if timestamp else pl.lit(0, dtype=pl.Int64)
    if timestamp and df.schema[timestamp].is_temporal():
        ts = ts.cast(pl.Datetime("ms")).dt.epoch("s")
    out = df.select(
        pl.col(user).alias(USER),
        pl.col(item).alias(ITEM),
        (pl.col(rating).cast(pl.Float32) if rating else pl.lit(1.0, dtype=pl.Float32)).alias(
            RATING
        ),
        ts.cast(pl.Int64).alias(TIMESTAMP),
    )
    nulls = out.null_count().row(0, named=True)
    bad = [c for c, n in nulls.items() if n]
    if bad:
        raise DataError(f"Log {path.name} has missing values in {', '.join(bad)}.")
    return Dataset(name or path.stem, out, meta={"source": str(path), "has_time": bool(timestamp)})
