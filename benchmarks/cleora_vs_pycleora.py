"""Cleora: embedlens' exact propagation vs pycleora 3.2.1, same input, same run.

Usage (needs ``pip install pycleora==3.2.1`` beside embedlens):
    python benchmarks/cleora_vs_pycleora.py [--shapes ml-100k,ml-1m,ml-25m] [--dim 256]
        [--iterations 3]

Speed: each implementation runs once per shape in its own subprocess, from the log on disk to
item embeddings in memory. embedlens reads the ratings Parquet, builds the incidence matrix,
hash-initialises and propagates: ``CleoraModel.fit_parquet`` (the lean route, id columns
read in batches) and the general encoding every method shares. pycleora reads its native
input, a file with one line of movie ids per user (``from_files`` with
``complex::reflexive::movie`` columns), then runs ``embed_fast``, its own multi-threaded loop,
equal to the tutorial's propagate-and-normalise loop. Both input files are written before
timing. Peak memory is the process's peak resident size during the run, imports included,
from the kernel's high-water mark (``PeakMemory``); each worker imports only what its route
needs. pycleora runs with its default hyperedge trimming (16 items) and, where the clique fits
in memory, exactly (no trimming).

Quality (ML-100k): NDCG@10 of each on the random-0.2 and user-time-0.2 protocols (users =
mean of their items, cosine), and the agreement of our exact embeddings with pycleora's exact
mode when both start from pycleora's initial vectors.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from _common import ML_DIR, PeakMemory, print_table

if TYPE_CHECKING:  # polars is imported where used: pycleora's worker process never loads it
    import polars as pl

EXACT_TRIM = 1 << 30  # pycleora's hyperedge_trim_n that keeps every hyperedge whole


def load_log(shape: str) -> pl.DataFrame:
    if shape == "ml-100k":
        from embedlens.data import load_movielens

        return load_movielens(shape, data_dir=ML_DIR).interactions
    from embedlens.data import synthetic_movielens

    return synthetic_movielens(shape, seed=0).interactions


def hyperedge_lines(df: pl.DataFrame) -> list[str]:
    """One line per user: the user's movie ids separated by spaces (pycleora's input)."""
    import polars as pl

    return (
        df.group_by("user_id")
        .agg(pl.col("item_id").cast(pl.Utf8).str.join(" "))
        .sort("user_id")["item_id"]
        .to_list()
    )


def write_inputs(df: pl.DataFrame, folder: Path) -> tuple[Path, Path]:
    """The same log in each tool's input format: ratings Parquet, hyperedge lines."""
    folder.mkdir(parents=True, exist_ok=True)
    parquet, lines = folder / "ratings.parquet", folder / "hyperedges.txt"
    df.write_parquet(parquet)
    lines.write_text("\n".join(hyperedge_lines(df)) + "\n")
    return parquet, lines


def read_log(path: Path) -> pl.DataFrame:
    import polars as pl

    return pl.read_parquet(path)


def cleora(dim: int, iterations: int):
    """The tutorial's setting: exact clique, left Markov, no post-processing."""
    from embedlens.methods.registry import get_method

    return get_method("cleora")(expansion="clique", normalization="left", dim=dim,
                                     iterations=iterations, post="none", seed=0)


def run_ours(df: pl.DataFrame, dim: int, iterations: int) -> np.ndarray:
    """The general route every method shares: full encoding, then the exact clique."""
    from embedlens.core.interactions import InteractionMatrix

    return cleora(dim, iterations).fit(InteractionMatrix.from_frame(df)).item_embeddings.vectors


def run_ours_lean(path: Path, dim: int, iterations: int) -> np.ndarray:
    """The lean route for big logs: the id columns, read in batches -> pattern -> clique."""
    return cleora(dim, iterations).fit_parquet(path).item_embeddings.vectors


def pycleora_graph(path: Path, trim: int | None):
    from pycleora import SparseMatrix

    kwargs = {} if trim is None else {"hyperedge_trim_n": trim}
    return SparseMatrix.from_files([str(path)], "complex::reflexive::movie", **kwargs)


def worker(impl: str, path: Path, dim: int, iterations: int) -> dict:
    from embedlens.core.progress import set_quiet

    set_quiet(True)
    if impl.startswith("ours"):  # load (or compile) the route's numba kernels, untimed
        import pyarrow.parquet as pq

        small = Path(tempfile.mkdtemp()) / "small.parquet"
        pq.write_table(pq.ParquetFile(path).read_row_group(0).slice(0, 1000), small)
        run_ours_lean(small, dim, 1) if impl == "ours-lean" else run_ours(read_log(small), dim, 1)
    with PeakMemory() as mem:
        start = time.perf_counter()
        if impl == "ours":
            run_ours(read_log(path), dim, iterations)
        elif impl == "ours-lean":
            run_ours_lean(path, dim, iterations)
        else:
            trim = EXACT_TRIM if impl == "pycleora-exact" else None
            pycleora_graph(path, trim).embed_fast(dim, iterations, propagation="left", seed=0)
        wall = time.perf_counter() - start
    return {"wall_s": wall, "peak_mb": mem.peak_mb, "extra_mb": mem.extra_mb}


