"""A log read in shares under torchrun: no rank ever holds the whole log.

Each rank reads a contiguous share of the log's rows (:func:`~embedlens.core.distributed.
share`; Parquet reads only the row groups it needs). The ranks then agree on the ids (an
all-gather of each share's distinct users and items, so every rank encodes them alike) and
every row moves to the rank that owns its user: users are dealt out in contiguous ranges of
their sorted ids, so rank 0 holds the first users, rank 1 the next, and so on. With all of a
user's rows on one rank, repeated (user, item) pairs merge there exactly as one process
merges them (:func:`~embedlens.data.dataset.merge_duplicates`), and a per-user split needs
no further exchange. Each row keeps its number in the whole merged log, which is what a
random split draws from, so the ranks' splits put back together are one process's split.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import polars as pl

from embedlens.core.distributed import (
    World,
    all_gather_values,
    send_rows,
    share,
    world,
)
from embedlens.core.ids import IdMap
from embedlens.core.schema import ITEM, RATING, TIMESTAMP, USER
from embedlens.data.dataset import Dataset, merge_duplicates

#: The column that carries each row's number in the log through the exchange or a split.
ROW = "_log_row"


def own_users(frame: pl.DataFrame, first_row: int
              ) -> tuple[pl.DataFrame, np.ndarray, dict[str, Any]]:
    """This rank's users' rows, from every rank's share (``frame``: the rows numbered
    ``first_row, first_row + 1, ...`` of the log, in the embedlens schema). Every rank must
    call it.

    Returns the rows (repeated pairs merged, in log order), each row's number in the whole
    merged log, and the whole log's counts (``interactions``, ``users``, ``items``,
    ``duplicates_merged``).
    """
    w = world()
    schema, height = frame.schema, frame.height
    users = IdMap.fit(all_gather_values(frame[USER].unique().to_numpy()))
    items = IdMap.fit(all_gather_values(frame[ITEM].unique().to_numpy()))
    u = users.index(frame[USER])
    starts = np.array([share(len(users), World(r, w.size))[0] for r in range(w.size)])
    owner = np.searchsorted(starts, u, side="right") - 1
    order = np.argsort(owner, kind="stable")  # stable: each part stays in log order
    counts = np.bincount(owner, minlength=w.size)
    del owner

    def sent(values: np.ndarray) -> np.ndarray:
        # one column at a time, so that only one column is ever in flight; the parts arrive
        # in rank order and the ranks read consecutive rows: in log order
        return send_rows(values[order], counts)

    got_rows = sent(first_row + np.arange(height, dtype=np.int64))
    mine = pl.DataFrame([
        pl.Series(USER, users.ids[sent(u)], dtype=schema[USER]),
        pl.Series(ITEM, items.ids[sent(items.index(frame[ITEM]))], dtype=schema[ITEM]),
        pl.Series(RATING, sent(frame[RATING].to_numpy()), dtype=pl.Float32),
        pl.Series(TIMESTAMP, sent(frame[TIMESTAMP].to_numpy()), dtype=pl.Int64),
        pl.Series(ROW, got_rows, dtype=pl.Int64),
    ])
    del u
    merged, _ = merge_duplicates(mine)
    del mine
    rows, n_dropped = _renumbered(got_rows, merged[ROW].to_numpy())
    n_read = int(all_gather_values(np.array([height], dtype=np.int64)).sum())
    totals = {"interactions": n_read - n_dropped, "users": len(users),
              "items": len(items), "duplicates_merged": n_dropped}
    return merged.drop(ROW), rows, totals


def as_share(dataset: Dataset, rows_read: pl.DataFrame, first_row: int) -> Dataset:
    """``dataset`` (its side tables and meta) holding this rank's users' rows, from every
    rank's ``rows_read`` (the log's rows numbered from ``first_row``, in the embedlens
    schema): :func:`own_users`, with the whole log's counts in ``meta["share"]`` and the
    merged repeats in ``meta["duplicates_merged"]``. Every rank must call it."""
    interactions, rows, totals = own_users(rows_read, first_row)
    meta = {**dataset.meta, "duplicates_merged": totals.pop("duplicates_merged"),
            "share": totals}
    return replace(dataset, interactions=interactions, rows=rows, meta=meta)


def _renumbered(numbers: np.ndarray, kept: np.ndarray) -> tuple[np.ndarray, int]:
    """The ``kept`` of this rank's row ``numbers`` (both ascending), numbered again as if
    the rows every rank left out were not there; and how many were left out over all ranks.
    Every rank must call it."""
    left = np.sort(all_gather_values(np.setdiff1d(numbers, kept, assume_unique=True)))
    return kept - np.searchsorted(left, kept), int(left.size)


def numbered(share_ds: Dataset) -> pl.DataFrame:
    """A share's rows with their numbers in the log (column :data:`ROW`), to split."""
    if share_ds.rows is None:
        raise ValueError("numbered() needs a share of a log (Dataset.is_share)")
    return share_ds.interactions.with_columns(pl.Series(ROW, share_ds.rows))


def part_of(share_ds: Dataset, part: pl.DataFrame) -> Dataset:
    """The share of a part of the log (some rows of :func:`numbered`, such as a split's train
    rows), its rows numbered within the part over every rank, as one process numbers the
    rows of that part. Every rank must call it."""
    assert share_ds.rows is not None  # numbered() made ``part``
    rows, _ = _renumbered(share_ds.rows, part[ROW].to_numpy())
    frame = part.drop(ROW)
    counts = all_gather_values(np.array([frame.height, frame[USER].n_unique()], dtype=np.int64))
    items = all_gather_values(frame[ITEM].unique().to_numpy())
    totals = {"interactions": int(counts[0::2].sum()), "users": int(counts[1::2].sum()),
              "items": int(pl.Series(items).n_unique())}  # users: each on one rank only
    return replace(share_ds, interactions=frame, rows=rows,
                   meta={**share_ds.meta, "share": totals})
