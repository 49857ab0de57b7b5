"""How long loading a MovieLens-25M-sized variant takes (parse ratings, movies, tags).

Usage: python benchmarks/load_movielens.py

The real ml-25m cannot be downloaded here, so a synthetic log of its exact size is written in
ml-25m's own file layout (ratings.csv with userId,movieId,rating,timestamp; movies.csv;
tags.csv) and read back through the same loader (`load_movielens("ml-25m", data_dir=...)`).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from pathlib import Path

import polars as pl

from _common import PeakMemory, print_table
from embedlens.data import load_movielens, synthetic_movielens
from embedlens.data.synthetic import write_movielens_folder


def write_ml25m_layout(folder: Path) -> int:
    ds = synthetic_movielens("ml-25m", seed=0)
    tags = ds.interactions.head(1_093_360).select(  # ml-25m has 1,093,360 tag applications
        "user_id", "item_id", pl.lit("some tag").alias("tag"), "timestamp")
    write_movielens_folder(replace(ds, tags=tags), folder / "ml-25m")
    return ds.interactions.height


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="ml25m-"))
    n = write_ml25m_layout(folder)
    size_mb = sum(f.stat().st_size for f in (folder / "ml-25m").iterdir()) / 2**20
    with PeakMemory() as mem:
        start = time.perf_counter()
        ds = load_movielens("ml-25m", data_dir=folder)
        wall = time.perf_counter() - start
    assert ds.n_interactions == n
    print_table([{"variant layout": "ml-25m (synthetic, real size)", "ratings": n,
                  "CSV MB": round(size_mb), "load s": wall, "peak MB": round(mem.peak_mb)}],
                "Loading an ML-25M-sized variant")


if __name__ == "__main__":
    main()
