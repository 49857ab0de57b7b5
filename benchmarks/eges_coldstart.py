"""The cold-start protocol (10% of movies held out entirely) for EGES and the other methods
that place unseen movies from side information (text with any encoder).

Usage: python benchmarks/eges_coldstart.py [--datasets ml-latest-small,ml-100k]
       [--methods eges,text,text:encoder=static]

A method may carry parameters after a colon (``text:encoder=static,cache=false``); fit
seconds include encoding (``cache=false`` times it from nothing).
"""

from __future__ import annotations

import argparse
import time

from _common import ML_DIR, print_table
from embedlens.app.cli import parse_params
from embedlens.core.progress import set_quiet
from embedlens.data import load_movielens
from embedlens.evaluation.coldstart import ColdSplit, evaluate_coldstart
from embedlens.methods.registry import get_method


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--datasets", default="ml-latest-small,ml-100k")
    ap.add_argument("--methods", default="eges",
                    help="semicolon-separated METHOD[:key=value,...] entries")
    args = ap.parse_args()
    set_quiet(True)
    rows = []
    for name in args.datasets.split(","):
        split = ColdSplit.prepare(load_movielens(name, data_dir=ML_DIR), fraction=0.1, seed=42)
        for spec in args.methods.split(";"):
            method, _, given = spec.partition(":")
            params = parse_params(given.split(",") if given else [])
            start = time.perf_counter()
            model = get_method(method)(**params).fit(split.train, split.train_dataset)
            fit_s = time.perf_counter() - start
            for label, r in evaluate_coldstart(model, split).items():
                if not label.startswith("model") and spec != args.methods.split(";")[0]:
                    continue  # the baselines are the same for every method: shown once
                rows.append({"dataset": name, "method": spec, "fit s": f"{fit_s:.1f}",
                             "held-out movies": len(split.cold_items),
                             "test ratings": split.test.height, "ranking": label,
                             "NDCG@10": f"{r['ndcg@10']:.4f} ± {r['ndcg@10_ci95']:.4f}",
                             "HR@10": f"{r['hitrate@10']:.4f} ± {r['hitrate@10_ci95']:.4f}",
                             "cold share of top-10": f"{r['cold_share@10']:.2f}"})
    print_table(rows, "Cold start: movies embedded from side information alone")


if __name__ == "__main__":
    main()
