"""Parsers for every MovieLens file layout, all producing the :class:`Dataset` schema."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import polars as pl

from embedlens.core.distributed import share, together, world
from embedlens.core.errors import DataError
from embedlens.core.schema import ITEM, RATING, TIMESTAMP, USER
from embedlens.data.dataset import Dataset, check_ratings, merge_duplicates
from embedlens.data.download import check_members, locate
from embedlens.data.registry import Variant, get_variant
from embedlens.data.shares import as_share

# Column order of the 19 genre flags in ml-100k's u.item (from u.genre).
GENRES_100K = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
# Genre labels that mean "none": they become an empty genre list.
_NO_GENRE = ("unknown", "(no genres listed)")
_YEAR_IN_TITLE = r"\((\d{4})[^()]*\)\s*$"


class _Source:
    """Files of one variant, in an extracted folder or still inside its zip."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._zip: zipfile.ZipFile | None = None
        self._members: dict[str, str] = {}
        if path.is_file():
            try:
                self._zip = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError) as exc:
                raise DataError(f"{path} is not a valid zip archive ({exc}).") from None
            check_members(self._zip, path.name, DataError)
            for member in self._zip.namelist():
                self._members.setdefault(member.rsplit("/", 1)[-1], member)

    def has(self, name: str) -> bool:
        if self._zip is not None:
            return name in self._members
        return (self.path / name).is_file()

    def open(self, name: str) -> Path | io.BytesIO:
        """A path (folders: polars reads it directly, memory-mapped) or an in-memory buffer."""
        if not self.has(name):
            raise DataError(f"{self.path} has no {name}; is it a complete MovieLens copy?")
        if self._zip is not None:
            try:
                return io.BytesIO(self._zip.read(self._members[name]))
            except (zipfile.BadZipFile, OSError, EOFError) as exc:  # e.g. a bad CRC-32
                raise DataError(f"{self.path}: member {name} is damaged ({exc}); fetch the "
                                "archive again.") from None
        return self.path / name

    def read_csv(self, name: str, **kwargs: object) -> pl.DataFrame:
        """``polars.read_csv`` of one file; a malformed file is one error naming it."""
        return read_table(self.open(name), f"{self.path}/{name}", **kwargs)

    def text(self, name: str) -> str:
        """A file's text; old variants are Latin-1, new ones UTF-8."""
        src = self.open(name)
        raw = src.read_bytes() if isinstance(src, Path) else src.getvalue()
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.decode("latin-1")

    def count_rows(self, name: str) -> int:
        """How many rows a CSV file holds (its header aside), counted without parsing it."""
        try:
            return int(pl.scan_csv(self.open(name)).select(pl.len()).collect().item())
        except pl.exceptions.PolarsError as exc:
            raise _malformed(f"{self.path}/{name}", exc) from None


def read_table(source: Path | io.BytesIO, label: str, **kwargs: object) -> pl.DataFrame:
    """``polars.read_csv`` whose errors (text in a number column, bad bytes) name the file."""
    try:
        return pl.read_csv(source, **kwargs)  # type: ignore[arg-type]
    except pl.exceptions.PolarsError as exc:
        raise _malformed(label, exc) from None


def _malformed(label: str, exc: Exception) -> DataError:
    """The one line for a file polars could not read: its name and polars' reason."""
    text = " ".join(str(exc).split())
    return DataError(f"{label} is malformed: {text[:200]}")


