"""Speed levers at scale, each beside the method's default in quality: one method with
changed parameters (or a changed module constant) fitted on a planted log and scored on
the same split, printing fit seconds and NDCG@10.

This is the code that measured the levers listed under "ELSA in fewer, larger steps" in
docs/benchmarks.md. ``--shape ml-25m`` (default) fits the planted ML-25M-shaped log once
for every spec, each with seed 0; ``--small`` fits ML-100k and ml-latest-small
(``--data-dir``) on all three protocols instead, each method at its default seed. A spec
is ``method`` or ``method:{json parameters}``; two keys are not parameters but constants:
``"pool"`` (``training.SHARED_NEGATIVES``) and ``"max_steps"`` (ELSA's ``MAX_STEPS``).

Usage: python benchmarks/scale_levers.py 'two-tower:{"pool":128}' 'eges:{"epochs":3}'
       python benchmarks/scale_levers.py --small --data-dir ../shared/movielens ials \
           'ials:{"epochs":10}'
"""

from __future__ import annotations

import argparse
import json
import time

from _common import ML_DIR


def fitted(spec: str, data, ds, seed: int | None = None) -> tuple[str, float, dict]:
    """``spec``'s model fitted on ``data`` (with ``seed`` when given, else the method's
    default seed): its NDCG@10 text, fit seconds, history."""
    from embedlens.evaluation.evaluate import evaluate_model
    from embedlens.methods.registry import get_method

    name, _, rest = spec.partition(":")
    params = json.loads(rest) if rest else {}
    if "pool" in params:
        import embedlens.methods.training as training

        training.SHARED_NEGATIVES = params.pop("pool")
    if "max_steps" in params:
        import embedlens.methods.elsa.model as elsa

        elsa.MAX_STEPS = params.pop("max_steps")
    cls = get_method(name)
    if seed is not None and cls.Params.has("seed"):
        params.setdefault("seed", seed)
    start = time.perf_counter()
    model = cls(**params).fit(data.train, data.train_dataset(ds))
    seconds = time.perf_counter() - start
    r = evaluate_model(model, data)
    return (f"{r.metrics['ndcg@10']:.4f} ± {r.ci95['ndcg@10']:.4f}", seconds,
            getattr(model, "history", {}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("specs", nargs="+")
    ap.add_argument("--shape", default="ml-25m")
    ap.add_argument("--protocol", default="user-time-0.2")
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--data-dir", default=str(ML_DIR))
    args = ap.parse_args()
    from embedlens.core.progress import set_quiet
    from embedlens.evaluation.splits import EvalSplit

    set_quiet(True)
    if args.small:
        from embedlens.data import load_movielens

        for name in ("ml-100k", "ml-latest-small"):
            ds = load_movielens(name, data_dir=args.data_dir)
            for protocol in ("random-0.2", "user-time-0.2", "global-time-0.2"):
                data = EvalSplit.prepare(ds, protocol)
                cells = []
                for spec in args.specs:
                    ndcg, seconds, _ = fitted(spec, data, ds)
                    cells.append(f"{spec}: {ndcg} ({seconds:.1f} s)")
                print(name, protocol, *cells, sep=" | ", flush=True)
        return
    from embedlens.data.synthetic import synthetic_movielens

    ds = synthetic_movielens(args.shape, seed=0)
    data = EvalSplit.prepare(ds, args.protocol)
    for spec in args.specs:
        ndcg, seconds, history = fitted(spec, data, ds, seed=0)  # the log's seed
        print(f"{args.shape} {spec}: fit {seconds:.1f} s, NDCG@10 {ndcg}, checks "
              f"{len(history.get('loss', []))}, kept {history.get('kept_check')}", flush=True)


if __name__ == "__main__":
    main()
