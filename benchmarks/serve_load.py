"""Load test of ``embedlens serve``: start-up time, then concurrent ``similar`` and
``recommend`` requests against 127.0.0.1, with latency percentiles and the error count.

The server runs as the user runs it (``embedlens serve RUN``, one uvicorn process). The
clients are, by default, threads of this script, each with its own keep-alive connection,
on the same machine (so on 2 cores they take CPU from the server: the figures are an upper
bound); ``--client wrk`` uses wrk (Debian's ``wrk`` package; C, one thread, ``-c`` keep-alive
connections) instead, which costs the server's cores far less, running for as long as the
Python clients took. Start-up is the time to the first answer; the server then loads every
method in the background, and the load starts once it says ``ready`` (with
``--precompute``, once the answers are computed or read; both times are printed).

Usage: python benchmarks/serve_load.py RUN [--method M] [--clients 1,50] [--requests 2000]
       [--index exact|hnsw|auto] [--precompute] [--client python|wrk] [--workers N]
       [--wrk-seconds S]
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


WRK_SCRIPT = """
local paths = {}
for line in io.lines(os.getenv("EMBEDLENS_WRK_PATHS")) do paths[#paths + 1] = line end
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1])
end
"""


def _ms(value: str) -> float:
    for unit, scale in (("us", 1e-3), ("ms", 1.0), ("s", 1e3)):
        if value.endswith(unit):
            return float(value[: -len(unit)]) * scale
    raise ValueError(value)


def load_wrk(port: int, paths: list[str], clients: int, seconds: float) -> dict[str, object]:
    """``paths`` in turn over ``clients`` keep-alive connections of one wrk thread for
    ``seconds``."""
    import os
    import re
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        listing, script = Path(tmp) / "paths.txt", Path(tmp) / "paths.lua"
        listing.write_text("\n".join(paths) + "\n")
        script.write_text(WRK_SCRIPT)
        out = subprocess.run(
            ["wrk", "-t1", f"-c{clients}", f"-d{max(1, round(seconds))}s", "--latency",
             "-s", str(script), f"http://127.0.0.1:{port}"],
            capture_output=True, text=True, env={**os.environ, "EMBEDLENS_WRK_PATHS":
                                                 str(listing)}, check=True).stdout
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.M))
    done = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                       r"timeout (\d+)", out)
    return {"requests": done,
            "errors": (int(bad.group(1)) if bad else 0)
            + (sum(map(int, errors.groups())) if errors else 0),
            "req/s": round(float(re.search(r"Requests/sec:\s+(\S+)", out).group(1)), 1),
            "p50 ms": round(_ms(latency["50"]), 1), "p99 ms": round(_ms(latency["99"]), 1),
            "max ms": round(_ms(re.search(r"Latency\s+\S+\s+\S+\s+(\S+)", out).group(1)), 1)}


def searchable(info: dict) -> set[str]:
    """The methods with movie vectors (they get nearest-movie lists too)."""
    return {m["method"] for m in info["methods"] if m["items"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("run", type=Path)
    ap.add_argument("--method", default=None, help="default: the run's best at each query")
    ap.add_argument("--clients", default="1,50", help="concurrent clients, one pass each")
    ap.add_argument("--requests", type=int, default=2000, help="per query kind")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--index", default="auto", help="the server's --index")
    ap.add_argument("--precompute", action="store_true", help="the server's --precompute")
    ap.add_argument("--client", choices=("python", "wrk"), default="python")
    ap.add_argument("--workers", type=int, default=1, help="the server's --workers")
    ap.add_argument("--wrk-seconds", type=float, default=0.0,
                    help="run wrk at least this long (a rare stall shows in a long run)")
    args = ap.parse_args()

    port = free_port()
    start = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-c", "from embedlens.app.cli import main; main()", "--quiet",
         "serve", str(args.run), "--port", str(port), "--index", args.index,
         "--layout", "pca", "--workers", str(args.workers),
         *(["--precompute"] if args.precompute else [])],
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
        # every method loaded (and its index built or read) in the background, in every
        # worker: each answer comes from any of them, so several in a row must say so
        in_a_row = 0
        while in_a_row < 4 * args.workers:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request("GET", "/api/methods")
            info = json.loads(conn.getresponse().read())
            in_a_row = in_a_row + 1 if info["ready"] else 0
            time.sleep(0.05 if info["ready"] else 0.2)
        ready = time.perf_counter() - start
        precomputed = None
        while args.precompute:  # until the asked method (or every method) has its lists
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request("GET", "/api/methods")
            info = json.loads(conn.getresponse().read())
            lists = {m["method"]: m["precomputed"] for m in info["methods"]}
            wanted = [args.method] if args.method else [info["defaults"]["similar"],
                                                        info["defaults"]["recommend"]]
            done = all(len(lists[m]) >= (2 if m in searchable(info) else 1) for m in wanted)
            in_a_row = in_a_row + 1 if done else 0
            if in_a_row >= 8 * args.workers:
                precomputed = time.perf_counter() - start
                break
            time.sleep(0.05 if done else 0.5)
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
        rows = [{"client": "", "query": "start-up (to the first answer)", "clients": 1,
                 "requests": 1,
                 "errors": 0, **empty, "max ms": round(startup * 1e3, 1)},
                {"client": "", "query": "every method loaded (background)", "clients": "",
                 "requests": "",
                 "errors": "", **empty, "max ms": round(ready * 1e3, 1)}]
        if precomputed is not None:
            rows.append({"client": "", "query": "answers precomputed (background)",
                         "clients": "",
                         "requests": "", "errors": "", **empty,
                         "max ms": round(precomputed * 1e3, 1)})
        for kind, paths in kinds.items():
            for clients in (int(c) for c in args.clients.split(",")):
                measured = load(port, paths, clients)
                rows.append({"client": "python", "query": kind, "clients": clients,
                             **measured})
                if args.client == "wrk":  # as long as the Python clients took, or longer
                    seconds = measured["requests"] / max(float(measured["req/s"]), 1e-9)
                    rows.append({"client": "wrk", "query": kind, "clients": clients,
                                 **load_wrk(port, paths, clients,
                                            max(seconds, args.wrk_seconds))})
        print_table(rows, f"embedlens serve {args.run} ({len(train.items):,} movies, "
                          f"{len(train.users):,} users; similar-movie search: {searches})")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