def exact_clique_nnz(df: pl.DataFrame) -> int:
    """Non-zeros of the exact clique (upper bound: sum of squared hyperedge sizes)."""
    sizes = df.group_by("user_id").len()["len"].to_numpy().astype(np.int64)
    return int((sizes**2).sum())


def speed(shapes: list[str], dim: int, iterations: int) -> None:
    rows = []
    for shape in shapes:
        df = load_log(shape)
        clique, n_ratings = exact_clique_nnz(df), df.height
        impls = ["ours-lean", "ours", "pycleora"] + (["pycleora-exact"] if clique < 3e8 else [])
        parquet, lines = write_inputs(df, Path(tempfile.mkdtemp(prefix="cleora-bench-")))
        del df
        results = {}
        for impl in impls:
            src = parquet if impl.startswith("ours") else lines
            cmd = [sys.executable, __file__, "--worker", impl, "--input", str(src),
                   "--dim", str(dim), "--iterations", str(iterations)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            results[impl] = json.loads(out.stdout.strip().splitlines()[-1])
        for impl, r in results.items():
            rows.append({
                "shape": shape, "ratings": n_ratings, "exact clique nnz (≤)": clique,
                "implementation": {"ours-lean": "embedlens fit_parquet (exact)",
                                   "ours": "embedlens general encoding (exact)",
                                   "pycleora": "pycleora (trim 16)",
                                   "pycleora-exact": "pycleora (exact)"}[impl],
                "wall s": r["wall_s"], "peak MB": round(r["peak_mb"]),
                "time vs pycleora": r["wall_s"] / results["pycleora"]["wall_s"],
                "memory vs pycleora": r["peak_mb"] / results["pycleora"]["peak_mb"],
            })
    print_table(rows, f"Cleora speed, dim {dim}, {iterations} iterations")


def quality(dim: int, iterations: int) -> None:
    from embedlens.core.embeddings import Embeddings
    from embedlens.core.progress import set_quiet
    from embedlens.data import load_movielens
    from embedlens.evaluation.evaluate import evaluate_model
    from embedlens.evaluation.splits import EvalSplit
    from embedlens.methods.base import ImportedModel
    from embedlens.methods.cleora.propagate import propagate

    set_quiet(True)
    ds = load_movielens("ml-100k", data_dir=ML_DIR)
    rows = []
    agreement = {}
    for protocol in ("random-0.2", "user-time-0.2"):
        data = EvalSplit.prepare(ds, protocol)
        lines = hyperedge_lines(data.split.train)
        variants = {
            "embedlens (exact)": run_ours(data.split.train, dim, iterations),
            "pycleora (trim 16)": None,
            "pycleora (exact)": None,
        }
        folder = Path(tempfile.mkdtemp(prefix="cleora-quality-"))
        (folder / "train.txt").write_text("\n".join(lines) + "\n")
        for name, trim in (("pycleora (trim 16)", None), ("pycleora (exact)", EXACT_TRIM)):
            graph = pycleora_graph(folder / "train.txt", trim)
            vecs = graph.embed_fast(dim, iterations, propagation="left", seed=0)
            ids = np.array([int(e) for e in graph.entity_ids])
            order = np.argsort(ids)
            variants[name] = (ids[order], vecs[order])
            if trim is not None:
                # our propagation from pycleora's own start vectors, same hyperedges
                b = data.train.binary()
                x0 = graph.initialize_deterministically(dim, 0)[order]
                pos = np.searchsorted(ids[order], data.train.items.ids)
                mine = propagate(b, x0[pos], iterations, "clique", "left")
                theirs = vecs[order][pos]
                cos = (mine * theirs).sum(1) / (
                    np.linalg.norm(mine, axis=1) * np.linalg.norm(theirs, axis=1))
                agreement[protocol] = (float(cos.mean()), float(cos.min()))
        ours = variants["embedlens (exact)"]
        variants["embedlens (exact)"] = (data.train.items.ids, ours)
        for name, (ids, vecs) in variants.items():
            model = ImportedModel.from_embeddings(Embeddings(ids, vecs), similarity="cosine")
            r = evaluate_model(model, data)
            rows.append({"protocol": protocol, "embeddings": name,
                         "NDCG@10": f"{r['ndcg@10']:.4f} ± {r['ndcg@10_ci95']:.4f}",
                         "HR@10": f"{r['hitrate@10']:.4f} ± {r['hitrate@10_ci95']:.4f}"})
    print_table(rows, f"Cleora quality on ML-100k, dim {dim}, {iterations} iterations")
    print_table([{"protocol": p, "mean cosine": a[0], "min cosine": a[1]}
                 for p, a in agreement.items()],
                "embedlens exact vs pycleora exact, same start vectors (per-item cosine)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shapes", default="ml-100k,ml-1m,ml-25m")
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--input", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--skip-quality", action="store_true")
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, Path(args.input), args.dim, args.iterations)))
        return
    speed(args.shapes.split(","), args.dim, args.iterations)
    if not args.skip_quality:
        quality(args.dim, args.iterations)


if __name__ == "__main__":
    main()
