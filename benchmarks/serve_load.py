"""Load test of ``embedlens serve``: start-up time, then concurrent ``similar`` and
``recommend`` requests against 127.0.0.1, with latency percentiles and the error count.

The server runs as the user runs it (``embedlens serve RUN``, one uvicorn process); the
clients are threads of this script, each with its own keep-alive connection, on the same
machine (so on 2 cores they take CPU from the server: the figures are an upper bound).
Start-up is the time to the first answer; the server then loads every method in the
background, and the load starts once it says ``ready`` (that time is printed too).

Usage: python benchmarks/serve_load.py RUN [--method M] [--clients 1,50] [--requests 2000]
       [--index exact|hnsw|auto]
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import subprocess
import sys
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from _common import print_table
from embedlens.app.train import load_train


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(conn: http.client.HTTPConnection, path: str) -> tuple[int, float]:
    start = time.perf_counter()
    conn.request("GET", path)
    response = conn.getresponse()
    response.read()
    return response.status, time.perf_counter() - start


def load(port: int, paths: list[str], clients: int) -> dict[str, object]:
    """``paths`` requested by ``clients`` threads at once, each with its own connection."""

    def worker(chunk: list[str]) -> list[tuple[int, float]]:
        own = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        return [get(own, p) for p in chunk]

    chunks = [paths[c::clients] for c in range(clients)]
    began = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = [r for part in pool.map(worker, chunks) for r in part]
    wall = time.perf_counter() - began
    ms = np.array([t for _, t in results]) * 1e3
    return {"requests": len(results), "errors": sum(s != 200 for s, _ in results),
            "req/s": round(len(results) / wall, 1),
            "p50 ms": round(float(np.percentile(ms, 50)), 1),
            "p99 ms": round(float(np.percentile(ms, 99)), 1),
            "max ms": round(float(ms.max()), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("run", type=Path)
    ap.add_argument("--method", default=None, help="default: the run's best at each query")
    ap.add_argument("--clients", default="1,50", help="concurrent clients, one pass each")
    ap.add_argument("--requests", type=int, default=2000, help="per query kind")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--index", default="auto", help="the server's --index")
    args = ap.parse_args()

    port = free_port()
    start = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-c", "from embedlens.app.cli import main; main()", "--quiet",
         "serve", str(args.run), "--port", str(port), "--index", args.index,
         "--layout", "pca"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        while True:
            if server.poll() is not None:
                sys.exit(f"the server stopped: {server.stderr.read() if server.stderr else ''}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                status, _ = get(conn, "/api/methods")
                if status == 200:
                    break
            except OSError:
                time.sleep(0.05)
        startup = time.perf_counter() - start
        while True:  # every method loaded (and its index built or read) in the background
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request("GET", "/api/methods")
            info = json.loads(conn.getresponse().read())
            if info["ready"]:
                break
            time.sleep(0.2)
        ready = time.perf_counter() - start
        searches = {m["method"]: m["search"] for m in info["methods"] if m["search"]}

        saved = load_train(args.run if (args.run / "train.npz").is_file()
                           else next(p for p in args.run.iterdir() if p.is_dir()))
        assert saved is not None, "the run has no train.npz"
        train = saved[0]
        rng = np.random.default_rng(args.seed)
        method = f"&method={urllib.parse.quote(args.method)}" if args.method else ""
        items = rng.choice(train.items.ids, args.requests)
        users = rng.choice(train.users.ids, args.requests)
        kinds = {
            "similar": [f"/api/similar?k=10{method}&item={i}" for i in items],
            "recommend": [f"/api/recommend?k=10{method}&user={u}" for u in users],
        }
        empty = {"req/s": "", "p50 ms": "", "p99 ms": ""}
        rows = [{"query": "start-up (to the first answer)", "clients": 1, "requests": 1,
                 "errors": 0, **empty, "max ms": round(startup * 1e3, 1)},
                {"query": "every method loaded (background)", "clients": "", "requests": "",
                 "errors": "", **empty, "max ms": round(ready * 1e3, 1)}]
        for kind, paths in kinds.items():
            for clients in (int(c) for c in args.clients.split(",")):
                rows.append({"query": kind, "clients": clients,
                             **load(port, paths, clients)})
        print_table(rows, f"embedlens serve {args.run} ({len(train.items):,} movies, "
                          f"{len(train.users):,} users; similar-movie search: {searches})")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
