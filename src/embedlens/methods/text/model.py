"""Text embeddings of movies: "Title (Year). Genres: ... . Tags: ..." through a sentence
encoder (:mod:`embedlens.methods.text.encoders`); users are the rating-weighted mean of their
movies."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import polars as pl

from embedlens.core.embeddings import Embeddings
from embedlens.core.errors import DataError
from embedlens.core.interactions import InteractionMatrix
from embedlens.core.params import param
from embedlens.core.progress import note
from embedlens.data.dataset import Dataset, top_tags
from embedlens.methods.base import (
    EmbeddingModel,
    EmbeddingParams,
    aggregation_param,
    device_param,
    item_metadata,
    similarity_param,
)
from embedlens.methods.text.encoders import (
    AUTO_ENCODER,
    DEFAULT_ENCODER,
    STATIC_ABOVE,
    STATIC_ENCODER,
    Encoder,
    cached_encode,
    encoder_identity,
    load_encoder,
    resolve_encoder,
)


def movie_texts(items: pl.DataFrame, tags: pl.DataFrame | None, max_tags: int = 10) -> list[str]:
    """One text per row of ``items``: title (with year), genres, and its most used tags."""
    table = items.select("item_id", "title", "year", "genres")
    if tags is not None and tags.height:
        table = table.join(top_tags(tags, max_tags), on="item_id", how="left",
                           maintain_order="left")
    else:
        table = table.with_columns(pl.lit(None, dtype=pl.List(pl.Utf8)).alias("tag"))
    return [movie_text(title, year, genres, tag_list) for title, year, genres, tag_list
            in table.select("title", "year", "genres", "tag").iter_rows()]


def movie_text(title: str, year: int | None, genres: list[str] | None,
               tags: list[str] | None) -> str:
    """"Title (Year). Genres: a, b. Tags: x, y." for one movie (the year only when the title
    does not already carry one)."""
    text = title if year is None or re.search(r"\(\d{4}", title) else f"{title} ({year})"
    text += "."
    if genres:
        text += f" Genres: {', '.join(genres)}."
    if tags:
        text += f" Tags: {', '.join(tags)}."
    return text.strip()


@dataclass(frozen=True)
class TextParams(EmbeddingParams):
    owner: ClassVar[str] = "text"
    aggregation: str = aggregation_param("rating", tune=True)
    similarity: str = similarity_param("cosine")
    encoder: str = param(AUTO_ENCODER, "sentence encoder: auto (MiniLM up to "
                         f"{STATIC_ABOVE:,} movies, static above), {DEFAULT_ENCODER} (MiniLM), "
                         "static (MiniLM's token vectors, fast), or a local "
                         "sentence-transformers model (path or cached name)")
    model2vec_path: str | None = param(None, "a local model2vec static model instead (fast)")
    tags: bool = param(True, "put each movie's most used tags in its text", tune=True)
    max_tags: int = param(10, "most tags per movie", ge=0)
    batch_size: int = param(64, "texts per encoder batch", ge=1)
    cache: bool = param(True, "keep encodings in the on-disk cache")
    device: str = device_param()


class TextModel(EmbeddingModel):
    """Movie vectors from their text; users = rating-weighted mean of their movies."""

    name = "text"
    Params = TextParams
    #: Encoding ran 4-6x slower in a process that had trained torch models first (in
    #: `embedlens run` on 2026-12-01: ML-100k 58 s against 14.5 s alone, ml-latest-small
    #: 321 s against 52.9 s; docs/benchmarks.md; the time goes to the encoder's attention
    #: kernel, the cause is not found), so a run encodes first.
    fit_early = True
    #: Text knows titles, years, genres and tags, not what users do: a run judges it on the
    #: cold-start board, where it places movies nobody has rated (on ML-100k user-time-0.2
    #: it ranked 12th of 13 for warm users, NDCG@10 0.017).
    warm_ranked = False
    #: tests (or callers) may inject an encoder: (its name in the cache, texts -> vectors)
    encoder_override: tuple[str, Encoder] | None = None

    def fit(self, train: InteractionMatrix, dataset: Dataset | None = None) -> Self:
        p = self.p
        if dataset is None or dataset.items is None:
            raise DataError("text embeddings need a movie table (titles, genres).")
        items = dataset.items  # every movie: content needs no interactions (cold start too)
        tags = dataset.tags if p.tags else None
        texts = movie_texts(items, tags, p.max_tags)
        if p.model2vec_path is None and p.encoder == AUTO_ENCODER and \
                self._encoder_name(len(texts)) == STATIC_ENCODER:
            note(f"text: {len(texts):,} movies (over {STATIC_ABOVE:,}), so the static encoder "
                 f"(MiniLM's token vectors); -p encoder={DEFAULT_ENCODER} for MiniLM itself")
        identity, make = self._encoder(len(texts))
        vectors = cached_encode(texts, identity, make, self._cache())
        self.item_embeddings = Embeddings(items["item_id"].to_numpy(), vectors, "item",
                                          item_metadata(dataset))
        return self

    def _encoder_name(self, n_movies: int) -> str:
        """The encoder this model uses for a catalogue of ``n_movies`` (``auto`` resolved)."""
        return resolve_encoder(self.p.encoder, n_movies)

    def _encoder(self, n_movies: int) -> tuple[dict, Callable[[], Encoder]]:
        """The encoder's identity and a function that loads it (only when needed), for a
        catalogue of ``n_movies``: a fitted model passes its own count, so that cold-start
        vectors come from the encoder its movies came from."""
        p = self.p
        if self.encoder_override is not None:
            label, override = self.encoder_override
            return {"kind": "injected", "name": label}, lambda: override
        name = self._encoder_name(n_movies)
        return (encoder_identity(name, p.model2vec_path),
                lambda: load_encoder(name, p.model2vec_path, p.batch_size, p.device,
                                     self._cache()))

    def _cache(self) -> Path | None:
        from embedlens.data.download import cache_dir

        return cache_dir() / "text-embeddings" if self.p.cache else None

    def coldstart(self, genres: list[str] | None = None, tags: list[str] | None = None,
                  year: int | None = None, title: str | None = None) -> np.ndarray:
        """A vector for a movie nobody has rated, from its text: title (when given), year,
        genres and tags, encoded like every movie's."""
        vectors, placed = self.coldstart_many([{"genres": genres, "tags": tags, "year": year,
                                                "title": title}])
        if not placed[0]:
            raise DataError("A text vector needs a title, genres, tags or a year.")
        return vectors[0]

    def coldstart_many(self, movies: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`coldstart` for many movies (dicts of its keyword arguments), encoded in
        one batch; and whether each could be placed (a movie with no title, genres, tags
        or year gets zeros)."""
        ok = np.array([bool(m.get("title") or m.get("genres") or m.get("tags")
                            or m.get("year")) for m in movies], dtype=bool)
        texts = [movie_text(m.get("title") or "A movie", m.get("year"), m.get("genres"),
                            (m.get("tags") or [])[: self.p.max_tags])
                 for m, placed in zip(movies, ok, strict=True) if placed]
        identity, make = self._encoder(len(self.item_vectors()))
        vectors = np.zeros((len(movies), self.item_vectors().dim), dtype=np.float32)
        if texts:
            vectors[ok] = cached_encode(texts, identity, make, self._cache())
        return vectors, ok
