"""Loading any user–item interaction log from a CSV or Parquet file."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import polars as pl

from embedlens.core.distributed import share, together, world
from embedlens.core.errors import DataError
from embedlens.core.schema import ITEM, RATING, TIMESTAMP, USER, require_columns
from embedlens.data.dataset import Dataset, check_ratings, merge_duplicates
from embedlens.data.shares import as_share

#: The names ``--columns`` maps (``user=uid,item=sku,rating=,timestamp=ts``).
COLUMN_ROLES = ("user", "item", "rating", "timestamp")


def parse_columns(spec: str | dict | None) -> dict[str, str | None]:
    """A column mapping from ``"user=uid,item=sku,rating=,timestamp=ts"`` (an empty value:
    the log has no such column) or a dict; unnamed roles keep their defaults."""
    if spec is None or spec == "":
        return {}
    if isinstance(spec, dict):
        pairs = list(spec.items())
    elif isinstance(spec, str):
        pairs = []
        for part in spec.split(","):
            role, sep, column = part.partition("=")
            if not sep:
                raise DataError(f"--columns expects role=column pairs, got {part.strip()!r} "
                                "(e.g. user=uid,item=sku,rating=,timestamp=ts).")
            pairs.append((role, column))
    else:
        raise DataError(f"columns must be a mapping of role to column, got {spec!r}.")
    out: dict[str, str | None] = {}
    for role, column in pairs:
        role = str(role).strip()
        if role not in COLUMN_ROLES:
            raise DataError(f"Unknown column role {role!r}; roles: {', '.join(COLUMN_ROLES)}.")
        if column is not None and not isinstance(column, str):
            raise DataError(f"Column for {role} must be a name, got {column!r}.")
        name = (column or "").strip()
        if not name and role in ("user", "item"):
            raise DataError(f"The log needs a {role} column; --columns gave none.")
        out[role] = name or None
    return out


def load_log(
    path: str | Path,
    user: str = USER,
    item: str = ITEM,
    rating: str | None = RATING,
    timestamp: str | None = TIMESTAMP,
    separator: str = ",",
    name: str | None = None,
    shared: bool = False,
) -> Dataset:
    """Load an interaction log, mapping its column names onto the embedlens schema.

    ``rating=None`` marks an implicit log (every row gets rating 1.0, and every test row of
    any protocol is relevant); ``timestamp=None`` means
    the log has no time (every row gets 0, so time-based splits refuse it). A timestamp column
    of datetimes (or ISO date strings) is converted to Unix seconds. Repeated (user, item)
    rows keep the latest (:func:`~embedlens.data.dataset.merge_duplicates`); how many were
    merged is in ``meta["duplicates_merged"]``. Bad values (text in a number column, missing
    ids, non-finite ratings) raise one :class:`DataError` naming the file and column.

    ``shared``: under torchrun, each rank reads only its share of the rows and ends with
    its users' rows (:mod:`embedlens.data.shares`; ``Dataset.is_share``), a bad value
    anywhere failing every rank; one process reads the whole log as usual.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"No such interaction log: {path}")
    suffix = path.suffix.lower()
    if shared and world().size > 1:
        return _load_share(path, suffix, separator, (user, item, rating, timestamp), name)
    out = _in_schema(_collected(_scan(path, suffix, separator), path), path, user, item,
                     rating, timestamp)
    if out.height == 0:
        raise DataError(f"Log {path.name} has no rows.")
    out, merged = merge_duplicates(out)
    return Dataset(name or path.stem, out, meta=_meta(path, rating, timestamp, merged))


def _load_share(path: Path, suffix: str, separator: str,
                columns: tuple[str, str, str | None, str | None], name: str | None) -> Dataset:
    """This rank's users' rows of the log, after each rank read its share of the rows."""
    user, item, rating, timestamp = columns
    with together():  # a bad value in one rank's share stops every rank, with its message
        lazy = _scan(path, suffix, separator)
        n = int(_collected(lazy.select(pl.len()), path).item())
        if n == 0:
            raise DataError(f"Log {path.name} has no rows.")
        lo, hi = share(n, kind="log rows read")
        df = _in_schema(_collected(lazy.slice(lo, hi - lo), path), path, user, item,
                        rating, timestamp)
    return as_share(Dataset(name or path.stem, df, meta=_meta(path, rating, timestamp, 0)),
                    df, lo)


def _meta(path: Path, rating: str | None, timestamp: str | None, merged: int
          ) -> dict[str, object]:
    return {"source": str(path), "has_time": bool(timestamp), "implicit": rating is None,
            "duplicates_merged": merged}


