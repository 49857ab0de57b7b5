"""Walk-based item embeddings: node2vec on the PMI co-rating graph, DeepWalk on users'
rating sequences; both embed the walks (``embedding="pmi-svd"``, the default, or gensim's
skip-gram ``"sgns"``) and aggregate users from items."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

from embedlens.core.distributed import all_gather_rows, share
from embedlens.core.embeddings import Embeddings
from embedlens.core.interactions import InteractionMatrix
from embedlens.core.params import param
from embedlens.data.dataset import Dataset
from embedlens.kernels.graphs import Graph, pmi_graph, sequence_graph
from embedlens.kernels.skipgram import train_skipgram, walk_pmi_svd
from embedlens.kernels.walks import random_walks
from embedlens.methods.base import (
    EmbeddingModel,
    EmbeddingParams,
    aggregation_param,
    item_metadata,
    seed_param,
    similarity_param,
)


@dataclass(frozen=True)
class WalkParams(EmbeddingParams):
    """What both walk methods share. window=1 (pairs of consecutive walk nodes) ranked best
    for both on all three protocols of ML-100k and ml-latest-small; wider windows mix towards
    the walks' stationary distribution and their PMI gets noisier (docs/benchmarks.md, "Walk
    window"). negative, epochs, sample and workers apply to embedding="sgns" only."""

    similarity: str = similarity_param("cosine")
    aggregation: str = aggregation_param(tune=True)  # users derived from their movies
    dim: int = param(64, "vector dimension", ge=1, log=True, tune=(16, 256))
    window: int = param(1, "walk positions apart that count as a pair", ge=1, tune=(1, 3))
    embedding: str = param("pmi-svd", "how walks become vectors: SVD of their positive PMI "
                           "matrix, or gensim skip-gram", choices=("pmi-svd", "sgns"))
    negative: int = param(5, "negative samples per pair (sgns)", ge=1)
    epochs: int = param(20, "passes over the walks (sgns)", ge=1)
    num_walks: int = param(10, "walks started from every node", ge=1, tune=(5, 20))
    walk_length: int = param(40, "nodes per walk", ge=2, tune=(10, 80))
    seed: int = seed_param()
    workers: int = param(1, "gensim worker threads (sgns; 1 is deterministic)", ge=1)
    sample: float = param(1e-3, "down-sampling of frequent nodes (sgns)", ge=0)


class WalkModel(EmbeddingModel):
    """Shared fit: graph -> walks -> skip-gram -> item embeddings (items off the graph get
    none, so they are never recommended)."""

    def graph(self, train: InteractionMatrix) -> Graph:
        raise NotImplementedError

    def walk_bias(self) -> tuple[float, float]:
        """node2vec's return ``p`` and in-out ``q`` (1, 1: unbiased walks)."""
        return 1.0, 1.0

    def fit(self, train: InteractionMatrix, dataset: Dataset | None = None) -> Self:
        p = self.p
        g = self.graph(train)
        bias_p, bias_q = self.walk_bias()
        # under torchrun each rank walks its share of the starts; PMI-SVD sends each
        # pair count to the rank that owns its row and factorises the rows together,
        # skip-gram gathers the walks themselves
        walks = random_walks(g, p.num_walks, p.walk_length, bias_p, bias_q,
                             weighted=p.weighted, seed=p.seed,
                             part=share(g.n_nodes * p.num_walks, kind="walks"))
        if p.embedding == "pmi-svd":
            vectors, found = walk_pmi_svd(walks, g.n_nodes, p.dim, p.window, p.seed)
        else:
            walks = all_gather_rows(walks)
            vectors, found = train_skipgram(
                walks, g.n_nodes, p.dim, p.window, p.negative, p.epochs, p.seed, p.workers,
                self.history, p.sample,
            )
        self.item_embeddings = Embeddings(
            g.ids[found], vectors[found], "item", item_metadata(dataset),
            counts=g.degrees()[found],
        )
        return self


@dataclass(frozen=True)
class Node2VecParams(WalkParams):
    owner: ClassVar[str] = "node2vec"
    min_rating: float = param(5.0, "ratings at least this link two movies")
    min_weight: float = param(10.0, "keep co-rating edges of at least this PMI weight", ge=0)
    p: float = param(1.0, "return parameter of the biased walk", gt=0, log=True)
    q: float = param(1.0, "in-out parameter of the biased walk", gt=0, log=True)
    weighted: bool = param(True, "walk by edge weights")


class Node2VecModel(WalkModel):
    """node2vec (the Keras tutorial's setting): PMI-weighted co-rating graph of ratings >=
    ``min_rating``, weighted biased walks with return ``p`` and in-out ``q``."""

    name = "node2vec"
    Params = Node2VecParams

    def graph(self, train: InteractionMatrix) -> Graph:
        return pmi_graph(train, self.p.min_rating, self.p.min_weight)

    def walk_bias(self) -> tuple[float, float]:
        return self.p.p, self.p.q


@dataclass(frozen=True)
class DeepWalkParams(WalkParams):
    owner: ClassVar[str] = "deepwalk"
    weighted: bool = param(False, "walk by transition counts instead of uniformly")


class DeepWalkModel(WalkModel):
    """DeepWalk on the sequence graph (EGES tutorial): consecutive movies of each user's
    history linked; uniform walks (``weighted=True`` walks by transition counts)."""

    name = "deepwalk"
    Params = DeepWalkParams

    def graph(self, train: InteractionMatrix) -> Graph:
        return sequence_graph(train, weighted=self.p.weighted)
