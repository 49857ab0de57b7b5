"""EASE as dot products of d-dimensional user and item vectors, beside EASE itself.

Usage: python benchmarks/ease_spectral.py [--datasets ml-100k,ml-latest-small]
       [--protocols random-0.2,user-time-0.2] [--dims 64,256,512,1024]

EASE (Steck 2019) scores a user's unseen items ``-(x P)_i / P_ii`` with
``P = (XᵀX + λI)⁻¹``. With ``XᵀX = V diag(s) Vᵀ``, ``P = (I - V diag(w) Vᵀ) / λ`` for
``w = s / (s + λ)``, and on the items a user has not seen (``x_i = 0``) the score is
``(x V diag(w) Vᵀ)_i / (λ P_ii)``: a dot product of the user vector ``x V diag(√w)`` and the
item vector ``V_i diag(√w) / P_ii``. Keeping the d largest eigenvalues gives d-dimensional
embeddings (a closed-form low-rank linear autoencoder in the sense of Steck 2020 and Jin et
al. 2021); their ranking tends to EASE's as d grows, because ``w`` is close to 0 for small
eigenvalues. ``P_ii`` is taken two ways: exactly, and from the kept components alone,
``(1 - Σ_k≤d V_ik² w_k) / λ``, which is what a truncated SVD of X would give on a catalogue
too large for EASE's dense inverse. The vectors are the ``ease-lowrank`` method's own
(``ease_factors``), from every eigenpair of the exact solver.

EASE runs as the project's ``ease`` method at the shipped preset's λ (tuned on validation);
the factorisation uses the same λ and the same split, and both are scored by ``embedlens``'
evaluation (top-10, train items excluded, 95% CI over test users). The measurement that led
to the ``ease-lowrank`` method, which adds a solver for large catalogues and its own tuning.
"""

from __future__ import annotations

import argparse

import numpy as np

from _common import ML_DIR, print_table, timed
from embedlens.app.presets import load_preset
from embedlens.core.progress import set_quiet
from embedlens.data import load_movielens
from embedlens.evaluation.evaluate import evaluate_model
from embedlens.evaluation.splits import EvalSplit
from embedlens.kernels.metrics import ranking_report
from embedlens.kernels.topk import dot_scorer, topk
from embedlens.methods.ease_lowrank.model import (
    ease_factors,
    exact_eigenpairs,
    scaled_diagonal,
)
from embedlens.methods.registry import get_method


def ndcg(split: EvalSplit, users: np.ndarray, items: np.ndarray) -> tuple[float, float]:
    """NDCG@10 and its 95% CI of dot-product scores ``users @ items.T`` on ``split``."""
    recs, _ = topk(dot_scorer(users, items), split.users, items.shape[0], 10,
                   exclude=split.train.ratings)
    report = ranking_report(recs, split.truth, items.shape[0], 10)
    return report["ndcg@10"], report["ndcg@10_ci95"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--datasets", default="ml-100k,ml-latest-small")
    ap.add_argument("--protocols", default="random-0.2,user-time-0.2,global-time-0.2")
    ap.add_argument("--dims", default="64,256,512,1024")
    args = ap.parse_args()
    set_quiet(True)
    rows = []
    for name in args.datasets.split(","):
        ds = load_movielens(name, data_dir=ML_DIR)
        for protocol in args.protocols.split(","):
            preset = load_preset(name, protocol)
            lam = float(preset["params"]["ease"]["lambda"]) if preset else 250.0
            split = EvalSplit.prepare(ds, protocol)
            ease = evaluate_model(get_method("ease")(**{"lambda": lam}).fit(split.train), split)
            rows.append({"dataset": name, "protocol": protocol, "method": "ease", "dim": "full",
                         "lambda": round(lam, 1), "NDCG@10": ease["ndcg@10"],
                         "CI95": ease["ndcg@10_ci95"], "P_ii": ""})
            x = split.train.binary()
            (s, v), seconds = timed(lambda x=x: exact_eigenpairs(x))
            exact_p = scaled_diagonal(s, v, lam, s.size)  # every positive eigenpair: exact
            for d in (int(t) for t in args.dims.split(",")):
                d = min(d, s.size)
                for label, p in (("exact", exact_p), ("from the d kept", None)):
                    root, items = ease_factors(s, v, lam, d, scaled_p=p)
                    score, ci = ndcg(split, np.asarray(x @ root, dtype=np.float32), items)
                    rows.append({"dataset": name, "protocol": protocol,
                                 "method": "EASE factorised", "dim": d,
                                 "lambda": round(lam, 1), "NDCG@10": score, "CI95": ci,
                                 "P_ii": label})
            print(f"{name} {protocol}: {s.size:,} eigenpairs of XᵀX in "
                  f"{seconds:.1f} s", flush=True)
    print_table(rows, "EASE and its d-dimensional factorisation (same split, same lambda)")


if __name__ == "__main__":
    main()
