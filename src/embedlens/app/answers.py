"""Answers computed ahead for ``embedlens serve --precompute``: every movie's nearest movies
and every user's best movies, the first :data:`PRECOMPUTED_K` of each, so that a query for
that many or fewer is a lookup instead of a pass over the whole table.

An exact query reads the whole items x dim table (60 MB at the ML-25M shape with d=256,
3-5 ms on a 2-core machine) and that is most of what a request costs; batch-computed top
lists are the usual way recommenders answer at low latency. The lists are computed with the
top-K kernel the evaluation uses, so a lookup returns what the exact query returns, up to
the order of movies whose scores tie to float rounding. Each list is cached in the
method's folder (``answers-<kind>.npz``), keyed by what it was computed from, so a second
start reads it.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embedlens.core.errors import DataError
from embedlens.core.files import array_digest, file_lock, load_arrays, save_arrays
from embedlens.core.interactions import InteractionMatrix
from embedlens.kernels.topk import Scorer, nearest_rows, topk

#: How many answers are kept per movie and per user: a query for up to this many is one
#: lookup. It is also the most a query may ask for (the explorer asks for 10-20).
PRECOMPUTED_K = 100


@dataclass(frozen=True)
class TopLists:
    """Each row's best columns (positions, -1 pads) and their scores, best first."""

    positions: np.ndarray
    scores: np.ndarray

    @property
    def k(self) -> int:
        """How many answers each row keeps."""
        return int(self.positions.shape[1])

    def row(self, row: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Row ``row``'s first ``k`` answers (fewer where it has fewer)."""
        positions = self.positions[row, :k]
        keep = positions >= 0
        return positions[keep].astype(np.int64), self.scores[row, :k][keep]


def nearest_lists(unit: np.ndarray, k: int = PRECOMPUTED_K) -> TopLists:
    """Each movie's ``k`` nearest other movies by cosine (``unit``: unit-length rows), as
    the exact search ranks them."""
    n = unit.shape[0]
    top, scores = nearest_rows(unit, np.arange(n), min(k, max(1, n - 1)),
                               desc="precompute: nearest movies")
    return TopLists(top.astype(np.int32), scores)


def user_lists(scorer: Scorer, train: InteractionMatrix, k: int = PRECOMPUTED_K) -> TopLists:
    """Each train user's ``k`` best movies under ``scorer``, their train movies left out,
    as ``recommend`` ranks them."""
    n_users, n_items = train.shape
    top, scores = topk(scorer, np.arange(n_users), n_items, min(k, n_items),
                       exclude=train.ratings, desc="precompute: recommendations")
    return TopLists(top.astype(np.int32), scores)


def cached_lists(path: Path, key: str, build: Callable[[], TopLists]) -> TopLists:
    """The lists saved at ``path`` when they were made from ``key``, else ``build()``,
    saved there (atomically; a read-only run folder only costs the cache). Servers started
    together (``--workers``) take turns: one computes, the others then read its lists."""
    found = _saved_lists(path, key)
    if found is not None:
        return found
    with contextlib.ExitStack() as held:
        with contextlib.suppress(OSError):  # a read-only folder: no lock, no cache
            held.enter_context(file_lock(path.with_name(path.name + ".lock")))
        found = _saved_lists(path, key)  # made while this process waited
        if found is None:
            found = build()
            with contextlib.suppress(OSError):
                save_arrays(path, positions=found.positions, scores=found.scores,
                            key=np.asarray(key))
        return found


def _saved_lists(path: Path, key: str) -> TopLists | None:
    if path.is_file():
        try:
            z = load_arrays(path, ("positions", "scores", "key"), "precomputed answers")
            if str(z["key"]) == key and z["positions"].shape == z["scores"].shape:
                return TopLists(z["positions"], z["scores"])
        except DataError:
            pass  # a damaged cache is computed again and replaced
    return None


def vectors_key(unit: np.ndarray, k: int) -> str:
    """What nearest-movie lists are keyed by: the vectors and ``k``."""
    return f"{array_digest(unit)}-k{k}"


def train_digest(train: InteractionMatrix) -> str:
    """A digest of the train matrix's pattern (what a user's list leaves out); one per
    server, shared by every method's :func:`run_key` (80 MB to read at ML-25M)."""
    return array_digest(train.ratings.indptr) + array_digest(train.ratings.indices)


def run_key(run_file: Path, train_key: str, k: int) -> str:
    """What recommendation lists are keyed by: the method's run record (a new fit writes a
    new one), the train matrix (its :func:`train_digest`) and ``k``."""
    digest = hashlib.sha256(run_file.read_bytes())
    digest.update(train_key.encode())
    return f"{digest.hexdigest()}-k{k}"