def _in_schema(df: pl.DataFrame, path: Path, user: str, item: str, rating: str | None,
               timestamp: str | None) -> pl.DataFrame:
    """The log's columns as the embedlens schema, every value checked."""
    wanted = [c for c in (user, item, rating, timestamp) if c is not None]
    require_columns(df, wanted, f"Log {path.name}")
    for role, col in (("user", user), ("item", item)):
        nulls = df[col].null_count()
        if nulls:
            raise DataError(f"Log {path.name}: {nulls:,} row(s) have no {role} id in column "
                            f"{col!r}; fill or drop them.")
    out = df.select(
        pl.col(user).alias(USER),
        pl.col(item).alias(ITEM),
        _numbers(df, rating, pl.Float32, path) if rating else pl.lit(1.0, dtype=pl.Float32)
        .alias(RATING),
        _timestamps(df, timestamp, path) if timestamp else pl.lit(0, dtype=pl.Int64)
        .alias(TIMESTAMP),
    )
    if rating:
        check_ratings(out, f"Log {path.name}", rating)
    return out


def _scan(path: Path, suffix: str, separator: str) -> pl.LazyFrame:
    """The log, lazily: a slice of it reads (Parquet: only the row groups it needs) and
    parses only its rows; the CSV schema is inferred from the file's start, so every rank's
    share has the same column types."""
    with _read_errors(path):
        if suffix in (".parquet", ".pq"):
            return pl.scan_parquet(path)
        if suffix in (".csv", ".tsv", ".txt", ".dat"):
            return pl.scan_csv(path, separator="\t" if suffix == ".tsv" else separator,
                               infer_schema_length=10_000)
    raise DataError(f"{path.name}: unsupported log format {suffix!r}; use CSV or Parquet.")


def _collected(lazy: pl.LazyFrame, path: Path) -> pl.DataFrame:
    with _read_errors(path):
        return lazy.collect()
    raise AssertionError("unreachable")  # for the type checker: the block returns or raises


@contextmanager
def _read_errors(path: Path) -> Iterator[None]:
    """A failed read as one line naming the file (not UTF-8, not a table, unreadable)."""
    try:
        yield
    except pl.exceptions.PolarsError as exc:
        text = " ".join(str(exc).split())
        if "utf-8" in text.lower() or "utf8" in text.lower():
            raise DataError(f"{path.name} is not UTF-8 text ({text[:120]}); re-save it as "
                            "UTF-8.") from None
        raise DataError(f"Cannot read the log {path.name}: {text[:200]}") from None
    except OSError as exc:
        raise DataError(f"Cannot read the log {path}: {exc}") from None


def _numbers(df: pl.DataFrame, column: str, dtype: type[pl.DataType], path: Path) -> pl.Series:
    """``column`` cast to numbers; text that is no number is an error naming a value."""
    values = df[column]
    cast = values.cast(dtype, strict=False)
    bad = cast.is_null() & values.is_not_null()  # "1.5" casts, "abc" does not
    n_bad = int(bad.sum())
    if n_bad:
        first = values.filter(bad).head(1).to_list()[0]
        raise DataError(f"Log {path.name}: column {column!r} has {n_bad:,} value(s) that are "
                        f"not numbers (first: {first!r}).")
    nulls = cast.null_count()
    if nulls:
        raise DataError(f"Log {path.name}: column {column!r} has {nulls:,} missing value(s).")
    return cast.alias(RATING)


def _timestamps(df: pl.DataFrame, column: str, path: Path) -> pl.Series:
    """Unix seconds from integer or float seconds, datetimes or ISO date strings."""
    values = df[column]
    if values.dtype.is_temporal():
        out = values.cast(pl.Datetime("ms")).dt.epoch("s")
    elif values.dtype == pl.Utf8:
        numeric = values.cast(pl.Int64, strict=False)
        if numeric.null_count() == values.null_count():
            out = numeric
        else:
            try:
                out = values.str.to_datetime(strict=True).cast(pl.Datetime("ms")).dt.epoch("s")
            except pl.exceptions.PolarsError:
                bad = values.filter(numeric.is_null() & values.is_not_null()).head(1).to_list()
                raise DataError(f"Log {path.name}: column {column!r} holds text that is "
                                f"neither Unix seconds nor a date (first: {bad[0]!r}).") \
                    from None
    elif values.dtype.is_float():
        if (~values.is_finite()).any():
            raise DataError(f"Log {path.name}: column {column!r} has non-finite times.")
        out = values.floor().cast(pl.Int64)
    elif values.dtype.is_integer():
        out = values.cast(pl.Int64)
    else:
        raise DataError(f"Log {path.name}: column {column!r} holds {values.dtype}, not times.")
    if out.null_count():
        raise DataError(f"Log {path.name}: column {column!r} has {out.null_count():,} missing "
                        "time(s).")
    return out.alias(TIMESTAMP)
