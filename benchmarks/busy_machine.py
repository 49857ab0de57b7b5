"""Methods on a busy machine: fit time quiet and under a fixed background load, with OpenMP's
idle threads spinning (``OMP_WAIT_POLICY=ACTIVE``: torch's default, what embedlens did before)
and sleeping (``PASSIVE``: what embedlens sets now, see ``embedlens.core.threads``).

The load is one busy-looping process per usable core, started before the fit and stopped
after it. Each fit runs in a fresh process (the wait policy is read when OpenMP loads).

Usage: python benchmarks/busy_machine.py [--dataset ml-100k] [--methods two-tower,rating-mf,cleora]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from _common import ML_DIR, print_table

#: Short fits that show the effect: what each method trains (seconds quiet on 2 cores).
FITS = {
    "two-tower": {"epochs": 5, "patience": 99},
    "rating-mf": {"epochs": 5, "patience": 99},
    "eges": {"epochs": 1},
    "cleora": {},
    "node2vec": {},
    "ials": {},
}

CHILD = """
import json, sys, time
from embedlens.core.progress import set_quiet
from embedlens.data import load_movielens
from embedlens.evaluation.splits import EvalSplit
from embedlens.methods.registry import get_method
set_quiet(True)
ds = load_movielens(sys.argv[1], data_dir=sys.argv[2])
data = EvalSplit.prepare(ds, "user-time-0.2")
params = json.loads(sys.argv[4])
model = get_method(sys.argv[3])(**params)
start = time.perf_counter()
model.fit(data.train, data.train_dataset(ds))
print("FIT", time.perf_counter() - start)
"""


def fit_seconds(dataset: str, method: str, policy: str, load: int) -> float:
    env = dict(os.environ, OMP_WAIT_POLICY=policy, EMBEDLENS_QUIET="1")
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(load)]
    try:
        out = subprocess.run([sys.executable, "-c", CHILD, dataset, str(ML_DIR), method,
                              json.dumps(FITS[method])], capture_output=True, text=True,
                             env=env, timeout=1800)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("FIT ")]
    if not line:
        raise SystemExit(f"{method} failed: {out.stderr.strip().splitlines()[-1:]}")
    return float(line[-1].split()[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="ml-100k")
    ap.add_argument("--methods", default="two-tower,rating-mf,cleora")
    args = ap.parse_args()
    cores = len(os.sched_getaffinity(0))
    rows = []
    for method in args.methods.split(","):
        row: dict[str, object] = {"method": method, "fit": json.dumps(FITS[method])}
        for policy in ("ACTIVE", "PASSIVE"):
            for load in (0, cores):
                seconds = fit_seconds(args.dataset, method, policy, load)
                row[f"{policy.lower()} {'busy' if load else 'quiet'} s"] = round(seconds, 1)
                print(f"{method} {policy} load={load}: {seconds:.1f} s", flush=True)
                time.sleep(1)
        rows.append(row)
    print_table(rows, f"Fit seconds on {args.dataset} (user-time-0.2), quiet and with {cores} "
                f"busy-looping processes on {cores} cores, by OpenMP wait policy")


if __name__ == "__main__":
    main()