def load_movielens(name: str, data_dir: str | Path | None = None, download: bool = True,
                   shared: bool = False) -> Dataset:
    """Load a MovieLens variant by name (``"ml-100k"``, ``"ml-25m"``, ``"latest-small"`` …).

    With ``data_dir`` the variant is read from ``<data_dir>/<variant>/`` or
    ``<data_dir>/<variant>.zip``; without it, from the cache, downloading it once if needed.
    Repeated (user, movie) ratings keep the latest (``meta["duplicates_merged"]`` counts
    the others; the official releases have none). ``shared``: under torchrun, each rank
    ends with its users' ratings (:mod:`embedlens.data.shares`): it parses only its share
    of ``ratings.csv`` (ML-20M and later, the large variants) or, in the older formats (10M
    ratings at most), keeps its share of the parsed ratings; the movie and tag tables whole.
    """
    variant = get_variant(name)
    source = _Source(locate(variant, data_dir, download=download))
    if shared and variant.layout == "csv" and world().size > 1:
        return _csv_share(source, variant)
    parse = {"100k": _parse_100k, "dat": _parse_dat, "csv": _parse_csv}[variant.layout]
    dataset = parse(source, variant)
    if shared and world().size > 1:  # an older format, parsed whole: keep this rank's share
        lo, hi = share(dataset.n_interactions, kind="log rows read")
        dataset.meta["source"] = str(source.path)
        return as_share(dataset, dataset.interactions.slice(lo, hi - lo), lo)
    interactions, merged = merge_duplicates(dataset.interactions)
    if merged:
        dataset = dataset.with_interactions(interactions)
    dataset.meta.update(source=str(source.path), duplicates_merged=merged)
    return dataset


def _interactions(df: pl.DataFrame, label: str) -> pl.DataFrame:
    try:
        out = df.select(
            pl.col(USER).cast(pl.Int32),
            pl.col(ITEM).cast(pl.Int32),
            pl.col(RATING).cast(pl.Float32),
            pl.col(TIMESTAMP).cast(pl.Int64),
        )
    except pl.exceptions.PolarsError as exc:
        text = " ".join(str(exc).split())
        raise DataError(f"{label} holds values of the wrong kind: {text[:200]}") from None
    check_ratings(out, label)
    return out


def _items(df: pl.DataFrame, genres: pl.Expr) -> pl.DataFrame:
    """item_id, title, year (from the title's trailing "(1995)"), genres list."""
    return df.select(
        pl.col(ITEM).cast(pl.Int32),
        pl.col("title").str.strip_chars(),
        pl.col("title").str.extract(_YEAR_IN_TITLE, 1).cast(pl.Int32, strict=False).alias("year"),
        genres.list.filter(~pl.element().is_in(_NO_GENRE)).alias("genres"),
    )


def _tags(df: pl.DataFrame) -> pl.DataFrame:
    return df.select(
        pl.col(USER).cast(pl.Int32),
        pl.col(ITEM).cast(pl.Int32),
        pl.col("tag").cast(pl.Utf8),
        pl.col(TIMESTAMP).cast(pl.Int64),
    ).filter(pl.col("tag").is_not_null())


def _split_lines(text: str, pattern: str, names: list[str]) -> pl.DataFrame:
    """Split each non-empty line with a regex whose groups are ``names``.

    A regex rather than a plain split on ``::`` because a free-text field (a tag, a title) may
    itself contain ``::``; greedy groups around it keep it whole.
    """
    lines = pl.Series("line", text.splitlines()).filter(pl.Series(text.splitlines()) != "")
    parts = lines.str.extract_groups(pattern).struct.rename_fields(names).struct.unnest()
    bad = parts.select(pl.col(names[0]).is_null().sum()).item()
    if bad:
        raise DataError(f"{bad} line(s) do not match the expected '::' layout ({pattern}).")
    return parts


_MOVIES_DAT = r"^(\d+)::(.*)::([^:]*)$"
_TAGS_DAT = r"^(\d+)::(\d+)::(.*)::(\d+)$"
_USERS_DAT = r"^(\d+)::([^:]*)::(\d+)::([^:]*)::(.*)$"


def _parse_100k(src: _Source, variant: Variant) -> Dataset:
    ratings = src.read_csv(
        "u.data",
        separator="\t",
        has_header=False,
        new_columns=[USER, ITEM, RATING, TIMESTAMP],
    )
    flags = [f"g{i}" for i in range(len(GENRES_100K))]
    raw = read_table(
        io.BytesIO(src.text("u.item").encode()),
        f"{src.path}/u.item",
        separator="|",
        has_header=False,
        quote_char=None,
        new_columns=[ITEM, "title", "released", "video", "imdb", *flags],
        schema_overrides={f: pl.Int8 for f in flags},
    )
    genres = pl.concat_list(
        [pl.when(pl.col(f) == 1).then(pl.lit(g)) for f, g in zip(flags, GENRES_100K, strict=True)]
    ).list.drop_nulls()
    items = _items(raw, genres)
    # Titles without "(year)" (e.g. item 267 "unknown") fall back to the release date's year.
    released = raw["released"].str.extract(r"(\d{4})$", 1).cast(pl.Int32, strict=False)
    items = items.with_columns(pl.col("year").fill_null(released))
    users = src.read_csv(
        "u.user",
        separator="|",
        has_header=False,
        new_columns=[USER, "age", "gender", "occupation", "zip"],
        schema_overrides={"zip": pl.Utf8},
    ).select(pl.col(USER).cast(pl.Int32), "gender", pl.col("age").cast(pl.Int32), "occupation")
    return Dataset(variant.name, _interactions(ratings, f"{src.path}/u.data"), items=items,
                   users=users)


