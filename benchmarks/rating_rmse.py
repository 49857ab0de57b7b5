"""Rating regression on ML-100k's random-0.2 split (all test rows), embedlens beside
scikit-surprise on the very same train and test rows.

Usage: pip install scikit-surprise; python benchmarks/rating_rmse.py [--seeds 10]
           [--svdpp-seeds 3]

Rows, each the mean (± sample std) over seeds where the model is random:
* the global mean, and the regularised user + item bias baseline (alternating closed-form
  updates, lambda = 10, the classic "baseline predictor");
* embedlens rating-mf with each head (dot, mlp, concat), defaults;
* Surprise BaselineOnly (its ALS bias baseline), SVD and SVD++ with Surprise's defaults.
The test rows are every random-0.2 test rating whose user and movie occur in train (what
``embedlens evaluate`` scores), so every model predicts exactly the same pairs.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import ML_DIR, print_table
from embedlens.core.progress import set_quiet
from embedlens.data import load_movielens
from embedlens.evaluation.evaluate import evaluate_model
from embedlens.evaluation.splits import EvalSplit
from embedlens.kernels.metrics import mae, rmse
from embedlens.methods.registry import get_method


def test_pairs(data: EvalSplit):
    """The (user, item, rating) test rows with both ids in train, as embedlens scores them."""
    test = data.split.test_all
    known = data.train.users.contains(test["user_id"]) & data.train.items.contains(
        test["item_id"])
    return (test["user_id"].to_numpy()[known], test["item_id"].to_numpy()[known],
            test["rating"].to_numpy()[known].astype(np.float64))


def bias_baseline(data: EvalSplit, users, items, reg: float = 10.0, sweeps: int = 10):
    r = data.train.ratings.tocoo()
    mu = r.data.mean()
    bu, bi = np.zeros(r.shape[0]), np.zeros(r.shape[1])
    for _ in range(sweeps):
        res = r.data - mu - bu[r.row]
        bi = np.bincount(r.col, res, r.shape[1]) / (np.bincount(r.col, minlength=r.shape[1]) + reg)
        res = r.data - mu - bi[r.col]
        bu = np.bincount(r.row, res, r.shape[0]) / (np.bincount(r.row, minlength=r.shape[0]) + reg)
    u, i = data.train.users.index(users), data.train.items.index(items)
    return mu + bu[u] + bi[i], float(mu)


def surprise_runs(data: EvalSplit, users, items, actual, seeds: list[int], algo_name: str):
    """RMSE/MAE/fit seconds of one Surprise algorithm per seed, trained on the same rows."""
    import surprise

    train = data.split.train
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train.csv"
        train.select("user_id", "item_id", "rating").write_csv(path, include_header=False)
        reader = surprise.Reader(line_format="user item rating", sep=",", rating_scale=(1, 5))
        trainset = surprise.Dataset.load_from_file(str(path), reader).build_full_trainset()
    out = []
    for seed in seeds:
        algo = {"BaselineOnly": lambda s: surprise.BaselineOnly(verbose=False),
                "SVD": lambda s: surprise.SVD(random_state=s),
                "SVD++": lambda s: surprise.SVDpp(random_state=s)}[algo_name](seed)
        start = time.perf_counter()
        algo.fit(trainset)
        fit_s = time.perf_counter() - start
        pred = np.array([algo.predict(str(u), str(i)).est for u, i in zip(users, items,
                                                                            strict=True)])
        out.append((rmse(pred, actual), mae(pred, actual), fit_s))
    return out


def summarise(name: str, runs, ndcg: str = "") -> dict:
    arr = np.array(runs, dtype=np.float64)
    std = arr[:, 0].std(ddof=1) if len(arr) > 1 else 0.0
    return {"model": name, "seeds": len(arr), "RMSE": f"{arr[:, 0].mean():.4f} ± {std:.4f}",
            "MAE": f"{arr[:, 1].mean():.4f}", "fit s": f"{arr[:, 2].mean():.1f}",
            "NDCG@10": ndcg}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--svdpp-seeds", type=int, default=3, help="SVD++ is slow: fewer seeds")
    args = ap.parse_args()
    set_quiet(True)
    data = EvalSplit.prepare(load_movielens("ml-100k", data_dir=ML_DIR), "random-0.2")
    users, items, actual = test_pairs(data)
    seeds = list(range(args.seeds))
    rows = []
    mu = float(data.train.ratings.data.mean())
    rows.append(summarise("global mean", [(rmse(np.full(actual.size, mu), actual),
                                           mae(np.full(actual.size, mu), actual), 0.0)]))
    pred, _ = bias_baseline(data, users, items)
    rows.append(summarise("user+item bias (lambda 10)", [(rmse(pred, actual),
                                                          mae(pred, actual), 0.0)]))
    for head in ("dot", "mlp", "concat"):
        runs, ndcgs = [], []
        for seed in seeds:
            start = time.perf_counter()
            model = get_method("rating-mf")(head=head, seed=seed, device="cpu")
            model.fit(data.train)
            fit_s = time.perf_counter() - start
            report = evaluate_model(model, data)
            assert report["n_ratings"] == actual.size  # the very same pairs as the peers
            runs.append((report["rmse"], report["mae"], fit_s))
            ndcgs.append(report["ndcg@10"])
        rows.append(summarise(f"embedlens rating-mf head={head}", runs,
                              f"{np.mean(ndcgs):.4f}"))
    for algo, n in (("BaselineOnly", 1), ("SVD", args.seeds), ("SVD++", args.svdpp_seeds)):
        rows.append(summarise(f"surprise {algo} (defaults)",
                              surprise_runs(data, users, items, actual, list(range(n)), algo)))
    print_table(rows, f"Rating prediction, ML-100k random-0.2 ({actual.size:,} test ratings)")


if __name__ == "__main__":
    main()
