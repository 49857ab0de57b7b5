"""Where a split's whole-log quantities come from.

A splitter decides most rows from the rows at hand, but a few of its answers are about the
whole log: how many rows there are, the timestamp at the global cut, a row's number for a
random draw, which items train holds. :class:`Scope` answers them from the frame being
split (one process holding the whole log). :class:`ShareScope` answers them with
collectives when the frame is one rank's share under torchrun, its users' rows
(:mod:`embedlens.data.shares`): each splitter then gives every rank its part of exactly the
split one process makes, with no rank holding the whole log.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from embedlens.core.distributed import all_gather_values, all_reduce_sum
from embedlens.data.dataset import Dataset


class Scope:
    """The frame being split is the whole log."""

    def total(self, n: int) -> int:
        """``n`` (a count of this frame's rows) over the whole log."""
        return n

    def bounds(self, values: pl.Series) -> tuple[int, int]:
        """The smallest and largest of ``values`` (integers; frame not empty) over the
        whole log."""
        return int(values.min()), int(values.max())  # type: ignore[arg-type]

    def kth(self, values: pl.Series, k: int) -> int:
        """The ``k``-th smallest (0-based) of ``values`` (integers) over the whole log."""
        return int(values.sort()[k])

    def row_numbers(self, n: int) -> np.ndarray:
        """Each of this frame's ``n`` rows' number in the whole log."""
        return np.arange(n)

    def union(self, values: pl.Series) -> pl.Series:
        """``values`` together with every other share's (duplicates possible)."""
        return values

    def gather(self, frame: pl.DataFrame) -> pl.DataFrame:
        """``frame`` (a part of this frame's rows) with every other share's part after it,
        in rank order: the same table on every rank."""
        return frame


#: The scope of a frame that is the whole log.
WHOLE = Scope()


def scope_of(dataset: Dataset) -> Scope:
    """The scope of ``dataset.interactions``: the whole log, or one rank's share of it."""
    return WHOLE if dataset.rows is None else ShareScope(dataset.rows)


@dataclass(frozen=True)
class ShareScope(Scope):
    """The frame being split is this rank's share of the log; ``rows``: each of its rows'
    number in the whole log. Every rank must make the same calls in the same order."""

    rows: np.ndarray

    def total(self, n: int) -> int:
        return int(all_reduce_sum(np.array([n], dtype=np.int64))[0])

    def bounds(self, values: pl.Series) -> tuple[int, int]:
        mine = np.array([values.min(), values.max()], dtype=np.int64) if values.len() else \
            np.array([np.iinfo(np.int64).max, np.iinfo(np.int64).min], dtype=np.int64)
        both = all_gather_values(mine).reshape(-1, 2)
        return int(both[:, 0].min()), int(both[:, 1].max())

    def kth(self, values: pl.Series, k: int) -> int:
        # the smallest t with more than k values <= t, by bisection over the value range:
        # one all-reduce of one count a step (about 31 steps for Unix seconds)
        ordered = np.sort(values.to_numpy())
        lo, hi = self.bounds(values)
        while lo < hi:
            mid = lo + (hi - lo) // 2
            if self.total(int(np.searchsorted(ordered, mid, side="right"))) > k:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def row_numbers(self, n: int) -> np.ndarray:
        if n != self.rows.size:
            raise ValueError(f"ShareScope holds {self.rows.size} row numbers, asked for {n}")
        return self.rows

    def union(self, values: pl.Series) -> pl.Series:
        return pl.Series(values.name, all_gather_values(values.to_numpy()), dtype=values.dtype)

    def gather(self, frame: pl.DataFrame) -> pl.DataFrame:
        return pl.DataFrame([self.union(frame[c]) for c in frame.columns])
