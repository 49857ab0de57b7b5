"""Cleora settings on ML-100k: iterations x expansion x post-processing, all three protocols.

Usage: python benchmarks/cleora_quality.py [--dim 256]

The grid that chose the defaults (star expansion, 2 iterations, PCA whitening). Users are the
mean of their items, scored by cosine; Pop and EASE are on the same splits for reference.
"""

from __future__ import annotations

import argparse
import itertools

from _common import ML_DIR, print_table
from embedlens.core.progress import set_quiet
from embedlens.data import load_movielens
from embedlens.evaluation.evaluate import evaluate_model
from embedlens.evaluation.splits import EvalSplit
from embedlens.methods.registry import get_method
from embedlens.prep.protocols import PROTOCOLS


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dim", type=int, default=256)
    args = ap.parse_args()
    set_quiet(True)
    ds = load_movielens("ml-100k", data_dir=ML_DIR)
    splits = {p: EvalSplit.prepare(ds, p) for p in PROTOCOLS}
    rows = []
    grid = itertools.product(("clique", "star"), ("left", "symmetric"), ("none", "whiten"),
                             (1, 2, 3, 4, 10))
    for expansion, norm, post, iterations in grid:
        if norm == "symmetric" and iterations in (4, 10):
            continue
        params = {"expansion": expansion, "normalization": norm, "post": post,
                  "iterations": iterations, "dim": args.dim}
        row = {"expansion": expansion, "normalization": norm, "post": post,
               "iterations": iterations}
        for protocol, data in splits.items():
            model = get_method("cleora")(**params).fit(data.train)
            r = evaluate_model(model, data)
            row[f"{protocol} NDCG@10"] = f"{r['ndcg@10']:.4f} ± {r['ndcg@10_ci95']:.4f}"
        rows.append(row)
    for name, params in (("pop", {}), ("ease", {"lambda": 250.0})):
        row = {"expansion": name, "normalization": "", "post": "", "iterations": ""}
        for protocol, data in splits.items():
            r = evaluate_model(get_method(name)(**params).fit(data.train), data)
            row[f"{protocol} NDCG@10"] = f"{r['ndcg@10']:.4f} ± {r['ndcg@10_ci95']:.4f}"
        rows.append(row)
    print_table(rows, f"Cleora on ML-100k, dim {args.dim} (NDCG@10 ± 95% CI)")


if __name__ == "__main__":
    main()
