"""Nearest-movie search for ``embedlens serve``.

Exact search (one product with the unit-length movie table) is the default: at 59k movies
and d=256 it takes 3 ms on one core and is always right. A catalogue of a million movies or
more takes 50 ms and up per query, so there ``auto`` builds an HNSW graph index (hnswlib,
installed with ``embedlens[ann]``; chosen over usearch and faiss-cpu by
``benchmarks/ann.py``), measures its recall@10 against exact search on a sample of movies,
and caches it in the method's run folder so the next start only reads it.

Scores are always exact cosines: the index only proposes candidates, which are then scored
against the table and sorted, so a served score never differs from ``similar``'s.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from embedlens.core.embeddings import top_by_dot
from embedlens.core.errors import DataError
from embedlens.core.files import array_digest, atomic_path, write_json

#: The searches a user may ask for.
INDEXES = ("auto", "exact", "hnsw")
#: ``auto`` builds an HNSW index from this many movies up.
ANN_MIN_ITEMS = 1_000_000
#: HNSW graph degree and build effort (benchmarks/ann.py).
HNSW_M, HNSW_EF_BUILD = 16, 128
#: Search efforts tried in turn after a build, until recall@10 reaches RECALL_TARGET: how
#: hard a catalogue is varies (the planted 1M catalogue is found whole at 64; Cleora's
#: vectors of the ML-25M-shaped log need far more).
HNSW_EFS, RECALL_TARGET = (64, 128, 256, 512, 1024), 0.95
#: Movies whose exact neighbours the recall estimate compares against.
RECALL_QUERIES = 500


class MovieIndex(Protocol):
    """Finds the rows of a unit-length movie table nearest to a unit vector."""

    kind: str
    #: recall@10 against exact search (1.0 for exact search itself)
    recall: float

    def search(self, vector: np.ndarray, k: int,
               exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Positions of the ``k`` nearest rows (``exclude`` left out), best first, and their
        cosines."""
        ...


