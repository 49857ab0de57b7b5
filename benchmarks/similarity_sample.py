"""The neighbour judgement (``sim_ndcg@10``) of one fitted method on every eligible movie
against the seeded sample of ``MAX_QUERIES`` that ``embedlens run`` now judges above that
many: seconds, the estimate and its 95% CI, so the sample's saving and its agreement with
the full judgement are shown side by side.

Usage: python benchmarks/similarity_sample.py --data-dir DIR --run RUN/METHOD
       [--dataset ml-25m] [--protocol user-time-0.2] [--only-sample]
"""

from __future__ import annotations

import argparse
import time

from _common import print_table
from embedlens.data import load_dataset
from embedlens.evaluation.similarity import MAX_QUERIES, SimilaritySplit, evaluate_similarity
from embedlens.evaluation.splits import EvalSplit
from embedlens.io.runs import load_run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--run", required=True, help="one method's folder of a run")
    ap.add_argument("--dataset", default="ml-25m")
    ap.add_argument("--protocol", default="user-time-0.2")
    ap.add_argument("--only-sample", action="store_true",
                    help="judge the sample alone (the process's peak RSS is then its own)")
    args = ap.parse_args()
    data = EvalSplit.prepare(load_dataset(args.dataset, data_dir=args.data_dir),
                             args.protocol)
    info, model = load_run(args.run)
    items = model.item_vectors()  # type: ignore[attr-defined]
    rows = []
    ways = (("every eligible movie", 10**9), ("seeded sample", MAX_QUERIES))
    for label, cap in ways[1:] if args.only_sample else ways:
        start = time.perf_counter()
        split = SimilaritySplit.prepare(data, max_queries=cap)
        prepared = time.perf_counter() - start
        start = time.perf_counter()
        judged = evaluate_similarity(items, split)
        rows.append({"method": info.method, "queries": label,
                     "judged": judged["sim_queries"],
                     "sampled from": judged["sim_sampled_from"] or "",
                     "prepare s": round(prepared, 1),
                     "judge s": round(time.perf_counter() - start, 1),
                     "sim_ndcg@10": round(judged["sim_ndcg@10"], 4),
                     "CI95": round(judged["sim_ndcg@10_ci95"], 4)})
    print_table(rows, f"Neighbour judgement, {args.dataset} {args.protocol}")


if __name__ == "__main__":
    main()
