"""Named evaluation protocols: a splitter plus the rule for which test rows are relevant.

Every method and baseline is evaluated on one of these, so results are comparable:

``global-time-0.2``  the last 20% of all interactions by time are test (ties to test), cold
                     users/items dropped from test, relevant = rating >= 4 (the two-tower
                     tutorial's protocol).
``random-0.2``       a random 20% (seed 42) are test, cold users/items dropped, every test row
                     relevant (the Cleora tutorial's protocol).
``user-time-0.2``    each user's last 20% by time are test, cold items dropped, relevant =
                     rating >= 4.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from embedlens.core.errors import DataError, unknown_name
from embedlens.core.schema import RATING
from embedlens.prep.scope import WHOLE, Scope
from embedlens.prep.splitters import (
    GlobalTimeSplitter,
    RandomSplitter,
    Splitter,
    UserTimeSplitter,
)


@dataclass(frozen=True)
class Split:
    """The outcome of a protocol: train rows, the relevant test rows, and all test rows
    (``test_all``, before the relevance threshold: what rating error is measured on)."""

    protocol: str
    train: pl.DataFrame
    test: pl.DataFrame
    test_all: pl.DataFrame


@dataclass(frozen=True)
class Protocol:
    """A splitter and a relevance threshold on test ratings (``None``: all test rows)."""

    name: str
    splitter: Splitter
    min_test_rating: float | None = None

    def split(self, interactions: pl.DataFrame, implicit: bool = False,
              scope: Scope = WHOLE) -> Split:
        """Split ``interactions`` and keep the relevant test rows. In an ``implicit`` log
        (no ratings: every row is 1) every test row is relevant. ``scope``: see
        :mod:`embedlens.prep.scope` (the parts of a split of a log held in shares)."""
        train, test = self.splitter.split(interactions, scope)
        test_all = test
        if self.min_test_rating is not None and not implicit:
            test = test.filter(pl.col(RATING) >= self.min_test_rating)
        if scope.total(test.height) == 0:
            raise DataError(
                f"Protocol {self.name} left no relevant test interactions "
                f"(rating >= {self.min_test_rating})."
            )
        return Split(self.name, train, test, test_all)


PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol(
            "global-time-0.2",
            GlobalTimeSplitter(drop_cold_users=True, drop_cold_items=True, test_fraction=0.2),
            min_test_rating=4.0,
        ),
        Protocol(
            "random-0.2",
            RandomSplitter(drop_cold_users=True, drop_cold_items=True, test_fraction=0.2, seed=42),
        ),
        Protocol(
            "user-time-0.2",
            UserTimeSplitter(drop_cold_users=True, drop_cold_items=True, test_fraction=0.2),
            min_test_rating=4.0,
        ),
    )
}
DEFAULT_PROTOCOL = "user-time-0.2"


def get_protocol(name: str) -> Protocol:
    """The protocol called ``name``."""
    if name not in PROTOCOLS:
        raise unknown_name("protocol", name, list(PROTOCOLS))
    return PROTOCOLS[name]
