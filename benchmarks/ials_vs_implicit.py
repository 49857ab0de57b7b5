"""embedlens' iALS beside implicit's AlternatingLeastSquares, on the same train matrices.

Usage: pip install implicit; python benchmarks/ials_vs_implicit.py [--shapes ml-100k,ml-1m,ml-20m]
           [--dim 128] [--epochs 16] [--repeats 3]

Speed: both fit the same binary users x items matrix with the same number of factors and
sweeps, both solve each side with 3 conjugate-gradient steps, both on every core
(numba and implicit's OpenMP threads, BLAS limited to one thread beside implicit as it asks).
The figure is the fit time, min/median over ``--repeats`` runs. ml-100k is the real log
(random-0.2 train part), the others synthetic logs of the MovieLens shapes.

Quality (ml-100k, random-0.2 and user-time-0.2): NDCG@10 of each on the test part, each
model at its own defaults and both at the same dim and sweeps (the losses differ: implicit
weighs observed pairs by 1 + alpha, iALS weighs every unobserved pair by alpha0 and scales
its regularisation by frequency).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from _common import ML_DIR, print_table
from embedlens.core.interactions import InteractionMatrix
from embedlens.core.progress import set_quiet
from embedlens.data import load_movielens, synthetic_movielens
from embedlens.evaluation.evaluate import evaluate_model
from embedlens.evaluation.splits import EvalSplit
from embedlens.methods.registry import get_method


def implicit_fit(x, dim: int, epochs: int, seed: int = 42):
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(factors=dim, iterations=epochs, random_state=seed,
                                        calculate_training_loss=False, use_cg=True)
        model.fit(x, show_progress=False)
    return model


def timed(fn, repeats: int) -> tuple[float, float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def train_matrix(shape: str) -> InteractionMatrix:
    if shape == "ml-100k":
        return EvalSplit.prepare(load_movielens("ml-100k", data_dir=ML_DIR), "random-0.2").train
    ds = synthetic_movielens(shape, seed=0)
    return InteractionMatrix.from_frame(ds.interactions)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shapes", default="ml-100k,ml-1m,ml-20m")
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    set_quiet(True)
    rows = []
    for shape in args.shapes.split(","):
        train = train_matrix(shape)
        x = train.binary()
        ours = get_method("ials")(dim=args.dim, epochs=args.epochs)
        ours.fit(train)  # numba compiles once, outside the timing
        o_min, o_med = timed(lambda: ours.fit(train), args.repeats)  # noqa: B023
        i_min, i_med = timed(lambda: implicit_fit(x, args.dim, args.epochs), args.repeats)  # noqa: B023
        rows.append({"shape": shape, "users": x.shape[0], "items": x.shape[1], "nnz": x.nnz,
                     "dim": args.dim, "sweeps": args.epochs,
                     "embedlens iALS s (min/med)": f"{o_min:.2f} / {o_med:.2f}",
                     "implicit ALS s (min/med)": f"{i_min:.2f} / {i_med:.2f}",
                     "time ratio (med)": f"{o_med / i_med:.2f}"})
    print_table(rows, f"iALS fit time, d={args.dim}, {args.epochs} sweeps, 3 CG steps")

    ml = load_movielens("ml-100k", data_dir=ML_DIR)
    quality = []
    for protocol in ("random-0.2", "user-time-0.2"):
        data = EvalSplit.prepare(ml, protocol)
        for label, model in (
            ("embedlens iALS, defaults", get_method("ials")()),
            ("implicit ALS, defaults", get_method("als")()),
            (f"embedlens iALS, d={args.dim}", get_method("ials")(dim=args.dim,
                                                                 epochs=args.epochs)),
            (f"implicit ALS, d={args.dim}", get_method("als")(factors=args.dim,
                                                              iterations=args.epochs)),
        ):
            report = evaluate_model(model.fit(data.train), data)
            quality.append({"protocol": protocol, "model": label,
                            "NDCG@10": f"{report['ndcg@10']:.4f} ± {report['ndcg@10_ci95']:.4f}",
                            "Recall@10": f"{report['recall@10']:.4f}"})
    print_table(quality, "ML-100k quality (test part)")
    assert np.isfinite(o_med)


if __name__ == "__main__":
    main()
