"""How the popularity prior scores in three time periods of a global-time split.

Usage: python benchmarks/validation_periods.py [--dataset ml-100k] [--methods pop,cleora,...]

On global-time-0.2 the tuner validates on the last 20% of the train part by time, the period
just before test. This script fits each method at its shipped preset (seed 42) and scores it,
at several weights of the popularity prior, in three periods: one cut earlier (the last 20%
of the tuner's fit part), the tuner's validation period, and test. A weight that validation
rejects and test rewards shows a shift between periods, not something tuning can see.
"""

from __future__ import annotations

import argparse
import warnings

from _common import ML_DIR, print_table
from embedlens.app.presets import load_preset
from embedlens.app.tune import validation_split
from embedlens.core.progress import set_quiet
from embedlens.data import load_movielens
from embedlens.evaluation.evaluate import evaluate_model
from embedlens.evaluation.splits import EvalSplit
from embedlens.methods.registry import get_method

PROTOCOL = "global-time-0.2"
WEIGHTS = (0.0, 0.5, 1.0, 2.0, 4.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--methods", default="pop,cleora,deepwalk,eges,node2vec,two-tower")
    args = parser.parse_args()
    set_quiet(True)
    warnings.simplefilter("ignore")
    ds = load_movielens(args.dataset, data_dir=ML_DIR)
    preset = (load_preset(args.dataset, PROTOCOL) or {}).get("params", {})
    fit_ds, validation = validation_split(ds, PROTOCOL)
    earlier_ds, earlier = validation_split(fit_ds, PROTOCOL)
    periods = [("earlier", earlier_ds, earlier), ("validation", fit_ds, validation),
               ("test", ds, EvalSplit.prepare(ds, PROTOCOL))]
    rows = []
    for method in args.methods.split(","):
        params = preset.get(method, {})
        for period, source, split in periods:
            model = get_method(method)(**params).fit(split.train, split.train_dataset(source))
            row: dict[str, object] = {"method": method, "period": period,
                                      "users": len(split.users)}
            weighted = "popularity" in model.params
            for weight in WEIGHTS:
                if weighted:
                    model.p = model.p.replace(popularity=weight)
                elif weight:  # no prior to weigh: its one score sits under weight 0
                    row[f"prior {weight:g}"] = "-"
                    continue
                ndcg = evaluate_model(model, split, 10).metrics["ndcg@10"]
                row[f"prior {weight:g}"] = f"{ndcg:.4f}"
            row["preset weight"] = params.get("popularity", "-")
            rows.append(row)
    print_table(rows, f"{args.dataset} {PROTOCOL}: NDCG@10 by period and prior weight")


if __name__ == "__main__":
    main()
