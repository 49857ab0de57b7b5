"""EGES: graph embeddings with side information (Wang et al., KDD 2018).

Each movie is the weighted sum of its own id embedding and one embedding per side-information
field: genres and tags (lists, mean-pooled) and a release-year bucket. The weights
are softmax-normalised, per item (the paper's ``a_v^j``) or one per field
(``weights="global"``, the tutorial's). Training is skip-gram with negative sampling over
walks on the sequence graph: (centre, context) pairs are cut from the walk matrix with array
slicing, negatives drawn from unigram^0.75 in whole batches.

A movie without interactions gets a vector from its side information alone (the id field
left out, the remaining fields weighted by their average learned weights): ``coldstart``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import polars as pl

from embedlens.core.embeddings import Embeddings
from embedlens.core.errors import DataError
from embedlens.core.files import read_json_object, write_json
from embedlens.core.interactions import InteractionMatrix
from embedlens.core.params import param
from embedlens.data.dataset import Dataset, top_tags
from embedlens.kernels.graphs import sequence_graph
from embedlens.kernels.skipgram import window_pairs
from embedlens.kernels.walks import random_walks
from embedlens.methods.base import (
    EmbeddingParams,
    device_param,
    item_metadata,
    seed_param,
    similarity_param,
)
from embedlens.methods.training import (
    TorchModel,
    load_network,
    negative_sampler,
    network_arrays,
    padded_slots,
    save_network,
    shared_pool,
    sparse_gradients,
)

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


def skipgram_pairs(walks: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """All (centre, context) pairs within ``window`` of each other in the walks, both ways:
    :func:`~embedlens.kernels.skipgram.window_pairs`, each distance's block followed by its
    reverse."""
    first, second, offset = window_pairs(walks, window)
    centres, contexts = [], []
    for d in np.unique(offset):
        block = offset == d
        centres += [first[block], second[block]]
        contexts += [second[block], first[block]]
    if not centres:
        return first, second
    return np.concatenate(centres), np.concatenate(contexts)


@dataclass(frozen=True)
class EGESParams(EmbeddingParams):
    owner: ClassVar[str] = "eges"
    similarity: str = similarity_param("cosine")
    dim: int = param(64, "vector dimension", ge=1, log=True, tune=(16, 128))
    weights: str = param("item", "field weights: one softmax per item (the paper's) or one "
                         "for all items", choices=("item", "global"), tune=True)
    side_info: bool = param(True, "use genres, tags and year (False: DeepWalk-style SGNS)",
                            tune=True)
    num_walks: int = param(10, "walks started from every movie", ge=1)
    walk_length: int = param(20, "movies per walk", ge=2)
    window: int = param(3, "skip-gram window", ge=1, tune=(1, 5))
    negatives: int = param(5, "negative samples per pair", ge=1, tune=(2, 10))
    epochs: int = param(3, "passes over the skip-gram pairs", ge=1, tune=(1, 5))
    batch_size: int = param(4096, "pairs per mini-batch", ge=1)
    lr: float = param(0.01, "Adam learning rate", gt=0, log=True, tune=(1e-3, 5e-2))
    year_bucket: int = param(5, "years per release-year bucket", ge=1)
    seed: int = seed_param()
    device: str = device_param()


class EGESModel(TorchModel):
    """EGES item embeddings (users: mean of their items) with cold-start vectors."""

    name = "eges"
    Params = EGESParams

    def fit_torch(self, train: InteractionMatrix, dataset: Dataset | None,
                  device: Any) -> Self:
        import torch

        from embedlens.methods.eges.net import EGESNet
        from embedlens.methods.row_adam import RowAdam

        p = self.p
        g = sequence_graph(train)
        walks = random_walks(g, p.num_walks, p.walk_length, weighted=False, seed=p.seed)
        centre, context = skipgram_pairs(walks, p.window)
        n = g.n_nodes
        freq = np.bincount(walks[walks >= 0], minlength=n).astype(np.float64)
        draw_negatives = negative_sampler(freq**0.75, n, device)  # unigram^0.75

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
        # a large catalogue (a batch's per-pair negatives touch under half of it) gets
        # negatives shared by the batch and sparse gradients: the same expected loss,
        # touching batch + pool rows instead of batch x (1 + negatives)
        shared = sparse_gradients(n, p.batch_size * (1 + p.negatives))
        net = EGESNet(n, p.dim, {f: len(self.vocab[f]) for f in slots}, slots,
                      per_item=p.weights == "item",
                      sparse=(sparse_gradients(n, p.batch_size), shared)).to(device)
        opt = RowAdam(net.parameters(), lr=p.lr)
        c_t = torch.as_tensor(centre, dtype=torch.long, device=device)
        x_t = torch.as_tensor(context, dtype=torch.long, device=device)
        k = p.negatives

        every_item = torch.arange(n, device=device)
        logsigmoid = torch.nn.functional.logsigmoid

        def batch_loss(idx):
            # a batch names most movies many times: pool each movie's fields once and index
            h = net.embed(every_item)[c_t[idx]] if idx.numel() > n else net.embed(c_t[idx])
            pos = (h * net.context(x_t[idx])).sum(-1)
            if shared:  # one pool of negatives for the batch, weighted to k per pair
                pool = shared_pool(idx.numel(), k)
                neg = h @ net.context(draw_negatives(pool)).T
                return -(logsigmoid(pos).mean() + k / pool * logsigmoid(-neg).sum(-1).mean())
            neg_ids = draw_negatives(idx.numel() * k)
            neg = (h[:, None, :] * net.context(neg_ids).view(idx.numel(), k, -1)).sum(-1)
            return -(logsigmoid(pos).mean() + logsigmoid(-neg).sum(-1).mean())

        # skip-gram has no held-out signal to stop on: every epoch runs
        self.history = self.train_loop(net, opt, device, c_t.numel(), batch_loss, p.epochs,
                                  p.batch_size, "eges")
        self._net = copy.deepcopy(net).cpu().eval()
        vectors = self._net.export()
        self.item_embeddings = Embeddings(g.ids, vectors, "item", item_metadata(dataset),
                                          counts=freq.astype(np.int64))
        return self

    def field_weights(self) -> dict[str, float]:
        """The average softmax weight of each field (id and side information)."""
        return self._net.field_weights()

    def coldstart(self, genres: list[str] | None = None, tags: list[str] | None = None,
                  year: int | None = None, title: str | None = None) -> np.ndarray:
        """A vector for an unseen movie from its side information alone (genres, tags,
        year; EGES has no field for the title)."""
        if not any(self.vocab[f] for f in FIELDS):
            raise DataError("This EGES model was trained without side information.")
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
        save_network(directory / NET_FILE, self._net)
        write_json(directory / "eges_vocab.json", self.vocab)

    def _load_state(self, directory: Path) -> None:
        from embedlens.methods.eges.net import EGESNet

        super()._load_state(directory)
        self.vocab = read_json_object(directory / "eges_vocab.json", "EGES vocabulary", FIELDS)
        path = directory / NET_FILE
        arrays = network_arrays(path, "EGES network")
        slots = {f: arrays[f"slots_{f}"] for f in FIELDS if f"slots_{f}" in arrays}
        assert self.item_embeddings is not None  # loaded by super()
        try:
            net = EGESNet(len(self.item_embeddings), self.item_embeddings.dim,
                          {f: len(self.vocab[f]) for f in slots}, slots,
                          per_item=self.p.weights == "item")
        except (RuntimeError, TypeError, KeyError, ValueError) as exc:
            raise DataError(f"{path} does not match the run's model ({str(exc)[:120]}).") \
                from None
        self._net = load_network(path, net, arrays)
