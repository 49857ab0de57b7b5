"""Synthetic interaction logs with MovieLens-like statistics, for scale benchmarks.

The real large variants cannot be redistributed or downloaded here, so speed and memory at
ML-20M/25M scale are measured on logs generated to match their shape: the same numbers of
users, items and ratings, power-law item popularity, heavy-tailed user activity with
MovieLens' 20-ratings minimum, no repeated (user, item) pair, time-ordered sessions and
half-star ratings, plus a movie table with genres.

The log has planted structure, so that a method's quality means something at any size: every
movie belongs to one taste cluster (its first genre says which), every user has one taste,
and a share ``in_taste`` of a user's draws come from their taste's movies (by popularity
within it), the rest from the whole catalogue by popularity. The best possible ranking is
known (:func:`planted_vectors`), popularity is clearly beatable, and a method that learns
who likes what beats it. Users also rate their taste's movies higher.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np
import polars as pl
from numba import njit, prange

from embedlens.core.embeddings import Embeddings
from embedlens.core.errors import DataError, unknown_name
from embedlens.core.files import atomic_path
from embedlens.core.rng import next_below, next_float, stream
from embedlens.core.schema import ITEM, RATING, TIMESTAMP, USER
from embedlens.data.dataset import Dataset


@dataclass(frozen=True)
class Shape:
    """Target size of a synthetic log."""

    n_users: int
    n_items: int
    n_interactions: int
    min_per_user: int = 20


SHAPES = {
    "ml-1m": Shape(6_040, 3_706, 1_000_209),
    "ml-20m": Shape(138_493, 26_744, 20_000_263),
    "ml-25m": Shape(162_541, 59_047, 25_000_095),
    "ml-latest": Shape(330_975, 86_537, 33_832_162),
}

GENRES = (
    "Drama",
    "Comedy",
    "Thriller",
    "Romance",
    "Action",
    "Horror",
    "Crime",
    "Documentary",
    "Adventure",
    "Sci-Fi",
    "Mystery",
    "Children",
    "Animation",
    "Fantasy",
    "War",
    "Western",
    "Musical",
    "Film-Noir",
    "IMAX",
)
_GENRE_WEIGHTS = np.array([25, 16, 8, 7, 7, 5, 5, 5, 4, 3, 3, 3, 3, 3, 2, 1, 1, 0.5, 0.3])
_T0, _T1 = 820_454_400, 1_574_000_000  # 1996-01-01 .. 2019-11-17, ML-25M's time range


#: The share of a user's ratings drawn from their own taste cluster.
IN_TASTE = 0.6


def synthetic_movielens(
    shape: str | Shape = "ml-25m", seed: int = 0, scale: float = 1.0
) -> Dataset:
    """Generate a log shaped like ``shape`` (``"ml-1m"``, ``"ml-20m"``, ``"ml-25m"``,
    ``"ml-latest"``).

    ``scale`` shrinks users and interactions proportionally (items too, by its square root)
    so tests can use the same generator at a tiny size. ``meta`` holds the planted structure
    (``taste`` per user, ``cluster`` per movie, both by position: id - 1) that
    :func:`planted_vectors` turns into the best possible ranking.
    """
    if isinstance(shape, str):
        if shape not in SHAPES:
            raise unknown_name("synthetic shape", shape, list(SHAPES))
        target = SHAPES[shape]
        name = f"synthetic-{shape}"
    else:
        target, name = shape, "synthetic"
    n_users = max(2, round(target.n_users * scale))
    n_items = max(2, round(target.n_items * np.sqrt(scale)))
    n_total = max(n_users * 2, round(target.n_interactions * scale))
    rng = np.random.default_rng(seed)

    per_user = _user_activity(rng, n_users, n_total, n_items, target.min_per_user)
    popularity = _item_popularity(rng, n_items)
    cluster = rng.choice(len(GENRES), size=n_items, p=_GENRE_WEIGHTS / _GENRE_WEIGHTS.sum())
    mass = np.bincount(cluster, weights=popularity, minlength=len(GENRES))
    taste = rng.choice(len(GENRES), size=n_users, p=mass / mass.sum())
    users, items = _sample_distinct(rng, per_user, popularity, cluster, taste)

    timestamps = _timestamps(rng, users, per_user)
    ratings = _ratings(rng, users, items, n_users, popularity, taste[users] == cluster[items])
    interactions = pl.DataFrame(
        {
            USER: (users + 1).astype(np.int32),
            ITEM: (items + 1).astype(np.int32),
            RATING: ratings,
            TIMESTAMP: timestamps,
        }
    )
    return Dataset(name, interactions, items=_item_table(rng, cluster),
                   meta={"seed": seed, "taste": taste, "cluster": cluster,
                         "popularity": popularity, "in_taste": IN_TASTE})


def planted_vectors(dataset: Dataset) -> tuple[Embeddings, Embeddings]:
    """User and item vectors whose dot product is each user's true chance of drawing each
    movie in a log from :func:`synthetic_movielens`: the best possible ranking (an oracle to
    put beside the methods). Raises for a dataset without planted structure."""
    meta = dataset.meta
    if "taste" not in meta:
        raise DataError(f"{dataset.name} has no planted structure (not from "
                        "synthetic_movielens).")
    taste, cluster, pop = meta["taste"], meta["cluster"], meta["popularity"]
    k = len(GENRES)
    mass = np.bincount(cluster, weights=pop, minlength=k)
    # score(u, i) = in * pop_i / mass(c_u) * [c_i = c_u] + (1 - in) * pop_i
    users = np.zeros((taste.size, k + 1), np.float32)
    users[np.arange(taste.size), taste] = meta["in_taste"] / mass[taste]
    users[:, k] = 1.0 - meta["in_taste"]
    items = np.zeros((cluster.size, k + 1), np.float32)
    items[np.arange(cluster.size), cluster] = pop
    items[:, k] = pop
    return (Embeddings(np.arange(1, taste.size + 1, dtype=np.int64), users, "user"),
            Embeddings(np.arange(1, cluster.size + 1, dtype=np.int64), items, "item"))


def _user_activity(
    rng: np.random.Generator, n_users: int, n_total: int, n_items: int, minimum: int
) -> np.ndarray:
    """Ratings per user: MovieLens' minimum plus a log-normal tail, summing to ``n_total``."""
    minimum = min(minimum, max(1, n_total // n_users))
    cap = max(minimum, n_items // 2)
    tail = rng.lognormal(mean=0.0, sigma=1.25, size=n_users)
    counts = np.full(n_users, minimum, dtype=np.int64)
    # Share what is left in proportion to the tail; what the cap cuts off goes round again.
    for _ in range(20):
        left = n_total - counts.sum()
        open_ = counts < cap
        if left <= 0 or not open_.any():
            break
        share = np.where(open_, tail, 0.0)
        counts = np.minimum(counts + np.floor(share / share.sum() * left).astype(np.int64), cap)
    left = n_total - counts.sum()
    if left > 0:  # the rounding remainder, one each to random users below the cap
        open_idx = np.flatnonzero(counts < cap)
        counts[rng.choice(open_idx, size=min(left, open_idx.size), replace=False)] += 1
    return counts


def _item_popularity(rng: np.random.Generator, n_items: int) -> np.ndarray:
    """Power-law popularity over a random item order (ML-25M: top movie ~0.3% of ratings)."""
    ranks = np.arange(1, n_items + 1, dtype=np.float64)
    weights = (ranks + 40.0) ** -1.15
    weights /= weights.sum()
    return weights[rng.permutation(n_items)]


def _sample_distinct(
    rng: np.random.Generator, per_user: np.ndarray, popularity: np.ndarray,
    cluster: np.ndarray, taste: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``per_user[u]`` distinct items for every user: with chance ``IN_TASTE`` from the
    user's taste cluster by popularity, else from the catalogue by popularity."""
    cdf = _cdf(popularity)
    members = np.argsort(cluster, kind="stable")
    bounds = np.searchsorted(cluster[members], np.arange(len(GENRES) + 1))
    cluster_cdf = np.concatenate([
        _cdf(popularity[members[lo:hi]]) for lo, hi in pairwise(bounds)
    ])
    offsets = np.concatenate([[0], np.cumsum(per_user)]).astype(np.int64)
    items = np.empty(offsets[-1], dtype=np.int64)
    _distinct_kernel(cdf, members, bounds, cluster_cdf, taste, IN_TASTE, offsets,
                     int(rng.integers(2**62)), items)
    users = np.repeat(np.arange(per_user.size, dtype=np.int64), per_user)
    return users, items


def _cdf(weights: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(weights)
    if cdf.size:
        cdf /= cdf[-1]
        cdf[-1] = 1.0
    return cdf


@njit(parallel=True, cache=True)
def _distinct_kernel(cdf: np.ndarray, members: np.ndarray, bounds: np.ndarray,
                     cluster_cdf: np.ndarray, taste: np.ndarray, in_taste: float,
                     offsets: np.ndarray, seed: int, out: np.ndarray) -> None:
    """Per user: draws without repeats, from the taste cluster or the catalogue; once draws
    mostly collide (a heavy user has exhausted the head), the remaining slots are filled
    uniformly from unseen items."""
    n_users, n_items = offsets.size - 1, cdf.size
    n_chunks = min(n_users, 256)
    for c in prange(n_chunks):
        seen = np.zeros(n_items, dtype=np.bool_)
        state = np.empty(1, dtype=np.uint64)
        for u in range(c, n_users, n_chunks):
            state[0] = stream(seed, u)
            lo, hi = offsets[u], offsets[u + 1]
            pos, tries = lo, 0
            lo_c, hi_c = bounds[taste[u]], bounds[taste[u] + 1]
            while pos < hi and tries < 3 * (hi - lo):
                tries += 1
                if next_float(state) < in_taste and hi_c > lo_c:
                    j = int(np.searchsorted(cluster_cdf[lo_c:hi_c], next_float(state),
                                            side="right"))
                    i = members[lo_c + min(j, hi_c - lo_c - 1)]
                else:
                    i = int(np.searchsorted(cdf, next_float(state), side="right"))
                if i < n_items and not seen[i]:
                    seen[i] = True
                    out[pos] = i
                    pos += 1
            while pos < hi:
                i = next_below(state, n_items)
                if not seen[i]:
                    seen[i] = True
                    out[pos] = i
                    pos += 1
            for p in range(lo, hi):
                seen[out[p]] = False


def _timestamps(rng: np.random.Generator, users: np.ndarray, per_user: np.ndarray) -> np.ndarray:
    """Each user is active over a log-normal span starting at a random time."""
    n_users = per_user.size
    start = rng.uniform(_T0, _T1 - 86_400, size=n_users)
    span = np.minimum(rng.lognormal(mean=13.0, sigma=2.5, size=n_users), _T1 - start)
    ts = start[users] + rng.random(users.size) * span[users]
    return ts.astype(np.int64)


def _ratings(
    rng: np.random.Generator,
    users: np.ndarray,
    items: np.ndarray,
    n_users: int,
    popularity: np.ndarray,
    liked: np.ndarray,
) -> np.ndarray:
    """Half-star ratings around 3.5 with user and item biases (popular items rate higher,
    and a user's own taste a star higher than the rest)."""
    user_bias = rng.normal(0.0, 0.45, size=n_users)
    item_bias = rng.normal(0.0, 0.4, size=popularity.size) + 0.15 * np.log(
        popularity / popularity.mean()
    ).clip(-3, 3)
    raw = (3.1 + user_bias[users] + item_bias[items] + np.where(liked, 1.0, 0.0)
           + rng.normal(0.0, 0.85, size=users.size))
    return (np.clip(np.round(raw * 2) / 2, 0.5, 5.0)).astype(np.float32)


def _item_table(rng: np.random.Generator, cluster: np.ndarray) -> pl.DataFrame:
    """Titles, years and genres; a movie's first genre is its taste cluster's, the others
    (up to two) are random."""
    n_items = cluster.size
    n_genres = rng.choice([1, 2, 3], size=n_items, p=[0.45, 0.35, 0.2])
    p = _GENRE_WEIGHTS / _GENRE_WEIGHTS.sum()
    genre_ids = rng.choice(len(GENRES), size=int(n_genres.sum()), p=p)
    offsets = np.concatenate([[0], np.cumsum(n_genres)])
    genre_ids[offsets[:-1]] = cluster
    genre_names = np.array(GENRES, dtype=object)[genre_ids]
    genres = (
        pl.Series(genre_names.tolist())
        .to_frame("g")
        .with_columns(pl.Series("item", np.repeat(np.arange(n_items), n_genres)))
        .group_by("item", maintain_order=True)
        .agg(pl.col("g").unique(maintain_order=True))
    )
    years = np.clip(2020 - np.floor(rng.exponential(18.0, size=n_items)), 1902, 2019).astype(
        np.int32
    )
    ids = np.arange(1, n_items + 1, dtype=np.int32)
    return pl.DataFrame(
        {
            ITEM: ids,
            "title": [f"Synthetic Movie {i} ({y})" for i, y in zip(ids, years, strict=True)],
            "year": years,
            "genres": genres["g"],
        }
    )


def write_movielens_folder(dataset: Dataset, folder: str | Path, layout: str = "csv") -> None:
    """Write ``dataset`` in a MovieLens release's own files, so the loader (and
    ``embedlens run --dataset ml-25m --data-dir ...``) reads it like the real one:
    ``layout`` "csv" (ratings.csv, movies.csv, tags.csv: ml-20m and later) or "dat"
    (ratings.dat, movies.dat with ``::``: ml-1m, ml-10m). Each file is written atomically."""
    if layout not in ("csv", "dat"):
        raise unknown_name("MovieLens file layout", layout, ["csv", "dat"])
    if dataset.items is None:
        raise DataError(f"{dataset.name} has no movie table to write.")
    folder = Path(folder)
    ratings = dataset.interactions.select(
        pl.col(USER).alias("userId"), pl.col(ITEM).alias("movieId"), RATING, TIMESTAMP)
    movies = dataset.items.select(pl.col(ITEM).alias("movieId"), "title",
                                  pl.col("genres").list.join("|"))
    tables = {"ratings": ratings, "movies": movies}
    if dataset.tags is not None and layout == "csv":
        tables["tags"] = dataset.tags.select(pl.col(USER).alias("userId"),
                                             pl.col(ITEM).alias("movieId"), "tag", TIMESTAMP)
    for name, table in tables.items():
        with atomic_path(folder / f"{name}.{layout}") as tmp:
            if layout == "csv":
                table.write_csv(tmp)
            else:  # "::" is two bytes, which polars cannot write: tabs, then replaced
                text = table.write_csv(separator="\t", include_header=False,
                                       quote_style="never")
                tmp.write_text(text.replace("\t", "::"))
