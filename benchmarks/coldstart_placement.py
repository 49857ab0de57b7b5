"""How the cold-start board places held-out movies with the text model: all in one batch
(``place_unseen``: one encoder call, the text cache read once) against one call per movie
(each ``cached_encode`` reads the whole on-disk cache), on a MovieLens folder's cold-start
split (10% of the movies held out, seed 42). The per-movie way is timed on ``--sample``
movies and scaled; the encodings must be in the cache already (a run's text fit puts them
there), so no encoder time is in either figure.

Usage: python benchmarks/coldstart_placement.py --data-dir DIR [--dataset ml-25m] [--sample 30]
"""

from __future__ import annotations

import argparse
import time

import polars as pl

from _common import print_table
from embedlens.data import load_dataset
from embedlens.evaluation.coldstart import ColdSplit
from embedlens.methods.base import place_unseen
from embedlens.methods.registry import get_method
from embedlens.methods.text.encoders import cached_encode
from embedlens.methods.text.model import movie_text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--dataset", default="ml-25m")
    ap.add_argument("--sample", type=int, default=30)
    args = ap.parse_args()
    ds = load_dataset(args.dataset, data_dir=args.data_dir)
    split = ColdSplit.prepare(ds, 0.1, 42)
    start = time.perf_counter()
    model = get_method("text")().fit(split.train, split.train_dataset)
    fit = time.perf_counter() - start
    side = split.items.filter(pl.col("item_id").is_in(pl.Series(split.cold_items).implode()))
    movies = [{"genres": g or [], "tags": [], "year": y, "title": t}
              for g, y, t in side.select("genres", "year", "title").iter_rows()]
    start = time.perf_counter()
    place_unseen(model, movies, model.item_vectors().dim)
    batch = time.perf_counter() - start
    identity, make = model._encoder()
    start = time.perf_counter()
    for m in movies[: args.sample]:
        text = movie_text(m["title"] or "A movie", m["year"], m["genres"], m["tags"])
        cached_encode([text], identity, make, model._cache())
    each = (time.perf_counter() - start) / args.sample
    print_table([
        {"way": "text fit (from the cache)", "movies": "", "seconds": round(fit, 2)},
        {"way": "one batch (place_unseen)", "movies": len(movies), "seconds": round(batch, 2)},
        {"way": f"one call per movie (timed on {args.sample}, scaled)", "movies": len(movies),
         "seconds": round(each * len(movies), 1)},
    ], f"Placing {len(movies):,} held-out movies with the text model ({args.dataset})")


if __name__ == "__main__":
    main()