class ExactIndex:
    """Every row scored: always right, O(items x dim) per query."""

    kind = "exact"
    recall = 1.0

    def __init__(self, unit: np.ndarray) -> None:
        self.unit = unit

    def search(self, vector: np.ndarray, k: int,
               exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        return top_by_dot(self.unit, vector, k, exclude)


class HNSWIndex:
    """An HNSW graph over the rows (inner product of unit rows = cosine)."""

    kind = "hnsw"

    def __init__(self, graph: Any, unit: np.ndarray, recall: float = float("nan"),
                 ef: int = HNSW_EFS[0]) -> None:
        self.graph = graph
        self.unit = unit
        self.recall = recall
        self.ef = ef

    @classmethod
    def build(cls, unit: np.ndarray, threads: int = 1, seed: int = 0) -> HNSWIndex:
        """Insert every row (on ``threads`` threads), then raise the search effort until
        the measured recall@10 reaches :data:`RECALL_TARGET` (or the largest is tried)."""
        hnswlib = _hnswlib()
        graph = hnswlib.Index(space="ip", dim=unit.shape[1])
        graph.init_index(max_elements=unit.shape[0], M=HNSW_M,
                         ef_construction=HNSW_EF_BUILD, random_seed=seed)
        graph.add_items(unit, np.arange(unit.shape[0]), num_threads=threads)
        graph.set_num_threads(1)  # one query at a time, as the server asks
        index = cls(graph, unit)
        sample, truth = exact_sample(unit, seed)
        for ef in HNSW_EFS:
            index.ef = ef
            index.recall = recall_at_10(index, unit, sample, truth)
            if index.recall >= RECALL_TARGET:
                break
        return index

    def search(self, vector: np.ndarray, k: int,
               exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        n = self.unit.shape[0]
        skip = np.empty(0, dtype=np.int64) if exclude is None else np.asarray(exclude)
        ask = min(n, k + skip.size)
        if ask == 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        self.graph.set_ef(max(self.ef, ask))
        labels = self.graph.knn_query(vector, k=ask)[0][0].astype(np.int64)
        if skip.size:
            labels = labels[~np.isin(labels, skip)]
        scores = self.unit[labels] @ vector
        order = np.lexsort((labels, -scores))[:k]
        return labels[order], scores[order]

    def save(self, path: Path, digest: str) -> None:
        """The graph at ``path`` and its recall and digest beside it, each atomically."""
        with atomic_path(path) as tmp:
            self.graph.save_index(str(tmp))
        write_json(path.with_suffix(".json"), {"digest": digest, "recall@10": self.recall,
                                               "ef": self.ef, "M": HNSW_M,
                                               "ef_construction": HNSW_EF_BUILD})

    @classmethod
    def load(cls, path: Path, unit: np.ndarray, digest: str) -> HNSWIndex | None:
        """The index saved at ``path`` for these very rows, else ``None``."""
        meta_path = path.with_suffix(".json")
        if not (path.is_file() and meta_path.is_file()):
            return None
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("digest") != digest:
                return None
            graph = _hnswlib().Index(space="ip", dim=unit.shape[1])
            graph.load_index(str(path), max_elements=unit.shape[0])
        except (OSError, ValueError, RuntimeError):
            return None  # damaged or foreign: rebuilt
        graph.set_num_threads(1)
        return cls(graph, unit, float(meta.get("recall@10", float("nan"))),
                   int(meta.get("ef", HNSW_EFS[-1])))


def exact_sample(unit: np.ndarray, seed: int = 0,
                 queries: int = RECALL_QUERIES) -> tuple[np.ndarray, list[np.ndarray]]:
    """A seeded sample of rows and each one's 10 exact nearest rows (itself left out)."""
    n = unit.shape[0]
    sample = np.random.default_rng(seed).choice(n, min(queries, n), replace=False)
    exact = ExactIndex(unit)
    return sample, [exact.search(unit[q], 10, np.asarray([q]))[0] for q in sample.tolist()]


def recall_at_10(index: MovieIndex, unit: np.ndarray, sample: np.ndarray,
                 truth: list[np.ndarray]) -> float:
    """Mean share of each sampled row's 10 exact nearest rows (``truth``) that ``index``
    finds."""
    hits = total = 0
    for q, expected in zip(sample.tolist(), truth, strict=True):
        found, _ = index.search(unit[q], 10, np.asarray([q]))
        hits += np.intersect1d(expected, found).size
        total += expected.size
    return hits / total if total else 1.0


def resolve_index(kind: str, n_items: int) -> str:
    """``kind`` checked, and ``auto`` made ``exact`` or ``hnsw`` by catalogue size."""
    if kind not in INDEXES:
        raise DataError(f"Unknown index {kind!r}; choose from: {', '.join(INDEXES)}.")
    if kind == "auto":
        return "hnsw" if n_items >= ANN_MIN_ITEMS and hnsw_available() else "exact"
    if kind == "hnsw" and not hnsw_available():
        raise DataError("The hnsw index needs hnswlib: pip install 'embedlens[ann]' (or "
                        "choose --index exact).")
    return kind


def hnsw_available() -> bool:
    """Whether hnswlib can be imported."""
    try:
        _hnswlib()
    except ImportError:
        return False
    return True


def movie_index(unit: np.ndarray, kind: str, folder: Path | None = None,
                threads: int = 1, log: Callable[[str], None] | None = None) -> MovieIndex:
    """The index ``kind`` asks for over ``unit`` (unit-length rows): exact, or HNSW read
    from ``folder`` when one was built there for these rows, else built (and saved there
    when the folder can be written)."""
    kind = resolve_index(kind, unit.shape[0])
    if kind == "exact":
        return ExactIndex(unit)
    digest = array_digest(unit)
    path = None if folder is None else Path(folder) / "index-hnsw.bin"
    if path is not None:
        loaded = HNSWIndex.load(path, unit, digest)
        if loaded is not None:
            return loaded
    start = time.perf_counter()
    index = HNSWIndex.build(unit, threads)
    if log is not None:
        log(f"built an HNSW index of {unit.shape[0]:,} movies in "
            f"{time.perf_counter() - start:.0f} s; recall@10 against exact search "
            f"{index.recall:.3f} ({RECALL_QUERIES} movies, search effort {index.ef})")
    if path is not None:
        with contextlib.suppress(OSError):  # a read-only run folder: only the cache is lost
            index.save(path, digest)
    return index


def _hnswlib() -> Any:
    import hnswlib

    return hnswlib
