"""Cleora's lean route (``CleoraModel.fit_parquet``) on 1, 2, 4 ... ranks through torchrun
(gloo, this machine): each rank keeps only its users' hyperedges (user id modulo the number
of ranks), so its pattern is about 1/N of the log, while every rank ends with one process's
vectors.

The log is an ML-25M-shaped planted one (``synthetic_movielens``), written once as a Parquet
file of its two id columns in row groups of 1M rows. Each rank runs under ``/usr/bin/time``
for its exact peak RSS; ranks x threads = the cores (one thread a rank when there are more
ranks than cores). Printed per run: wall, each rank's fit seconds, hyperedges held, peak RSS
and bytes put into collectives, and the smallest cosine between a movie's vector on rank 0
and on one process.

Usage: python benchmarks/cleora_lean_ranks.py [--shape ml-25m] [--ranks 1,2,4] [--dim 256]
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

import numpy as np

from _common import print_table


def child(path: str, dim: int, out: str) -> None:
    """One rank: fit on its share of the log, print its record, rank 0 saves the vectors."""
    from embedlens.core.distributed import EXCHANGED, init_from_env, work_done
    from embedlens.methods.registry import get_method

    w = init_from_env()
    start = time.perf_counter()
    model = get_method("cleora")(dim=dim).fit_parquet(path)
    seconds = time.perf_counter() - start
    work = work_done()
    print("RANK " + json.dumps({"rank": w.rank, "fit s": round(seconds, 1),
                                "hyperedges": work.get("hyperedges", 0),
                                "MB sent": round(work.get(EXCHANGED, 0) / 1e6, 1)}), flush=True)
    if w.main:
        np.save(out, model.item_vectors().vectors)


def launch(ranks: int, path: Path, dim: int, out: Path) -> tuple[float, list[dict]]:
    """This script's child on ``ranks`` ranks: wall seconds and each rank's record."""
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).with_name("torchrun"))
    threads = max(1, (os.cpu_count() or 1) // ranks)
    env = {**os.environ, "EMBEDLENS_QUIET": "1", "EMBEDLENS_THREADS": str(threads)}
    start = time.perf_counter()
    proc = subprocess.run(
        [torchrun, "--standalone", "--nproc-per-node", str(ranks), "--no-python",
         "/usr/bin/time", "-f", "peak-kb %M", sys.executable, __file__, "--child", str(path),
         str(dim), str(out)], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{ranks} ranks failed:\n{proc.stderr[-3000:]}")
    records = sorted((json.loads(line[5:]) for line in proc.stdout.splitlines()
                      if line.startswith("RANK ")), key=lambda r: r["rank"])
    peaks = [int(m) / 2**20 for m in re.findall(r"peak-kb (\d+)", proc.stderr)]
    return wall, [{**r, "peak GB": round(p, 2)} for r, p in zip(records, peaks, strict=True)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shape", default="ml-25m")
    ap.add_argument("--ranks", default="1,2,4")
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), args.child[2])
        return
    from embedlens.data.synthetic import synthetic_movielens

    with tempfile.TemporaryDirectory(prefix="cleora-ranks-") as tmp:
        path = Path(tmp) / "log.parquet"
        synthetic_movielens(args.shape, seed=0).interactions.select(
            "user_id", "item_id").write_parquet(path, row_group_size=1 << 20)
        rows, single = [], None
        for n in (int(r) for r in args.ranks.split(",")):
            out = Path(tmp) / f"vectors-{n}.npy"
            wall, records = launch(n, path, args.dim, out)
            vectors = np.load(out)
            if single is None:
                single = vectors
            cosine = (vectors * single).sum(1) / np.maximum(
                np.linalg.norm(vectors, axis=1) * np.linalg.norm(single, axis=1), 1e-30)
            rows.append({"ranks": n, "wall s": round(wall, 1),
                         "fit s per rank": " / ".join(str(r["fit s"]) for r in records),
                         "hyperedges per rank": " / ".join(f"{r['hyperedges']:,}"
                                                           for r in records),
                         "peak RSS GB per rank": " / ".join(str(r["peak GB"])
                                                            for r in records),
                         "MB sent per rank": " / ".join(str(r["MB sent"]) for r in records),
                         "min cosine to 1 rank": f"{cosine.min():.7f}"})
            print(rows[-1], flush=True)
        print_table(rows, f"Cleora fit_parquet on {args.shape}, dim {args.dim}, by ranks")


if __name__ == "__main__":
    main()
