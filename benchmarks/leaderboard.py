"""Leaderboards: ``embedlens run`` on every protocol of each dataset, with 95% CIs.

Each (dataset, protocol) is one ``embedlens run`` (same code path as the command line),
written to ``OUT/<dataset>-<protocol>/`` with its report.html; the tables print as Markdown.

Usage: python benchmarks/leaderboard.py [--datasets ml-100k,ml-latest-small]
           [--methods all] [--baselines random,pop,ease,als] [--protocols all]
           [--ease-lambda 100] [--out runs/leaderboards]
"""

from __future__ import annotations

import argparse
import time

from _common import ML_DIR, print_table
from embedlens.app.config import RunConfig
from embedlens.app.pipeline import run_all
from embedlens.core.progress import set_quiet
from embedlens.prep.protocols import PROTOCOLS


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--datasets", default="ml-100k,ml-latest-small")
    ap.add_argument("--methods", default="all")
    ap.add_argument("--baselines", default="random,pop,ease,als")
    ap.add_argument("--protocols", default="all")
    ap.add_argument("--ease-lambda", type=float, default=None,
                    help="EASE lambda (default: the model's own default)")
    ap.add_argument("--out", default="runs/leaderboards")
    args = ap.parse_args()
    set_quiet(True)
    protocols = list(PROTOCOLS) if args.protocols == "all" else args.protocols.split(",")
    for name in args.datasets.split(","):
        rows = []
        for protocol in protocols:
            params = {"ease": {"lambda": args.ease_lambda}} if args.ease_lambda else {}
            cfg = RunConfig(dataset=name, data_dir=str(ML_DIR), protocol=protocol,
                            methods=args.methods, baselines=args.baselines, params=params)
            start = time.perf_counter()
            result = run_all(cfg, f"{args.out}/{name}-{protocol}", force=True)
            print(f"{name} {protocol}: {time.perf_counter() - start:.0f} s", flush=True)
            for row in result.board.ranked():
                r = row.result.to_dict()
                rows.append({
                    "protocol": protocol, "method": r["method"], "users": r["n_users"],
                    "fit s": round(r["fit_seconds"], 1),
                    "NDCG@10": f"{r['ndcg@10']:.4f} ± {r['ndcg@10_ci95']:.4f}",
                    "HR@10": f"{r['hitrate@10']:.4f} ± {r['hitrate@10_ci95']:.4f}",
                    "MRR@10": f"{r['mrr@10']:.4f}", "Recall@10": f"{r['recall@10']:.4f}",
                    "MAP@10": f"{r['map@10']:.4f}", "Cov@10": f"{r['coverage@10']:.4f}",
                })
            rows += [{"protocol": protocol, "method": f"{m} FAILED", **dict.fromkeys(
                ("users", "fit s", "NDCG@10", "HR@10", "MRR@10", "Recall@10", "MAP@10",
                 "Cov@10"), "")} for m in result.failed]
        print_table(rows, f"{args.methods} on {name}")


if __name__ == "__main__":
    main()
