"""Which approximate nearest-neighbour library ``embedlens serve`` uses for big catalogues.

Builds an HNSW index over unit-length movie vectors with each candidate (hnswlib, usearch,
faiss-cpu, all at the same graph degree M and build effort), then asks for the 10 nearest
movies of ``--queries`` movies one at a time, as the server does, and prints build seconds,
index memory, per-query latency and recall@10 against exact search (one matrix product).

Vectors: a run's method (``--run DIR --method M``) or a planted catalogue of ``--items N``
movies (``--dim D``): clusters of movies around centres in a 32-dimensional subspace plus
noise in every dimension, which is how trained movie vectors look (a few dominant taste
directions, many small ones). Uniform random vectors would be the worst case for every
graph index and no catalogue looks like them.

Usage: python benchmarks/ann.py [--items 1000000 --dim 128 | --run DIR --method M]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from _common import print_table
from embedlens.core.embeddings import l2_normalize

M, EF_BUILD = 16, 128


def planted(n: int, dim: int, seed: int) -> np.ndarray:
    """``n`` unit vectors in clusters of about 50 around centres in a 32-d subspace."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.standard_normal((dim, 32)))[0].T.astype(np.float32)
    centres = rng.standard_normal((max(n // 50, 1), 32)).astype(np.float32) @ basis
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):  # in blocks: the noise of 1M x 256 at once is 2 GB
        stop = min(start + 100_000, n)
        which = rng.integers(0, len(centres), stop - start)
        out[start:stop] = centres[which] + 0.35 * rng.standard_normal(
            (stop - start, dim), dtype=np.float32)
    return l2_normalize(out).astype(np.float32)


def exact_top(x: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    scores = x[queries] @ x.T
    scores[np.arange(len(queries)), queries] = -np.inf
    top = np.argpartition(-scores, k, axis=1)[:, :k]
    return top


def recall(found: list[np.ndarray], truth: np.ndarray, queries: np.ndarray) -> float:
    hits = [len((set(f.tolist()) - {q}) & set(t.tolist())) for f, t, q in
            zip(found, truth, queries.tolist(), strict=True)]
    return float(np.mean(hits)) / truth.shape[1]


def candidates(x: np.ndarray, ef: int, threads: int) -> dict[str, Callable[[], Any]]:
    """Each library's build, returning a one-query search ``f(vector, k) -> positions``."""
    n, dim = x.shape

    def hnswlib_build() -> Any:
        import hnswlib

        index = hnswlib.Index(space="ip", dim=dim)
        index.init_index(max_elements=n, M=M, ef_construction=EF_BUILD, random_seed=0)
        index.add_items(x, np.arange(n), num_threads=threads)
        index.set_ef(ef)
        index.set_num_threads(1)
        return lambda v, k: index.knn_query(v, k=k)[0][0], index

    def usearch_build() -> Any:
        from usearch.index import Index

        index = Index(ndim=dim, metric="ip", dtype="f32", connectivity=M,
                      expansion_add=EF_BUILD, expansion_search=ef)
        index.add(np.arange(n), x, threads=threads)
        return lambda v, k: index.search(v, k, threads=1).keys, index

    def faiss_build() -> Any:
        import faiss

        faiss.omp_set_num_threads(threads)
        index = faiss.IndexHNSWFlat(dim, M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = EF_BUILD
        index.add(x)
        index.hnsw.efSearch = ef
        faiss.omp_set_num_threads(1)
        return lambda v, k: index.search(v.reshape(1, -1), k)[1][0], index

    return {"hnswlib": hnswlib_build, "usearch": usearch_build, "faiss-cpu": faiss_build}


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--run", type=Path, default=None)
    ap.add_argument("--method", default="cleora")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--ef", default="32,64,128", help="search efforts to try")
    ap.add_argument("--only", default="", help="comma-separated libraries (default: all)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    threads = os.cpu_count() or 1

    if args.run is not None:
        from embedlens.io.runs import load_run

        model = load_run(args.run / args.method if (args.run / args.method).is_dir()
                         else args.run)[1]
        x = l2_normalize(model.item_vectors().vectors).astype(np.float32)  # type: ignore[attr-defined]
        what = f"{args.method} vectors of {args.run}"
    else:
        x = planted(args.items, args.dim, args.seed)
        what = "planted clusters"
    x = np.ascontiguousarray(x)
    n, dim = x.shape
    rng = np.random.default_rng(args.seed)
    queries = rng.choice(n, min(args.queries, n), replace=False)
    k = 10
    start = time.perf_counter()
    truth = np.concatenate([exact_top(x, queries[i:i + 100], k)
                            for i in range(0, len(queries), 100)])
    exact_ms = []
    for q in queries[:200]:
        t = time.perf_counter()
        scores = x @ x[q]
        np.argpartition(-scores, k)[:k]
        exact_ms.append((time.perf_counter() - t) * 1e3)
    rows: list[dict[str, Any]] = [{
        "library": "exact (numpy, 1 thread)", "ef": "", "build s": "", "index MB": "",
        "query p50 ms": round(float(np.median(exact_ms)), 3),
        "query p99 ms": round(float(np.percentile(exact_ms, 99)), 3), "recall@10": 1.0}]
    print(f"exact top-10 of {len(queries)} queries: {time.perf_counter() - start:.1f} s",
          flush=True)
    only = {s for s in args.only.split(",") if s}
    efs = [int(e) for e in args.ef.split(",")]
    for name, build in candidates(x, efs[0], threads).items():
        if only and name not in only:
            continue
        try:
            before = rss_mb()
            started = time.perf_counter()
            search, index = build()
            built = time.perf_counter() - started
            grown = rss_mb() - before
        except ImportError:
            print(f"{name}: not installed", flush=True)
            continue
        for ef in efs:
            if name == "hnswlib":
                index.set_ef(ef)
            elif name == "usearch":
                index.expansion_search = ef
            else:
                index.hnsw.efSearch = ef
            ms, found = [], []
            for q in queries:
                t = time.perf_counter()
                found.append(np.asarray(search(x[q], k + 1)))
                ms.append((time.perf_counter() - t) * 1e3)
            rows.append({"library": name, "ef": ef, "build s": round(built, 1),
                         "index MB": round(grown), "query p50 ms": round(float(np.median(ms)), 3),
                         "query p99 ms": round(float(np.percentile(ms, 99)), 3),
                         "recall@10": round(recall(found, truth, queries), 4)})
            print(rows[-1], flush=True)
        del index, search
    print_table(rows, f"HNSW (M={M}, ef_construction={EF_BUILD}) over {n:,} {what}, d={dim}, "
                      f"{len(queries)} single queries, build on {threads} threads")


if __name__ == "__main__":
    main()
