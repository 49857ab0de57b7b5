"""Re-create the tuned presets ``embedlens run`` ships (src/embedlens/app/presets/).

For each dataset and protocol, every method and baseline is tuned with the same budget on a
validation split cut from the protocol's train part (``embedlens tune all``: the test part is
never read), and the best parameters are written as ``<dataset>__<protocol>.toml`` with a
``[meta]`` table recording how they were made.

Usage: python benchmarks/make_presets.py [--datasets ml-100k,ml-latest-small]
           [--protocols all] [--trials 20] [--timeout 240] [--seed 42]
           [--studies runs/presets]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import tomli_w

from _common import ML_DIR, REPO
from embedlens.app.tune import tune_all
from embedlens.core.files import write_text
from embedlens.core.progress import set_quiet
from embedlens.data import load_movielens
from embedlens.methods.registry import all_methods, default_baselines, method_names
from embedlens.prep.protocols import PROTOCOLS

PRESETS = REPO / "src" / "embedlens" / "app" / "presets"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--datasets", default="ml-100k,ml-latest-small")
    ap.add_argument("--protocols", default="all")
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--timeout", type=float, default=240.0, help="seconds per method")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--studies", default="runs/presets", help="where the studies are kept")
    args = ap.parse_args()
    set_quiet(True)
    protocols = list(PROTOCOLS) if args.protocols == "all" else args.protocols.split(",")
    names = [*default_baselines(), *all_methods()]
    if "als" in method_names():
        try:
            import implicit  # noqa: F401

            names.insert(len(default_baselines()), "als")
        except ImportError:
            pass
    command = "python benchmarks/make_presets.py " + " ".join(sys.argv[1:])
    for dataset in args.datasets.split(","):
        ds = load_movielens(dataset, data_dir=ML_DIR)
        for protocol in protocols:
            start = time.perf_counter()
            results = tune_all(names, ds, dataset, protocol,
                               Path(args.studies) / f"{dataset}__{protocol}", args.trials,
                               args.timeout, args.seed)
            meta = {"dataset": dataset, "protocol": protocol, "trials": args.trials,
                    "timeout_seconds": args.timeout, "seed": args.seed,
                    "made": time.strftime("%Y-%m-%d"), "command": command,
                    "validation": "cut from the protocol's train part by its own rule",
                    "validation_ndcg@10": {n: round(r.value, 4) for n, r in results.items()
                                           if r.value is not None},
                    "trials_done": {n: r.trials for n, r in results.items()}}
            params = {n: r.params for n, r in results.items() if r.params}
            path = PRESETS / f"{dataset}__{protocol}.toml"
            write_text(path, tomli_w.dumps({"meta": meta, "params": params}))
            print(f"{path.name}: {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
