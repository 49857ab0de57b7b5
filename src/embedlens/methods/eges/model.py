"""EGES: graph embeddings with side information (Wang et al., KDD 2018).

Each movie is the weighted sum of its own id embedding and one embedding per side-information
field: genres and tags (lists, mean-pooled) and a release-year bucket. The weights
are softmax-normalised, per item (the paper's ``a_v^j``) or one per field
(``weights="global"``, the tutorial's). Training is skip-gram with negative sampling over
walks on the sequence graph, by SGD with word2vec's decaying step
(:mod:`embedlens.methods.eges.sgd`), negatives drawn from unigram^0.75.

A movie without interactions gets a vector from its side information alone (the id field
left out, the remaining fields weighted by their average learned weights): ``coldstart``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import polars as pl

from embedlens.core.distributed import all_reduce_sum, share
from embedlens.core.embeddings import Embeddings
from embedlens.core.errors import DataError
from embedlens.core.files import load_arrays, read_json_object, save_arrays, write_json
from embedlens.core.interactions import InteractionMatrix
from embedlens.core.params import param
from embedlens.data.dataset import Dataset, top_tags
from embedlens.kernels.graphs import sequence_graph
from embedlens.kernels.walks import random_walks
from embedlens.methods.base import (
    EmbeddingModel,
    EmbeddingParams,
    aggregation_param,
    item_metadata,
    seed_param,
    similarity_param,
)
from embedlens.methods.training import padded_slots

FIELDS = ("genres", "tags", "year")
NET_FILE = "eges_net.npz"


def side_information(items: pl.DataFrame, tags: pl.DataFrame | None, year_bucket: int = 5,
                     max_tags: int = 20) -> pl.DataFrame:
    """item_id, genres, tags (lower-cased, stripped, most used first), year bucket label."""
    table = items.select("item_id", "genres", "year")
    if tags is not None and tags.height:
        table = table.join(top_tags(tags, max_tags).rename({"tag": "tags"}), on="item_id",
                           how="left", maintain_order="left")
    else:
        table = table.with_columns(pl.lit(None, dtype=pl.List(pl.Utf8)).alias("tags"))
    bucket = (pl.col("year") // year_bucket * year_bucket).cast(pl.Utf8)
    return table.select(
        "item_id",
        pl.col("genres").fill_null([]),
        pl.col("tags").fill_null([]),
        pl.when(pl.col("year").is_null()).then(pl.lit([], dtype=pl.List(pl.Utf8)))
        .otherwise(pl.concat_list(bucket)).alias("year"),
    )


@dataclass(frozen=True)
class EGESParams(EmbeddingParams):
    owner: ClassVar[str] = "eges"
    retired: ClassVar[dict[str, str]] = {
        "batch_size": "EGES trains by SGD, one walk position at a time, since 2026-12-01.",
        "device": "EGES trains in a numba kernel on the CPU since 2026-12-01.",
    }
    similarity: str = similarity_param("dot")
    aggregation: str = aggregation_param(tune=True)  # users derived from their movies
    dim: int = param(64, "vector dimension", ge=1, log=True, tune=(16, 128))
    weights: str = param("item", "field weights: one softmax per item (the paper's) or one "
                         "for all items", choices=("item", "global"), tune=True)
    side_info: bool = param(True, "use genres, tags and year (False: DeepWalk-style SGNS)",
                            tune=True)
    num_walks: int = param(10, "walks started from every movie", ge=1)
    walk_length: int = param(20, "movies per walk", ge=2)
    window: int = param(3, "skip-gram window", ge=1, tune=(1, 5))
    negatives: int = param(5, "negative samples per pair", ge=1, tune=(2, 10))
    epochs: int = param(5, "passes over the walks", ge=1, tune=(1, 10))
    lr: float = param(0.025, "SGD step at the start, decaying linearly towards 0 (never "
                      "below 1e-4 of it; word2vec's schedule)", gt=0, log=True, tune=(5e-3, 1e-1))
    year_bucket: int = param(5, "years per release-year bucket", ge=1)
    seed: int = seed_param()
    #: What the cold-start board fits with, whatever the run chose: an EGES without side
    #: information has nothing to place an unseen movie from (a tuned preset may switch
    #: it off for warm ranking).
    coldstart_overrides: ClassVar[dict[str, Any]] = {"side_info": True}


class EGESModel(EmbeddingModel):
    """EGES item embeddings (users: the aggregation of their movies) with cold-start
    vectors. Users are ranked against each movie's context vector, as skip-gram scores a
    (centre, context) pair: an EGES vector against other EGES vectors measures how alike
    two movies are, not how likely one is to follow the other (NDCG@10 0.10 that way
    against 0.25 on ML-100k random-0.2 at the defaults; popularity 0.225). Cold-start
    vectors have no context vector: they are judged, and exported, as EGES vectors."""

    name = "eges"
    Params = EGESParams
    fits_on_one_core = True  # the SGD over the walks is sequential (the same seed, the same tables)

    def fit(self, train: InteractionMatrix, dataset: Dataset | None = None) -> Self:
        from embedlens.methods.eges.net import EGESTables
        from embedlens.methods.eges.sgd import train_eges

        p = self.p
        g = sequence_graph(train)
        # under torchrun each rank walks (and trains on) its share of the starts; the
        # frequencies that weigh the negatives are every rank's
        walks = random_walks(g, p.num_walks, p.walk_length, weighted=False, seed=p.seed,
                             part=share(g.n_nodes * p.num_walks, kind="walks"))
        n = g.n_nodes
        freq = all_reduce_sum(np.bincount(walks[walks >= 0], minlength=n).astype(np.float64))

        self.vocab: dict[str, dict[str, int]] = {f: {} for f in FIELDS}
        slots = {}
        if p.side_info:
            if dataset is None or dataset.items is None:
                raise DataError("eges side information needs the movie table.")
            side = pl.DataFrame({"item_id": g.ids}).join(
                side_information(dataset.items, dataset.tags, p.year_bucket),
                on="item_id", how="left", maintain_order="left",
            )
            for f in FIELDS:
                values = side[f].fill_null([]).to_list()
                self.vocab[f] = {v: k for k, v in enumerate(sorted({x for r in values for x in r}))}
                if self.vocab[f]:
                    slots[f] = padded_slots(values, self.vocab[f])
        tables = EGESTables.initial(n, p.dim, {f: len(self.vocab[f]) for f in slots}, slots,
                                    per_item=p.weights == "item", seed=p.seed)
        # skip-gram has no held-out signal to stop on: every epoch runs
        self.history = train_eges(tables, walks, p.window, p.negatives, p.epochs, p.lr, freq,
                                  p.seed)
        self._net = tables
        self.item_embeddings = Embeddings(g.ids, tables.export(), "item",
                                          item_metadata(dataset), counts=freq.astype(np.int64))
        return self

    def ranked_vectors(self) -> Embeddings:
        """Users (the aggregation of their movies' EGES vectors) are scored against every
        movie's context vector (mean-centred too when ``center``)."""
        contexts = Embeddings(self._items_raw().ids, self._net.ctx, "item")
        return contexts.centered() if self.p.center else contexts

    def field_weights(self) -> dict[str, float]:
        """The average softmax weight of each field (id and side information)."""
        return self._net.field_weights()

    @property
    def places_unseen(self) -> bool:
        """Whether :meth:`coldstart` can place a movie (False: trained without side
        information)."""
        return any(self.vocab[f] for f in FIELDS)

    def coldstart(self, genres: list[str] | None = None, tags: list[str] | None = None,
                  year: int | None = None, title: str | None = None) -> np.ndarray:
        """A vector for an unseen movie from its side information alone (genres, tags,
        year; EGES has no field for the title)."""
        if not self.places_unseen:
            raise DataError("This EGES model was trained without side information "
                            "(side_info=false), so it cannot place an unseen movie; train "
                            "one with side_info=true.")
        values = {
            "genres": genres or [],
            "tags": [t.strip().lower() for t in (tags or []) if t.strip()],
            "year": [] if year is None else
            [str(year // self.p.year_bucket * self.p.year_bucket)],
        }
        known = {f: [v for v in values[f] if v in self.vocab[f]] for f in FIELDS}
        if not any(known.values()):
            given = ", ".join(f"{f}={values[f]}" for f in FIELDS if values[f])
            raise DataError(f"None of the side information is known to the model ({given}).")
        ids = {f: [self.vocab[f][v] for v in known[f]] for f in FIELDS}
        return self._net.coldstart(ids)

    def _save_state(self, directory: Path) -> None:
        super()._save_state(directory)
        save_arrays(directory / NET_FILE, **self._net.arrays())
        write_json(directory / "eges_vocab.json", self.vocab)

    def _load_state(self, directory: Path) -> None:
        from embedlens.methods.eges.net import EGESTables

        super()._load_state(directory)
        self.vocab = read_json_object(directory / "eges_vocab.json", "EGES vocabulary", FIELDS)
        path = directory / NET_FILE
        arrays = load_arrays(path, (), "EGES network")
        sizes = {f: len(self.vocab[f]) for f in FIELDS if f"slots_{f}" in arrays}
        assert self.item_embeddings is not None  # loaded by super()
        self._net = EGESTables.from_arrays(arrays, sizes, len(self.item_embeddings),
                                           self.item_embeddings.dim,
                                           self.p.weights == "item", path)
