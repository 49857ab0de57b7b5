"""Methods and baselines on every protocol, with 95% CIs (default parameters).

Usage: python benchmarks/leaderboard.py [--datasets ml-100k,ml-latest-small]
           [--methods random,pop,ease,als] [--ease-lambda 100]
"""

from __future__ import annotations

import argparse
import time

from _common import ML_DIR, print_table
from embedlens.data import load_movielens
from embedlens.evaluate import EvalSplit, evaluate_model
from embedlens.models import get_model_class
from embedlens.prep.protocols import PROTOCOLS
from embedlens.progress import set_quiet


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--datasets", default="ml-100k,ml-latest-small")
    ap.add_argument("--methods", default="random,pop,ease,als")
    ap.add_argument("--ease-lambda", type=float, default=None,
                    help="EASE lambda (default: the model's own default)")
    args = ap.parse_args()
    set_quiet(True)
    for name in args.datasets.split(","):
        ds = load_movielens(name, data_dir=ML_DIR)
        rows = []
        for protocol in PROTOCOLS:
            data = EvalSplit.prepare(ds, protocol)
            for method in args.methods.split(","):
                params = {}
                if method == "ease" and args.ease_lambda:
                    params["lambda"] = args.ease_lambda
                start = time.perf_counter()
                model = get_model_class(method)(**params).fit(data.train, data.train_dataset(ds))
                model_seconds = time.perf_counter() - start
                r = evaluate_model(model, data)
                rows.append({
                    "protocol": protocol, "method": method, "users": r["n_users"],
                    "fit s": round(model_seconds, 1),
                    "NDCG@10": f"{r['ndcg@10']:.4f} ± {r['ndcg@10_ci95']:.4f}",
                    "HR@10": f"{r['hitrate@10']:.4f} ± {r['hitrate@10_ci95']:.4f}",
                    "MRR@10": f"{r['mrr@10']:.4f}", "Recall@10": f"{r['recall@10']:.4f}",
                    "MAP@10": f"{r['map@10']:.4f}", "Cov@10": f"{r['coverage@10']:.4f}",
                })
        print_table(rows, f"{args.methods} on {name}")


if __name__ == "__main__":
    main()
