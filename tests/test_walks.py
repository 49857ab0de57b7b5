"""Graphs, walks and skip-gram: exact counts, hand-computed weights, walk statistics."""

import itertools
import math

import numba
import numpy as np
import pytest
import scipy.sparse as sp

from conftest import log
from embedlens.core.errors import DataError
from embedlens.core.interactions import InteractionMatrix
from embedlens.kernels.graphs import Graph, pmi_graph, sequence_graph
from embedlens.kernels.skipgram import train_skipgram, walk_sentences
from embedlens.kernels.walks import random_walks


def test_pmi_graph_reproduces_the_tutorial_counts(ml_small):
    g = pmi_graph(InteractionMatrix.from_frame(ml_small.interactions))
    assert (g.n_nodes, g.n_edges) == (1_405, 40_043)
    assert (g.adj != g.adj.T).nnz == 0


def test_pmi_weights_by_hand():
    # users 1 and 2 rate items 10 and 20 with 5; user 3 rates item 10 with 5, item 30 with 3
    train = InteractionMatrix.from_frame(log([
        (1, 10, 5, 1), (1, 20, 5, 2), (2, 10, 5, 3), (2, 20, 5, 4), (3, 10, 5, 5), (3, 30, 3, 6),
    ]))
    g = pmi_graph(train, min_rating=5, min_weight=0)
    d, xy, x, y = 5, 2, 3, 2  # 5 ratings >= 5; pair (10, 20) twice; 10 three times, 20 twice
    expected = (math.log(xy) - math.log(x) - math.log(y) + math.log(d)) * xy
    assert g.ids.tolist() == [10, 20] and g.adj[0, 1] == pytest.approx(expected)
    with pytest.raises(DataError, match="no edges"):
        pmi_graph(train, min_rating=5, min_weight=100)


def test_sequence_graph_links_consecutive_items():
    train = InteractionMatrix.from_frame(log([
        (1, 1, 5, 10), (1, 3, 5, 30), (1, 2, 5, 20), (2, 1, 5, 1), (2, 2, 5, 2),
    ]))
    g = sequence_graph(train, weighted=True)
    # user 1: 1 -> 2 -> 3, user 2: 1 -> 2; so 1-2 twice, 2-3 once
    assert g.adj.toarray().tolist() == [[0, 2, 0], [2, 0, 1], [0, 1, 0]]
    assert sequence_graph(train).adj.toarray().max() == 1


def _graph(dense):
    adj = sp.csr_matrix(np.asarray(dense, dtype=np.float32))
    adj.sort_indices()
    return Graph(np.arange(adj.shape[0]), adj)


RING = _graph(np.roll(np.eye(12), 1, axis=1) + np.roll(np.eye(12), -1, axis=1)
              + np.roll(np.eye(12), 3, axis=1) + np.roll(np.eye(12), -3, axis=1))


def test_walks_follow_edges_and_are_reproducible():
    walks = random_walks(RING, 5, 30, p=0.5, q=2.0, seed=7)
    assert walks.shape == (60, 30)
    dense = RING.adj.toarray()
    assert all(dense[a, b] > 0 for row in walks for a, b in itertools.pairwise(row))
    assert (walks[:12, 0] == np.arange(12)).all()
    assert np.array_equal(walks, random_walks(RING, 5, 30, p=0.5, q=2.0, seed=7))
    assert not np.array_equal(walks, random_walks(RING, 5, 30, p=0.5, q=2.0, seed=8))


def test_walks_do_not_depend_on_thread_count():
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = random_walks(RING, 3, 20, p=0.25, q=4.0, seed=1)
    finally:
        numba.set_num_threads(before)
    assert np.array_equal(one, random_walks(RING, 3, 20, p=0.25, q=4.0, seed=1))


def test_node2vec_second_order_probabilities():
    """Walks that went 0 -> 1: the next step must follow node2vec's law, with weight 1/p back
    to 0, 1 to the neighbours of 1 that also neighbour 0, 1/q to the others."""
    p, q = 0.5, 2.0
    walks = random_walks(RING, 4000, 3, p=p, q=q, seed=3)
    dense = RING.adj.toarray() > 0
    first = walks[(walks[:, 0] == 0) & (walks[:, 1] == 1)]
    nxt = first[:, 2]
    neighbours = np.flatnonzero(dense[1])
    alpha = np.array([1 / p if x == 0 else (1.0 if dense[0, x] else 1 / q) for x in neighbours])
    expected = alpha / alpha.sum()
    observed = np.array([(nxt == x).mean() for x in neighbours])
    assert first.shape[0] > 500
    assert np.abs(observed - expected).max() < 0.05


def test_weighted_walks_follow_weights():
    g = _graph([[0, 1, 9], [1, 0, 0], [9, 0, 0]])
    walks = random_walks(g, 3000, 2, weighted=True, seed=0)
    from_zero = walks[walks[:, 0] == 0, 1]
    assert (from_zero == 2).mean() == pytest.approx(0.9, abs=0.03)
    uniform = random_walks(g, 3000, 2, weighted=False, seed=0)
    assert (uniform[uniform[:, 0] == 0, 1] == 2).mean() == pytest.approx(0.5, abs=0.04)


def test_stuck_walks_are_padded():
    g = Graph(np.arange(3), sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 0], [0, 0, 0]], np.float32)))
    walks = random_walks(g, 1, 4)
    assert walks[2].tolist() == [2, -1, -1, -1]
    assert walk_sentences(walks)[2] == [2]
    with pytest.raises(DataError, match="p > 0"):
        random_walks(g, 1, 4, p=0)


def test_skipgram_separates_two_communities():
    block = np.zeros((40, 40))
    block[:20, :20] = block[20:, 20:] = 1
    np.fill_diagonal(block, 0)
    g = _graph(block)
    vectors, found = train_skipgram(random_walks(g, 10, 20, seed=0), 40, dim=16, epochs=5)
    assert found.all()
    v = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    sim = v @ v.T
    assert sim[:20, :20].mean() > sim[:20, 20:].mean() + 0.3


def test_pmi_svd_separates_two_communities_and_is_deterministic():
    from embedlens.kernels.skipgram import walk_pmi_svd

    block = np.zeros((40, 40))
    block[:20, :20] = block[20:, 20:] = 1
    np.fill_diagonal(block, 0)
    block[0, 20] = block[20, 0] = 1  # one bridge, so walks cross now and then
    walks = random_walks(_graph(block), 10, 20, seed=0)
    vectors, found = walk_pmi_svd(walks, 40, dim=8, window=3, seed=0)
    assert found.all() and vectors.shape == (40, 8)
    v = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    sim = v @ v.T
    assert sim[:20, :20].mean() > sim[:20, 20:].mean() + 0.3
    again, _ = walk_pmi_svd(walks, 40, dim=8, window=3, seed=0)
    assert np.array_equal(vectors, again)
    # a dimension above the node count leaves the extra columns zero instead of failing
    wide, _ = walk_pmi_svd(walks, 40, dim=64, window=3, seed=0)
    assert wide.shape == (40, 64) and not wide[:, 39:].any()


@pytest.mark.parametrize("method", ["node2vec", "deepwalk"])
def test_unknown_walk_embedding_is_a_clear_error(method):
    from embedlens.methods.registry import get_method

    # refused when the model is built, before any walk
    with pytest.raises(DataError, match=f"{method} parameter embedding must be one of "
                       "'pmi-svd', 'sgns', got 'glove'"):
        get_method(method)(embedding="glove")
