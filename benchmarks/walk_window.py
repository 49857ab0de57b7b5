"""Walk methods: the skip-gram window of PMI-SVD, on every protocol of both datasets.

Usage: python benchmarks/walk_window.py [--datasets ml-100k,ml-latest-small]
           [--windows 1,2,5]

The grid that chose ``window=1`` for node2vec and DeepWalk (both embedded by PMI-SVD, every
other parameter at its default). Pop is on the same splits for reference. Each cell is
NDCG@10 ± 95% CI, then the fit time in seconds.
"""

from __future__ import annotations

import argparse
import time

from _common import ML_DIR, print_table
from embedlens.core.progress import set_quiet
from embedlens.data import load_movielens
from embedlens.evaluation.evaluate import evaluate_model
from embedlens.evaluation.splits import EvalSplit
from embedlens.methods.registry import get_method
from embedlens.prep.protocols import PROTOCOLS


def cell(name: str, params: dict, data: EvalSplit, dataset) -> str:
    start = time.perf_counter()
    model = get_method(name)(**params).fit(data.train, dataset)
    fit = time.perf_counter() - start
    r = evaluate_model(model, data)
    return f"{r['ndcg@10']:.4f} ± {r['ndcg@10_ci95']:.4f} ({fit:.1f} s)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--datasets", default="ml-100k,ml-latest-small")
    ap.add_argument("--windows", default="1,2,5")
    args = ap.parse_args()
    set_quiet(True)
    for name in args.datasets.split(","):
        ds = load_movielens(name, data_dir=ML_DIR)
        splits = {p: EvalSplit.prepare(ds, p) for p in PROTOCOLS}
        rows = []
        for method in ("node2vec", "deepwalk"):
            for window in map(int, args.windows.split(",")):
                params = {"embedding": "pmi-svd", "window": window}
                row = {"method": method, "window": window}
                for protocol, data in splits.items():
                    row[protocol] = cell(method, params, data, ds)
                rows.append(row)
        row = {"method": "pop", "window": ""}
        for protocol, data in splits.items():
            row[protocol] = cell("pop", {}, data, ds)
        rows.append(row)
        print_table(rows, f"Walk window on {name}, PMI-SVD (NDCG@10 ± 95% CI, fit s)")


if __name__ == "__main__":
    main()
