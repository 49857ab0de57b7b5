"""A small interaction log with planted structure, for tests that must not need real data.

Users and movies belong to taste groups; each group is a genre. A user rates mostly movies
of their own group (well), and a few popular movies of other groups (poorly). Within a group
popularity follows a power law, so popularity beats random and taste beats popularity: any
method that learns who likes what ranks the held-out movies of a user's group high.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from embedlens.core.embeddings import Embeddings
from embedlens.data.dataset import Dataset

GROUPS = ("Action", "Comedy", "Drama", "Horror", "Romance", "Sci-Fi")
_WORDS = {
    "Action": ("Explosive", "Fist", "Chase", "Bullet"),
    "Comedy": ("Funny", "Laughing", "Silly", "Prank"),
    "Drama": ("Tears", "Family", "Silent", "Heart"),
    "Horror": ("Haunted", "Scream", "Blood", "Night"),
    "Romance": ("Love", "Kiss", "Wedding", "Paris"),
    "Sci-Fi": ("Galaxy", "Robot", "Alien", "Star"),
}


def planted_log(n_users: int = 240, n_items: int = 120, per_user: int = 24,
                in_group: float = 0.85, seed: int = 0) -> Dataset:
    """A :class:`Dataset` of ``n_users`` x ``per_user`` ratings over ``n_items`` movies in
    six taste groups, with a movie table (titles, years, the group as genre) and tags.

    Deterministic for a ``seed``; ids are not 0..n-1 (movies 1001, 1004, ...), so code that
    mixes ids and indices fails here."""
    rng = np.random.default_rng(seed)
    n_groups = len(GROUPS)
    item_group = np.arange(n_items) % n_groups
    item_ids = 1001 + 3 * np.arange(n_items)
    user_group = rng.integers(0, n_groups, n_users)
    # power-law popularity within each group
    weight = 1.0 / (1.0 + np.arange(n_items) // n_groups) ** 1.2
    rows = []
    for u in range(n_users):
        g = user_group[u]
        own = np.flatnonzero(item_group == g)
        other = np.flatnonzero(item_group != g)
        n_own = min(own.size, round(per_user * in_group))
        picks_own = rng.choice(own, n_own, replace=False, p=weight[own] / weight[own].sum())
        picks_other = rng.choice(other, per_user - n_own, replace=False,
                                 p=weight[other] / weight[other].sum())
        picks = rng.permutation(np.concatenate([picks_own, picks_other]))
        for t, i in enumerate(picks):
            liked = item_group[i] == g
            rating = float(rng.choice([4.0, 5.0]) if liked else rng.choice([1.0, 2.0, 3.0]))
            # every user rates at each time step, so a global time cut leaves test for all
            rows.append((int(u + 1), int(item_ids[i]), rating, 1_000_000 + t * n_users + u))
    interactions = pl.DataFrame(rows, schema={"user_id": pl.Int32, "item_id": pl.Int32,
                                              "rating": pl.Float32, "timestamp": pl.Int64},
                                orient="row")
    titles, tags = [], []
    for k, (i, g) in enumerate(zip(item_ids, item_group, strict=True)):
        genre = GROUPS[g]
        word = _WORDS[genre][k % len(_WORDS[genre])]
        titles.append(f"{word} {genre} Story {k} ({1970 + k % 40})")
        tags += [(1, int(i), f"{genre.lower()} classic", 1), (2, int(i), word.lower(), 2)]
    items = pl.DataFrame({
        "item_id": pl.Series(item_ids, dtype=pl.Int32),
        "title": titles,
        "year": pl.Series([1970 + k % 40 for k in range(n_items)], dtype=pl.Int32),
        "genres": [[GROUPS[g]] for g in item_group],
    })
    tag_table = pl.DataFrame(tags, schema={"user_id": pl.Int32, "item_id": pl.Int32,
                                           "tag": pl.Utf8, "timestamp": pl.Int64}, orient="row")
    return Dataset("planted", interactions, items=items, tags=tag_table,
                   meta={"user_group": dict(zip(range(1, n_users + 1),
                                                user_group.tolist(), strict=True))})


def group_cosines(embeddings: Embeddings, log: Dataset) -> tuple[float, float]:
    """The mean cosine between two movies of the same taste group of ``log``, and between
    two movies of different groups (a movie with itself left out), over ``embeddings``."""
    assert log.items is not None  # planted_log always has its movie table
    vec = embeddings.normalized().vectors
    group = log.items.join(pl.DataFrame({"item_id": embeddings.ids}), on="item_id",
                           how="right")["genres"].list.first().to_numpy()
    sim = vec @ vec.T
    same = group[:, None] == group[None, :]
    np.fill_diagonal(same, False)
    other = ~same
    np.fill_diagonal(other, False)
    return float(sim[same].mean()), float(sim[other].mean())
