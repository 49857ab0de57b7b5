"""Leaderboards: ``embedlens run`` on every protocol of each dataset, with 95% CIs.

Each (dataset, protocol) is one ``embedlens run`` (same code path as the command line),
written to ``OUT/<dataset>-<protocol>/`` with its report.html. Three tables print as
Markdown per dataset: ranking (every method and baseline), neighbours (the methods with item
vectors, judged against held-out companions) and cold start (the methods that place unseen
movies, beside genre popularity and random order).

Usage: python benchmarks/leaderboard.py [--datasets ml-100k,ml-latest-small]
           [--methods all] [--baselines random,pop,ease,als] [--protocols all]
           [--ease-lambda 100] [--tune N] [--seeds N] [--no-preset]
           [--out runs/leaderboards]
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
    ap.add_argument("--tune", type=int, default=None, help="trials per method (run --tune)")
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--no-preset", action="store_true",
                    help="every method at its plain defaults, not the shipped tuned preset")
    ap.add_argument("--out", default="runs/leaderboards")
    args = ap.parse_args()
    set_quiet(True)
    protocols = list(PROTOCOLS) if args.protocols == "all" else args.protocols.split(",")
    for name in args.datasets.split(","):
        ranking, neighbours, cold = [], [], []
        for protocol in protocols:
            params = {"ease": {"lambda": args.ease_lambda}} if args.ease_lambda else {}
            cfg = RunConfig(dataset=name, data_dir=str(ML_DIR), protocol=protocol,
                            methods=args.methods, baselines=args.baselines, params=params,
                            tune_trials=args.tune, seeds=args.seeds,
                            preset=not args.no_preset)
            start = time.perf_counter()
            result = run_all(cfg, f"{args.out}/{name}-{protocol}", force=True)
            print(f"{name} {protocol}: {time.perf_counter() - start:.0f} s", flush=True)
            board = result.board
            for row in board.ranked():
                r = row.result.to_dict()
                ranking.append({
                    "protocol": protocol, "method": row.method, "users": r["n_users"],
                    "fit s": round(r["fit_seconds"], 1),
                    **({"NDCG@10 over seeds": board.seeds_cell(row)} if args.seeds > 1
                       else {}),
                    "NDCG@10": f"{r['ndcg@10']:.4f} ± {r['ndcg@10_ci95']:.4f}",
                    "HR@10": f"{r['hitrate@10']:.4f} ± {r['hitrate@10_ci95']:.4f}",
                    "MRR@10": f"{r['mrr@10']:.4f}", "Recall@10": f"{r['recall@10']:.4f}",
                    "MAP@10": f"{r['map@10']:.4f}", "Cov@10": f"{r['coverage@10']:.4f}",
                    **({"val NDCG@10": f"{row.tuning['value']:.4f}"
                        if row.tuning.get("value") is not None else "-"}
                       if row.tuning else {}),
                })
            ranking += [{"protocol": protocol, "method": f"{m} FAILED", **dict.fromkeys(
                list(ranking[-1])[2:] if ranking else ["NDCG@10"], "")}
                for m in result.failed]
            for row in board.neighbours_ranked():
                cells = board.neighbour_cells(row)
                neighbours.append({"protocol": protocol, "method": row.method,
                                   "sim NDCG@10": cells[0], "genre agreement": cells[1],
                                   "neighbour popularity": cells[2],
                                   "queries embedded": cells[3]})
            # the cold split holds out movies of the whole log, whatever the protocol: with
            # the same (default) parameters every protocol gives the same table, so print it
            # once; tuned or preset parameters differ by protocol
            same = args.tune is None and args.no_preset and protocol != protocols[0]
            for r in [] if same else (result.coldstart or {}).get("rows", []):
                held, full = r["held_out"], r["full"]
                cold.append({"protocol": protocol, "ranking": r["ranking"],
                             "held-out NDCG@10": f"{held['ndcg@10']:.4f} ± "
                                                 f"{held['ndcg@10_ci95']:.4f}",
                             "held-out HR@10": f"{held['hitrate@10']:.4f}",
                             "full-catalogue NDCG@10": "" if not full else
                             f"{full['ndcg@10']:.4f} ± {full['ndcg@10_ci95']:.4f}"})
        label = f"{args.methods} on {name}" + (
            f", tuned ({args.tune} trials)" if args.tune else
            ", plain defaults" if args.no_preset else ", shipped presets where they exist")
        print_table(ranking, label)
        print_table(neighbours, f"neighbours on {name}")
        print_table(cold, f"cold start on {name}")


if __name__ == "__main__":
    main()
