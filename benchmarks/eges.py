"""EGES on ML-100k and ml-latest-small: warm ranking quality vs the same model without side
information and vs DeepWalk, plus training throughput (skip-gram pairs per second).

Usage: python benchmarks/eges.py [--datasets ml-100k,ml-latest-small] [--protocol random-0.2]
"""

from __future__ import annotations

import argparse
import time

from _common import ML_DIR, print_table
from embedlens.core.progress import set_quiet
from embedlens.data import load_movielens
from embedlens.evaluation.evaluate import evaluate_model
from embedlens.evaluation.splits import EvalSplit
from embedlens.kernels.skipgram import window_pairs
from embedlens.methods.registry import get_method


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--datasets", default="ml-100k,ml-latest-small")
    ap.add_argument("--protocol", default="random-0.2")
    args = ap.parse_args()
    set_quiet(True)
    rows = []
    for name in args.datasets.split(","):
        ds = load_movielens(name, data_dir=ML_DIR)
        data = EvalSplit.prepare(ds, args.protocol)
        for label, params in (("eges (per-item weights)", {}),
                              ("eges (global field weights)", {"weights": "global"}),
                              ("eges without side info", {"side_info": False})):
            model = get_method("eges")(**params)
            start = time.perf_counter()
            model.fit(data.train, data.train_dataset(ds))
            fit_s = time.perf_counter() - start
            from embedlens.kernels.graphs import sequence_graph
            from embedlens.kernels.walks import random_walks

            p = model.params
            walks = random_walks(sequence_graph(data.train), p["num_walks"], p["walk_length"],
                                 weighted=False, seed=p["seed"])
            pairs = 2 * window_pairs(walks, p["window"])[0].size * p["epochs"]  # both ways
            r = evaluate_model(model, data)
            rows.append({"dataset": name, "model": label, "fit s": fit_s,
                         "pairs/s": f"{pairs / fit_s:,.0f}",
                         "NDCG@10": f"{r['ndcg@10']:.4f} ± {r['ndcg@10_ci95']:.4f}",
                         "HR@10": f"{r['hitrate@10']:.4f}"})
    print_table(rows, f"EGES on {args.protocol} (CPU, 2 cores; pairs/s includes walks)")


if __name__ == "__main__":
    main()
