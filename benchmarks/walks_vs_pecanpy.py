"""Walk generation vs PecanPy 2.0.9, and end-to-end node2vec vs pycleora 3.2.1's Node2Vec.

Usage (needs ``pip install pecanpy==2.0.9 pycleora==3.2.1`` beside embedlens):
    python benchmarks/walks_vs_pecanpy.py [--nodes 20000] [--edges 5000000] [--length 80]

1. Walks: one random weighted undirected graph (``--nodes`` nodes, ``--edges`` directed
   edge entries, weights uniform in [0.1, 1)), node2vec p=0.5 q=2. PecanPy's SparseOTF reads
   the edge list and runs ``simulate_walks``; embedlens runs its numba rejection sampler on
   the same CSR graph. Both are warmed up (JIT) before timing; steps/s = nodes x walks x length
   over wall time.
2. End to end on the node2vec tutorial's graph (ml-latest-small PMI co-rating graph, 1,405
   nodes): walks + embedding, embedlens (numba walks + gensim skip-gram) vs pycleora's
   ``embed_node2vec`` (Python walks + PMI/SVD), same walks per node, length, window, dim;
   quality as NDCG@10 on the random-0.2 protocol (users = mean of their items, cosine).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from _common import ML_DIR, print_table
from embedlens.core.progress import set_quiet
from embedlens.kernels.graphs import Graph
from embedlens.kernels.walks import random_walks


def random_graph(n: int, n_entries: int, seed: int = 0) -> Graph:
    rng = np.random.default_rng(seed)
    half = n_entries // 2
    rows, cols = rng.integers(0, n, half), rng.integers(0, n, half)
    keep = rows != cols
    rows, cols = rows[keep], cols[keep]
    w = rng.uniform(0.1, 1.0, rows.size).astype(np.float32)
    adj = sp.csr_matrix((np.r_[w, w], (np.r_[rows, cols], np.r_[cols, rows])), shape=(n, n))
    adj.sum_duplicates()
    adj.sort_indices()
    return Graph(np.arange(n), adj)


def bench_walks(n: int, entries: int, length: int) -> list[dict]:
    from pecanpy import pecanpy

    g = random_graph(n, entries)
    coo = sp.triu(g.adj).tocoo()
    path = Path(tempfile.mkdtemp()) / "graph.edg"
    np.savetxt(path, np.c_[coo.row, coo.col, coo.data], fmt=["%d", "%d", "%.6f"], delimiter="\t")
    pec = pecanpy.SparseOTF(p=0.5, q=2.0, workers=2, verbose=False, random_state=0)
    pec.read_edg(str(path), weighted=True, directed=False)
    pec.simulate_walks(num_walks=1, walk_length=3)  # JIT warm-up
    start = time.perf_counter()
    pec.simulate_walks(num_walks=1, walk_length=length)
    t_pec = time.perf_counter() - start
    random_walks(g, 1, 3, p=0.5, q=2.0)  # JIT warm-up
    num_walks = 10
    start = time.perf_counter()
    random_walks(g, num_walks, length, p=0.5, q=2.0)
    t_ours = time.perf_counter() - start
    steps_pec, steps_ours = n * length / t_pec, n * num_walks * length / t_ours
    return [
        {"walker": "PecanPy 2.0.9 SparseOTF", "nodes": n, "edge entries": g.adj.nnz,
         "walks/node": 1, "length": length, "wall s": t_pec, "steps/s": f"{steps_pec:,.0f}",
         "vs PecanPy": 1.0},
        {"walker": "embedlens (numba rejection)", "nodes": n, "edge entries": g.adj.nnz,
         "walks/node": num_walks, "length": length, "wall s": t_ours,
         "steps/s": f"{steps_ours:,.0f}", "vs PecanPy": steps_ours / steps_pec},
    ]


def bench_end_to_end(num_walks: int, length: int, dim: int) -> list[dict]:
    import pycleora
    from pycleora.algorithms import embed_node2vec

    from embedlens.core.embeddings import Embeddings
    from embedlens.data import load_movielens
    from embedlens.evaluation.evaluate import evaluate_model
    from embedlens.evaluation.splits import EvalSplit
    from embedlens.kernels.graphs import pmi_graph
    from embedlens.kernels.skipgram import train_skipgram, walk_pmi_svd
    from embedlens.methods.base import ImportedModel

    data = EvalSplit.prepare(load_movielens("ml-latest-small", data_dir=ML_DIR), "random-0.2")
    g = pmi_graph(data.train)
    rows = []
    start = time.perf_counter()
    walks = random_walks(g, num_walks, length, p=1.0, q=1.0, seed=0)
    t_walks = time.perf_counter() - start
    start = time.perf_counter()
    vectors, found = train_skipgram(walks, g.n_nodes, dim=dim, window=5, epochs=20, seed=0,
                                    sample=1e-3)
    t_sgns = t_walks + time.perf_counter() - start
    sgns = Embeddings(g.ids[found], vectors[found])
    start = time.perf_counter()
    vectors, found = walk_pmi_svd(walks, g.n_nodes, dim=dim, window=5, seed=0)
    t_svd = t_walks + time.perf_counter() - start
    svd = Embeddings(g.ids[found], vectors[found])
    coo = sp.triu(g.adj).tocoo()
    lines = [f"{g.ids[a]} {g.ids[b]}" for a, b in zip(coo.row, coo.col, strict=True)]
    graph = pycleora.SparseMatrix.from_iterator(iter(lines), columns="complex::reflexive::movie")
    start = time.perf_counter()
    theirs = embed_node2vec(graph, feature_dim=dim, num_walks=num_walks, walk_length=length,
                            window_size=5, seed=0)
    t_theirs = time.perf_counter() - start
    their_ids = np.array([int(e) for e in graph.entity_ids])
    for name, emb, wall in (("embedlens node2vec (walks + gensim SGNS)", sgns, t_sgns),
                            ("embedlens node2vec (walks + PMI-SVD)", svd, t_svd),
                            ("pycleora embed_node2vec (walks + PMI-SVD)",
                             Embeddings(their_ids, theirs), t_theirs)):
        r = evaluate_model(ImportedModel.from_embeddings(emb, similarity="cosine"), data)
        rows.append({"implementation": name, "nodes": g.n_nodes, "edges": g.n_edges,
                     "walks/node": num_walks, "length": length, "dim": dim, "wall s": wall,
                     "NDCG@10": f"{r['ndcg@10']:.4f} ± {r['ndcg@10_ci95']:.4f}",
                     "HR@10": f"{r['hitrate@10']:.4f}"})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--nodes", type=int, default=20_000)
    ap.add_argument("--edges", type=int, default=5_000_000)
    ap.add_argument("--length", type=int, default=80)
    ap.add_argument("--e2e-walks", type=int, default=10)
    ap.add_argument("--e2e-length", type=int, default=40)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--e2e-only", action="store_true", help="skip the PecanPy walk race")
    args = ap.parse_args()
    set_quiet(True)
    if not args.e2e_only:
        print_table(bench_walks(args.nodes, args.edges, args.length),
                    "node2vec walks (p=0.5, q=2), weighted graph")
    print_table(bench_end_to_end(args.e2e_walks, args.e2e_length, args.dim),
                "End-to-end node2vec on the ml-latest-small PMI graph")


if __name__ == "__main__":
    main()
