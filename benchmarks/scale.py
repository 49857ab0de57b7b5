"""Every method at MovieLens scale on this machine: wall, fit, peak memory and quality.

The logs are the project's planted synthetic ones (``synthetic_movielens``: the size
statistics of each MovieLens release, and taste clusters so that quality means something),
split by ``--protocol``. Each method runs in its own process, so its peak resident memory
(exact, the kernel's high-water mark ``VmHWM``) is its own: generating and splitting the log,
fitting, and scoring every test user. Popularity and the planted oracle (the true chance of
each user drawing each movie) frame the NDCG@10 column. A second table prints how fit time
grows with the number of ratings from the smallest shape to each larger one (1.0: linear).

Usage: python benchmarks/scale.py [--shapes ml-1m,ml-20m,ml-25m,ml-latest]
           [--methods all] [--protocol user-time-0.2] [--limit 1200] [--threads N]
           [--device cuda]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from _common import print_table

HERE = Path(__file__).resolve().parent
#: Learned methods in the order they print; "pop" and "oracle" frame them.
DEFAULT_METHODS = ("pop", "oracle", "cleora", "node2vec", "deepwalk", "ials", "elsa", "eges",
                   "two-tower", "rating-mf", "text", "ease", "als")


def _vm_hwm_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(shape: str, method: str, protocol: str, seed: int, device: str | None) -> dict:
    """One method on one shape, in this process; returns its row."""
    from embedlens.core.progress import set_quiet
    from embedlens.data.synthetic import planted_vectors, synthetic_movielens
    from embedlens.evaluation.evaluate import evaluate_model
    from embedlens.evaluation.splits import EvalSplit
    from embedlens.methods.base import ImportedModel
    from embedlens.methods.registry import get_method

    set_quiet(True)
    start = time.perf_counter()
    ds = synthetic_movielens(shape, seed=seed)
    data = EvalSplit.prepare(ds, protocol)
    prepared = time.perf_counter()
    if method == "oracle":
        users, items = planted_vectors(ds)
        model = ImportedModel.from_embeddings(items, similarity="dot")
        model.user_embeddings = users
    else:
        cls = get_method(method)
        params: dict = {"seed": seed} if cls.Params.has("seed") else {}
        if device and cls.Params.has("device"):
            params["device"] = device
        model = cls(**params)
        model.fit(data.train, data.train_dataset(ds))
    fitted = time.perf_counter()
    result = evaluate_model(model, data)
    done = time.perf_counter()
    return {"shape": shape, "method": method, "ratings": ds.n_interactions,
            "device": device or "default",
            "wall s": round(done - start, 1), "data s": round(prepared - start, 1),
            "fit s": round(fitted - prepared, 1), "eval s": round(done - fitted, 1),
            "peak RSS GB": round(_vm_hwm_mb() / 1024, 2),
            "NDCG@10": round(result.metrics["ndcg@10"], 4),
            "CI95": round(result.ci95["ndcg@10"], 4), "test users": result.n_users}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", default="ml-1m,ml-20m,ml-25m,ml-latest")
    ap.add_argument("--methods", default="all")
    ap.add_argument("--protocol", default="user-time-0.2")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=1200,
                    help="seconds one method may run before it is stopped")
    ap.add_argument("--threads", type=int, default=None, help="EMBEDLENS_THREADS")
    ap.add_argument("--device", default=None,
                    help="device for every method that has one (default: its own, auto)")
    ap.add_argument("--child", nargs=2, metavar=("SHAPE", "METHOD"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        row = child(*args.child, args.protocol, args.seed, args.device)
        print("ROW " + json.dumps(row), flush=True)
        return

    methods = DEFAULT_METHODS if args.methods == "all" else tuple(args.methods.split(","))
    env = dict(os.environ, EMBEDLENS_QUIET="1")
    if args.threads:
        env["EMBEDLENS_THREADS"] = str(args.threads)
    rows: list[dict] = []
    for shape in args.shapes.split(","):
        for method in methods:
            cmd = [sys.executable, str(HERE / "scale.py"), "--child", shape, method,
                   "--protocol", args.protocol, "--seed", str(args.seed),
                   *(["--device", args.device] if args.device else [])]
            start = time.perf_counter()
            try:
                out = subprocess.run(cmd, capture_output=True, text=True, env=env,
                                     timeout=args.limit)
                found = [ln for ln in out.stdout.splitlines() if ln.startswith("ROW ")]
                if found:
                    row = json.loads(found[-1][4:])
                else:
                    last = (out.stderr.strip().splitlines() or ["no output"])[-1]
                    row = {"shape": shape, "method": method, "wall s": "failed",
                           "NDCG@10": last[:80]}
            except subprocess.TimeoutExpired:
                row = {"shape": shape, "method": method,
                       "wall s": f"stopped at {args.limit} s", "NDCG@10": "-"}
            rows.append(row)
            print(f"{shape} {method}: {time.perf_counter() - start:.0f} s "
                  f"{ {k: v for k, v in row.items() if k not in ('shape', 'method')} }",
                  flush=True)
    cols = ("shape", "method", "device", "ratings", "wall s", "data s", "fit s", "eval s",
            "peak RSS GB", "NDCG@10", "CI95", "test users")
    print_table([{c: r.get(c, "") for c in cols} for r in rows],
                f"Methods at MovieLens scale ({args.protocol}, planted synthetic logs, "
                f"seed {args.seed})")
    growth = []
    shapes = args.shapes.split(",")
    base = {r["method"]: r for r in rows if r["shape"] == shapes[0]
            and isinstance(r.get("fit s"), float)}
    for r in rows:
        b = base.get(r["method"])
        if r["shape"] == shapes[0] or b is None or not isinstance(r.get("fit s"), float) \
                or b["fit s"] <= 0:
            continue
        size = r["ratings"] / b["ratings"]
        growth.append({"method": r["method"], "from": shapes[0], "to": r["shape"],
                       "ratings x": round(size, 1), "fit x": round(r["fit s"] / b["fit s"], 1),
                       "fit x / ratings x": round(r["fit s"] / b["fit s"] / size, 2)})
    print_table(growth, "How fit time grows with the number of ratings (1.0: linear)")


if __name__ == "__main__":
    main()
