"""Co-occurrence counts with a floor: ``kernels.sparse.sparse_product`` beside SciPy's
sparse product, where a run uses one: the neighbour split (held-out companions of up to
10,000 query movies, counted against every test user's held-out movies) and node2vec's PMI
graph (``triu(Bᵀ B)`` over the ratings of 5). Both sides give the same result (tested in
tests/test_scale_mechanics.py); the peer is the SciPy product the code used before, run in
the same process on the same split, and the same bits are checked here again.

Usage: python benchmarks/cooccurrence.py [--shape ml-25m] [--repeats 2]
"""

from __future__ import annotations

import argparse

import numpy as np
import scipy.sparse as sp

from _common import print_table, timed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shape", default="ml-25m")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    import embedlens.evaluation.similarity as similarity
    import embedlens.kernels.graphs as graphs
    from embedlens.core.progress import set_quiet
    from embedlens.data.synthetic import synthetic_movielens
    from embedlens.evaluation.splits import EvalSplit

    set_quiet(True)
    data = EvalSplit.prepare(synthetic_movielens(args.shape, seed=0), "user-time-0.2")
    # each stage: the module whose product is swapped, and SciPy's product as it was used
    modules = {"neighbour split": similarity, "PMI graph": graphs}
    scipys = {"neighbour split": lambda a, b, least: (a @ b).tocsr(),
              "PMI graph": lambda a, b, least, above_diagonal: sp.triu(a @ b, k=1).tocsr()}
    stages = {"neighbour split": lambda: similarity.SimilaritySplit.prepare(data).companions,
              "PMI graph": lambda: graphs.pmi_graph(data.train).adj}
    stages["PMI graph"]()  # numba compiles outside the timing
    rows = []
    for stage, run in stages.items():
        module, ours = modules[stage], modules[stage].sparse_product
        seconds: dict[str, list[float]] = {"embedlens": [], "scipy": []}
        results = {}
        for _ in range(args.repeats):
            for who, product in (("embedlens", ours), ("scipy", scipys[stage])):
                module.sparse_product = product
                results[who], s = timed(run)
                seconds[who].append(s)
            module.sparse_product = ours
        same = all(np.array_equal(getattr(results["embedlens"], p), getattr(results["scipy"], p))
                   for p in ("indptr", "indices", "data"))
        rows.append({"shape": args.shape, "stage": stage, "nnz": results["embedlens"].nnz,
                     "embedlens s (min)": min(seconds["embedlens"]),
                     "scipy s (min)": min(seconds["scipy"]),
                     "speed-up": min(seconds["scipy"]) / min(seconds["embedlens"]),
                     "same result": same})
    print_table(rows, f"co-occurrence counts, {args.shape} shape, user-time-0.2, "
                      f"min of {args.repeats}")


if __name__ == "__main__":
    main()
