"""``embedlens train cleora`` and ``embedlens evaluate`` on 1, 2, ... ranks through torchrun
(gloo, this machine), on a log in a MovieLens folder (the planted ML-25M shape by default).

Each rank runs under ``/usr/bin/time`` so its exact peak RSS is printed; numba and BLAS
threads are split so that ranks x threads = the cores (EMBEDLENS_THREADS). The bytes each
Cleora step exchanges are the items x dim float32 sums every rank all-reduces; evaluation
gathers every test user's top-k item indices once.

Usage: python benchmarks/distributed.py --data-dir DIR [--dataset ml-25m] [--ranks 1,2]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

from _common import print_table


def launch(ranks: int, threads: int, args: list[str]) -> tuple[float, list[float], str]:
    """``embedlens ARGS`` on ``ranks`` ranks: wall seconds, each rank's peak RSS (GB)."""
    embedlens = shutil.which("embedlens") or str(Path(sys.executable).with_name("embedlens"))
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).with_name("torchrun"))
    env = {**os.environ, "EMBEDLENS_QUIET": "1", "EMBEDLENS_THREADS": str(threads)}
    start = time.perf_counter()
    proc = subprocess.run(
        [torchrun, "--standalone", "--nproc-per-node", str(ranks), "--no-python",
         "/usr/bin/time", "-f", "peak-kb %M", embedlens, *args],
        capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{ranks} ranks failed:\n{proc.stderr[-3000:]}")
    peaks = [int(m) / 2**20 for m in re.findall(r"peak-kb (\d+)", proc.stderr)]
    return wall, peaks, proc.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data-dir", required=True, type=Path)
    ap.add_argument("--dataset", default="ml-25m")
    ap.add_argument("--ranks", default="1,2")
    ap.add_argument("--dim", type=int, default=256)
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    rows = []
    base: dict[str, float] = {}
    for ranks in (int(r) for r in args.ranks.split(",")):
        threads = max(1, cores // ranks)
        out = Path(tempfile.mkdtemp(prefix="embedlens-dist-")) / "run"
        wall, peaks, _ = launch(ranks, threads, [
            "train", "cleora", "--dataset", args.dataset, "--data-dir", str(args.data_dir),
            "--out", str(out), "--param", f"dim={args.dim}"])
        info = json.loads((out / "run.json").read_text())
        items = json.loads((out / "model.json").read_text())
        fit = float(info["fit_seconds"])
        params = items.get("params", {})
        n_items = pq.ParquetFile(out / "items.parquet").metadata.num_rows
        per_step = n_items * args.dim * 4
        ev_wall, ev_peaks, _ = launch(ranks, threads, ["evaluate", str(out)])
        record = json.loads(next(out.glob("evaluation-*.json")).read_text())
        base.setdefault("fit", fit)
        base.setdefault("eval", float(record["eval_seconds"]))
        rows.append({
            "ranks": ranks, "threads/rank": threads, "train wall s": round(wall, 1),
            "fit s": round(fit, 1),
            "fit speed-up": round(base["fit"] / fit, 2),
            "peak RSS GB per rank": " / ".join(f"{p:.2f}" for p in peaks),
            "MB all-reduced per step": round(per_step / 2**20, 1),
            "steps": params.get("iterations", ""),
            "evaluate wall s": round(ev_wall, 1),
            "eval s": round(float(record["eval_seconds"]), 1),
            "ndcg@10": round(record["ndcg@10"], 4),
            "eval peak RSS GB per rank": " / ".join(f"{p:.2f}" for p in ev_peaks),
        })
        shutil.rmtree(out.parent, ignore_errors=True)
    print_table(rows, f"Cleora and evaluation on {args.dataset} ({args.data_dir}), torchrun "
                      f"--standalone, gloo, {cores} cores")


if __name__ == "__main__":
    main()
