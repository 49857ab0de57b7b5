"""Re-create the tuned presets ``embedlens run`` ships (src/embedlens/app/presets/).

For each dataset and protocol, every method and baseline is tuned with the same budget on a
validation split cut from the protocol's train part (``embedlens tune all``: the test part is
never read), and the best parameters are written as ``<dataset>__<protocol>.toml`` with a
``[meta]`` table recording how they were made.

Usage: python benchmarks/make_presets.py [--datasets ml-100k,ml-latest-small]
           [--protocols all] [--trials 20] [--timeout 240] [--seed 42]
           [--studies runs/presets] [--methods eges,two-tower]

``--methods`` re-tunes only those methods (after a change to them) and merges their results
into the presets already there, which must have been made with the same budget and seed.
Studies found in ``--studies`` are resumed, not repeated.
"""

from __future__ import annotations

import argparse
import sys
import time
import tomllib
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
    ap.add_argument("--methods", default=None,
                    help="only these (comma-separated), merged into the existing presets")
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
    if args.methods:
        unknown = sorted(set(args.methods.split(",")) - set(names))
        if unknown:
            sys.exit(f"make_presets: unknown method(s) {', '.join(unknown)}; "
                     f"choose from {', '.join(names)}.")
        names = [n for n in names if n in args.methods.split(",")]
    # the command that re-creates the whole preset (a --methods run merges into it)
    command = (f"python benchmarks/make_presets.py --datasets {{dataset}} --trials {args.trials} "
               f"--timeout {args.timeout:g} --seed {args.seed} --studies {args.studies}")
    for dataset in args.datasets.split(","):
        ds = load_movielens(dataset, data_dir=ML_DIR)
        for protocol in protocols:
            path = PRESETS / f"{dataset}__{protocol}.toml"
            meta, params = _existing(path, args) if args.methods else ({}, {})
            start = time.perf_counter()
            results = tune_all(names, ds, dataset, protocol,
                               Path(args.studies) / f"{dataset}__{protocol}", args.trials,
                               args.timeout, args.seed)
            meta.update({"dataset": dataset, "protocol": protocol, "trials": args.trials,
                         "timeout_seconds": args.timeout, "seed": args.seed,
                         "made": time.strftime("%Y-%m-%d"),
                         "command": command.format(dataset=dataset),
                         "validation": "cut from the protocol's train part by its own rule"})
            scores = meta.setdefault("validation_ndcg@10", {})
            done = meta.setdefault("trials_done", {})
            for n, r in results.items():
                if r.value is not None:
                    scores[n] = round(r.value, 4)
                done[n] = r.trials
                params.pop(n, None)
                if r.params:
                    params[n] = r.params
            write_text(path, tomli_w.dumps({"meta": meta, "params": params}))
            print(f"{path.name}: {time.perf_counter() - start:.0f} s", flush=True)


def _existing(path: Path, args: argparse.Namespace) -> tuple[dict, dict]:
    """The preset at ``path`` (meta, params; empty if none yet), refused unless made with
    this budget and seed: a merged preset must be one budget throughout."""
    if not path.is_file():
        return {}, {}
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    meta = dict(data.get("meta", {}))
    if (meta.get("trials"), meta.get("timeout_seconds"), meta.get("seed")) != (
            args.trials, args.timeout, args.seed):
        sys.exit(f"make_presets: {path} was made with trials={meta.get('trials')}, "
                 f"timeout={meta.get('timeout_seconds')}, seed={meta.get('seed')}; "
                 "re-tune with the same budget, or re-make the whole preset.")
    return meta, dict(data.get("params", {}))


if __name__ == "__main__":
    main()
