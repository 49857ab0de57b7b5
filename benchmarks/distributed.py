"""``embedlens train METHOD`` and ``embedlens evaluate`` on 1, 2, 4 ... ranks through
torchrun (gloo, this machine), on a log in a MovieLens folder (the planted ML-25M shape by
default), for each method asked.

Each rank runs under ``/usr/bin/time`` so its exact peak RSS is printed; numba, torch and
BLAS threads are split so that ranks x threads = the cores (EMBEDLENS_THREADS), or one
thread a rank when there are more ranks than cores. Each rank's share of the work and the
bytes it put into collectives come from the run record (``run.json``: ``distributed.ranks``).

Usage: python benchmarks/distributed.py --data-dir DIR [--dataset ml-25m] [--ranks 1,2,4]
       [--methods cleora,rating-mf] [--param rating-mf:epochs=1 ...]
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
    ap.add_argument("--ranks", default="1,2,4")
    ap.add_argument("--methods", default="cleora")
    ap.add_argument("--param", action="append", default=[],
                    help="METHOD:KEY=VALUE, passed to that method's train (repeatable)")
    ap.add_argument("--no-evaluate", action="store_true", help="train only")
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    rows = []
    for method in args.methods.split(","):
        params = [kv.split(":", 1)[1] for kv in args.param if kv.startswith(method + ":")]
        base = None
        for ranks in (int(r) for r in args.ranks.split(",")):
            threads = max(1, cores // ranks)
            out = Path(tempfile.mkdtemp(prefix="embedlens-dist-")) / "run"
            wall, peaks, _ = launch(ranks, threads, [
                "train", method, "--dataset", args.dataset, "--data-dir", str(args.data_dir),
                "--out", str(out), *[a for kv in params for a in ("--param", kv)]])
            info = json.loads((out / "run.json").read_text())
            fit = float(info["fit_seconds"])
            if ranks == 1:  # speed-up and efficiency only against one rank of this run
                base = fit
            shares = ["-"]
            sent = "-"
            if info.get("distributed"):
                per_rank = info["distributed"]["ranks"]
                sent = " / ".join(f"{r['work'].get('bytes exchanged', 0) / 2**20:,.0f}"
                                  for r in per_rank)
                steps = per_rank[0]["work"].get("steps")
                if steps:
                    per_step = per_rank[0]["work"].get("bytes exchanged", 0) / steps / 2**20
                    sent += f" ({per_step:,.2f} a step, {steps:,} steps)"
                kinds = [k for k in per_rank[0]["work"] if k not in ("bytes exchanged", "steps")]
                shares = [f"{k}: " + " / ".join(f"{r['work'].get(k, 0):,}" for r in per_rank)
                          for k in kinds]
            row = {
                "method": method, "ranks": ranks, "threads/rank": threads,
                "train wall s": round(wall, 1), "fit s": round(fit, 1),
                "speed-up": round(base / fit, 2) if base else "-",
                "efficiency": round(base / fit / ranks, 2) if base else "-",
                "peak RSS GB per rank": " / ".join(f"{p:.2f}" for p in peaks),
                "share per rank": "; ".join(shares),
                "MB sent per rank": sent,
            }
            if not args.no_evaluate:
                ev_wall, _, _ = launch(ranks, threads, ["evaluate", str(out)])
                record = json.loads(next(out.glob("evaluation-*.json")).read_text())
                row.update({"evaluate wall s": round(ev_wall, 1),
                            "ndcg@10": round(record["ndcg@10"], 4)})
            rows.append(row)
            print(row, flush=True)
            shutil.rmtree(out.parent, ignore_errors=True)
    print_table(rows, f"Training and evaluation on {args.dataset} ({args.data_dir}), torchrun "
                      f"--standalone, gloo, {cores} cores")


if __name__ == "__main__":
    main()