def _parse_dat(src: _Source, variant: Variant) -> Dataset:
    # Ratings are numbers only, so "::" can become a one-byte separator and polars' fast CSV
    # reader does the rest (ml-10m has 10M rows).
    raw = src.open("ratings.dat")
    data = raw.read_bytes() if isinstance(raw, Path) else raw.getvalue()
    ratings = read_table(
        io.BytesIO(data.replace(b"::", b"\t")),
        f"{src.path}/ratings.dat",
        separator="\t",
        has_header=False,
        new_columns=[USER, ITEM, RATING, TIMESTAMP],
    )
    movies = _split_lines(src.text("movies.dat"), _MOVIES_DAT, [ITEM, "title", "genres"])
    items = _items(movies, pl.col("genres").str.split("|"))
    tags = None
    if src.has("tags.dat"):
        t = _split_lines(src.text("tags.dat"), _TAGS_DAT, [USER, ITEM, "tag", TIMESTAMP])
        tags = _tags(t)
    users = None
    if src.has("users.dat"):
        u = _split_lines(
            src.text("users.dat"), _USERS_DAT, [USER, "gender", "age", "occupation", "z"]
        )
        users = u.select(
            pl.col(USER).cast(pl.Int32), "gender", pl.col("age").cast(pl.Int32), "occupation"
        )
    return Dataset(variant.name, _interactions(ratings, f"{src.path}/ratings.dat"), items=items,
                   tags=tags, users=users)


_RENAME = {"userId": USER, "movieId": ITEM}
_RATINGS = {"userId": pl.Int32, "movieId": pl.Int32, RATING: pl.Float32, TIMESTAMP: pl.Int64}


def _parse_csv(src: _Source, variant: Variant) -> Dataset:
    ratings = src.read_csv("ratings.csv", schema=_RATINGS).rename(_RENAME, strict=False)
    return _with_side_tables(src, variant, ratings)


def _csv_share(src: _Source, variant: Variant) -> Dataset:
    """This rank's users' ratings, after each rank parsed its share of ``ratings.csv``."""
    with together():  # a malformed share stops every rank, with its message
        lo, hi = share(src.count_rows("ratings.csv"), kind="log rows read")
        ratings = src.read_csv("ratings.csv", schema=_RATINGS, skip_rows_after_header=lo,
                               n_rows=hi - lo).rename(_RENAME, strict=False)
        dataset = _with_side_tables(src, variant, ratings)
    dataset.meta["source"] = str(src.path)
    return as_share(dataset, dataset.interactions, lo)


def _with_side_tables(src: _Source, variant: Variant, ratings: pl.DataFrame) -> Dataset:
    """The dataset of a CSV-layout variant: ``ratings`` with the movie and tag tables."""
    rename = _RENAME
    movies = src.read_csv("movies.csv", schema_overrides={"title": pl.Utf8})
    movies = movies.rename(rename, strict=False)
    items = _items(movies, pl.col("genres").str.split("|"))
    tags = None
    if src.has("tags.csv"):
        t = src.read_csv(
            "tags.csv",
            schema={"userId": pl.Int32, "movieId": pl.Int32, "tag": pl.Utf8, TIMESTAMP: pl.Int64},
        ).rename(rename, strict=False)
        tags = _tags(t)
    return Dataset(variant.name, _interactions(ratings, f"{src.path}/ratings.csv"), items=items,
                   tags=tags)
