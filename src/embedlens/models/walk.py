"""Walk-based item embeddings: node2vec on the PMI co-rating graph, DeepWalk on users'
rating sequences; both embed the walks (``embedding="pmi-svd"``, the default, or gensim's
skip-gram ``"sgns"``) and aggregate users from items."""

from __future__ import annotations

from typing import Any, ClassVar, Self

from embedlens.data.dataset import Dataset
from embedlens.embeddings import Embeddings
from embedlens.errors import DataError
from embedlens.graphs import Graph, pmi_graph, sequence_graph
from embedlens.models.base import EmbeddingModel, item_metadata
from embedlens.prep.encoding import InteractionMatrix
from embedlens.skipgram import train_skipgram, walk_pmi_svd
from embedlens.walks import random_walks

# epochs, negative, sample and workers apply to embedding="sgns" only. window=1 (pairs of
# consecutive walk nodes) ranked best for both methods on all three protocols of ML-100k and
# ml-latest-small; wider windows mix towards the walks' stationary distribution and their
# PMI gets noisier (docs/benchmarks.md, "Walk window").
_SKIPGRAM = {
    "dim": 64, "window": 1, "embedding": "pmi-svd", "negative": 5, "epochs": 20,
    "num_walks": 10, "walk_length": 40, "seed": 42, "workers": 1, "sample": 1e-3,
}


class WalkModel(EmbeddingModel):
    """Shared fit: graph -> walks -> skip-gram -> item embeddings (items off the graph get
    none, so they are never recommended)."""

    walk_p_q: ClassVar[bool] = True

    def graph(self, train: InteractionMatrix) -> Graph:
        raise NotImplementedError

    def fit(self, train: InteractionMatrix, dataset: Dataset | None = None) -> Self:
        p = self.params
        if p["embedding"] not in ("pmi-svd", "sgns"):  # before the walks, not after
            raise DataError(f"{self.name} embedding must be 'pmi-svd' or 'sgns', "
                            f"got {p['embedding']!r}.")
        g = self.graph(train)
        walks = random_walks(
            g, int(p["num_walks"]), int(p["walk_length"]), float(p.get("p", 1.0)),
            float(p.get("q", 1.0)), weighted=bool(p["weighted"]), seed=int(p["seed"]),
        )
        if p["embedding"] == "pmi-svd":
            vectors, found = walk_pmi_svd(walks, g.n_nodes, int(p["dim"]), int(p["window"]),
                                          int(p["seed"]))
        else:
            vectors, found = train_skipgram(
                walks, g.n_nodes, int(p["dim"]), int(p["window"]), int(p["negative"]),
                int(p["epochs"]), int(p["seed"]), int(p["workers"]), self.history,
                float(p["sample"]),
            )
        self.item_embeddings = Embeddings(
            g.ids[found], vectors[found], "item", item_metadata(dataset),
            counts=g.degrees()[found],
        )
        return self


class Node2VecModel(WalkModel):
    """node2vec (the Keras tutorial's setting): PMI-weighted co-rating graph of ratings >=
    ``min_rating``, weighted biased walks with return ``p`` and in-out ``q``."""

    name = "node2vec"
    defaults: ClassVar[dict[str, Any]] = {
        **EmbeddingModel.defaults, "similarity": "cosine", **_SKIPGRAM,
        "min_rating": 5.0, "min_weight": 10.0, "p": 1.0, "q": 1.0, "weighted": True,
    }

    def graph(self, train: InteractionMatrix) -> Graph:
        return pmi_graph(train, float(self.params["min_rating"]), float(self.params["min_weight"]))


class DeepWalkModel(WalkModel):
    """DeepWalk on the sequence graph (EGES tutorial): consecutive movies of each user's
    history linked; uniform walks (``weighted=True`` walks by transition counts)."""

    name = "deepwalk"
    defaults: ClassVar[dict[str, Any]] = {
        **EmbeddingModel.defaults, "similarity": "cosine", **_SKIPGRAM, "weighted": False,
    }

    def graph(self, train: InteractionMatrix) -> Graph:
        return sequence_graph(train, weighted=bool(self.params["weighted"]))
