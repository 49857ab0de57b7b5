"""The embedding container: vectors with their ids, queried like gensim's KeyedVectors."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from embedlens.core.errors import DataError, EmbedlensError, UnknownNameError, unknown_name
from embedlens.core.files import (
    atomic_path,
    load_arrays,
    parquet_metadata,
    read_parquet,
    save_arrays,
)
from embedlens.core.ids import typed_int

_ARTICLES = ("the", "a", "an", "les", "la", "le", "il", "das", "der", "die", "el", "los")


class AmbiguousTitleError(EmbedlensError, KeyError):
    """A title matched several movies; the message lists them."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def normalize_title(title: str) -> str:
    """Lower-case, drop a trailing "(1995)" and move a trailing article to the front, so
    "Matrix, The (1999)", "the matrix" and "The Matrix" all compare equal."""
    t = re.sub(r"\s*\(\d{4}[^()]*\)\s*$", "", title.strip().lower())
    m = re.match(r"^(.*), (\w+)$", t)
    if m and m.group(2) in _ARTICLES:
        t = f"{m.group(2)} {m.group(1)}"
    return re.sub(r"\s+", " ", t)


def _drop_article(form: str) -> str:
    head, _, rest = form.partition(" ")
    return rest if head in _ARTICLES and rest else form


class Embeddings:
    """A set of vectors keyed by ids (movie or user ids), with optional titles and genres.

    ``vectors`` is float32 ``(n, dim)``; ``ids`` are the original ids (ints or strings).
    ``metadata`` (items only) has columns ``item_id, title, genres``.
    ``counts`` (optional) is how often each entity occurred in training (Cleora's column).
    ``source`` (optional) names what made the vectors (a method), for messages such as "not
    embedded by node2vec".
    """

    def __init__(
        self,
        ids: np.ndarray | list,
        vectors: np.ndarray,
        kind: str = "item",
        metadata: pl.DataFrame | None = None,
        counts: np.ndarray | None = None,
        source: str | None = None,
    ) -> None:
        ids = np.asarray(ids)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != ids.shape[0]:
            raise DataError(
                f"Embeddings need one row per id: {ids.shape[0]} ids, vectors {vectors.shape}."
            )
        if np.unique(ids).size != ids.size:
            raise DataError("Embedding ids must be unique.")
        finite = np.isfinite(vectors).all(axis=1)
        if not finite.all():
            raise DataError(
                f"{int((~finite).sum()):,} of {ids.size:,} {kind} vectors hold NaN or infinite "
                f"values (first id: {ids[~finite][0]!r}); the training diverged. Lower the "
                "learning rate or check the input.")
        self.ids = ids
        self.vectors = vectors
        self.kind = kind
        self.counts = None if counts is None else np.asarray(counts, dtype=np.int64)
        self.metadata = metadata
        self.source = source
        order = np.argsort(ids, kind="stable")
        self._sorted_ids, self._order = ids[order], order
        self._titles: dict[str, list[int]] | None = None
        self._rows: dict[Any, int] | None = None  # id -> row, built on the first few-key lookup

    # -- basic access ---------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.ids.size)

    @property
    def dim(self) -> int:
        """Vector dimension."""
        return int(self.vectors.shape[1])

    def __contains__(self, key: object) -> bool:
        return bool(self.positions(np.asarray([key]))[0] >= 0)

    def __getitem__(self, key: object) -> np.ndarray:
        return self.vectors[self._position(key)]

    def __repr__(self) -> str:
        return f"Embeddings({self.kind}, n={len(self):,}, dim={self.dim})"

    def positions(self, keys: np.ndarray) -> np.ndarray:
        """Row of each key in ``vectors``; -1 where the key is absent (vectorised)."""
        keys = np.asarray(keys)
        if self.ids.size == 0 or keys.size == 0:
            return np.full(keys.shape, -1, dtype=np.int64)
        if keys.size <= FEW_KEYS:
            # a server's lookup: a dict answers in a microsecond, where a search of the
            # sorted ids first converts all of them to the key's type (int32 ids against
            # an int64 key: 14 us at 59k movies, and every query makes several)
            if self._rows is None:
                self._rows = dict(zip(self.ids.tolist(), range(self.ids.size), strict=True))
            rows = self._rows
            return np.array([rows.get(k, -1) for k in keys.ravel().tolist()],
                            dtype=np.int64).reshape(keys.shape)
        if _numeric(self.ids) != _numeric(keys):
            # text never equals a number; numpy would first turn every id into text to
            # compare them (milliseconds per lookup at 59k movies) before failing
            return np.full(keys.shape, -1, dtype=np.int64)
        try:
            pos = np.searchsorted(self._sorted_ids, keys).clip(0, self.ids.size - 1)
            found = self._sorted_ids[pos] == keys
        except (TypeError, np.exceptions.DTypePromotionError):
            return np.full(keys.shape, -1, dtype=np.int64)
        return np.where(found, self._order[pos], -1).astype(np.int64)

    def aligned(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Vectors for ``keys`` in that order (zeros where missing) and the found mask."""
        pos = self.positions(keys)
        found = pos >= 0
        out = np.zeros((len(pos), self.dim), dtype=np.float32)
        out[found] = self.vectors[pos[found]]
        return out, found

    def _position(self, key: object) -> int:
        pos = int(self.positions(np.asarray([key]))[0])
        if pos < 0:
            raise unknown_name(f"{self.kind} id", str(key), [str(i) for i in self.ids[:20]])
        return pos

    # -- transforms -----------------------------------------------------------------------
    def _with(self, vectors: np.ndarray) -> Embeddings:
        return Embeddings(self.ids, vectors, self.kind, self.metadata, self.counts, self.source)

    def with_metadata(self, items: Any) -> Embeddings:
        """A copy with titles and genres attached, from a :class:`~embedlens.data.Dataset`
        or a frame with ``item_id, title, genres``, so titles work as keys::

            emb = model.item_embeddings.with_metadata(dataset)
            emb.most_similar("star wars")
        """
        table = getattr(items, "items", items)
        if not isinstance(table, pl.DataFrame):
            raise DataError("with_metadata needs a Dataset with a movie table or a frame with "
                            "item_id, title, genres.")
        missing = [c for c in ("item_id", "title", "genres") if c not in table.columns]
        if missing:
            raise DataError(f"The movie table lacks {', '.join(missing)}.")
        return Embeddings(self.ids, self.vectors, self.kind,
                          table.select("item_id", "title", "genres"), self.counts, self.source)

    def centered(self) -> Embeddings:
        """Mean-centred copy: propagation methods drift toward one shared direction, and cosine
        on raw vectors then ranks by that direction instead of by taste."""
        return self._with(self.vectors - self.vectors.mean(axis=0, keepdims=True))

    def normalized(self) -> Embeddings:
        """Copy with unit-length rows (zero rows stay zero)."""
        return self._with(l2_normalize(self.vectors))

    # -- titles ---------------------------------------------------------------------------
    def title_of(self, key: object) -> str:
        """The title of an item id ('' when there is no metadata)."""
        if self.metadata is None:
            return ""
        hit = self.metadata.filter(pl.col("item_id") == key)
        return hit["title"][0] if hit.height else ""

    def resolve(self, key: object) -> object:
        """An id from an id or a movie title (case, year and a moved article forgiven). A
        movie the data knows but these vectors lack is named as such, not as unknown."""
        if not isinstance(key, str) or key in self:
            if key not in self:
                self._not_embedded([key])
                self._position(key)  # raises a clear unknown-id error
            return key
        number = typed_int(key)
        if number is not None and number in self:
            return number
        if number is not None:
            self._not_embedded([number])
        if self.metadata is None:
            raise DataError(
                f"No titles are attached to these embeddings; use an id, not {key!r}, or attach "
                "titles with emb.with_metadata(dataset) (fitting with the dataset, "
                "model.fit(train, dataset), attaches them too).")
        exact = self.metadata.filter(pl.col("title").str.to_lowercase() == key.strip().lower())
        matches = exact["item_id"].to_list()
        index = self._title_index()
        query = normalize_title(key)
        for form in (query, _drop_article(query)):
            if not matches:
                matches = list(index.get(form, []))
        ids = [i for i in matches if i in self]
        if len(ids) == 1:
            return ids[0]
        if len(ids) > 1:
            listed = "; ".join(f"{self.title_of(i)} (id {i})" for i in ids[:10])
            raise AmbiguousTitleError(f"{key!r} matches {len(ids)} movies: {listed}. Use one.")
        self._not_embedded(matches)
        raise self._unknown_title(key, query)

    def _not_embedded(self, ids: list) -> None:
        """Raise if one of ``ids`` is a movie of the metadata that has no vector here."""
        if self.metadata is None or not ids:
            return
        known = self.metadata.filter(pl.col("item_id").is_in(pl.Series(ids).implode()))
        if known.height == 0:
            return
        item, title = known.row(0)[:2]
        by = f"by {self.source}" if self.source else "in these embeddings"
        raise UnknownNameError(
            f"{title} (id {item}) is not embedded {by}: it embeds {len(self):,} of the "
            f"{self.metadata.height:,} movies (those it saw often enough in training). Try "
            "another method.")

    def _unknown_title(self, key: str, query: str) -> EmbedlensError:
        """Unknown title: suggest titles containing the query, else the closest ones."""
        import difflib

        assert self.metadata is not None  # resolve() checked
        known = self.metadata.filter(pl.col("item_id").is_in(self.ids.tolist()))
        titles = known["title"].to_list()
        forms = [normalize_title(t) for t in titles]
        hits = [t for t, f in zip(titles, forms, strict=True) if query and query in f][:5]
        if not hits:
            close = difflib.get_close_matches(query, forms, n=3, cutoff=0.6)
            hits = [titles[forms.index(c)] for c in close]
        hint = f" Did you mean: {'; '.join(hits)}?" if hits else ""
        return UnknownNameError(f"Unknown movie title {key!r}.{hint}")

    def _title_index(self) -> dict[str, list[int]]:
        """Normalised title -> ids, also without a leading article ("matrix" finds
        "Matrix, The (1999)")."""
        if self._titles is None:
            assert self.metadata is not None  # resolve() checked
            index: dict[str, list[int]] = {}
            for item, title in self.metadata.select("item_id", "title").iter_rows():
                form = normalize_title(title)
                index.setdefault(form, []).append(item)
                bare = _drop_article(form)
                if bare != form:
                    index.setdefault(bare, []).append(item)
            self._titles = index
        return self._titles

    # -- similarity -----------------------------------------------------------------------
    def similar_by_vector(
        self,
        vector: np.ndarray,
        k: int = 10,
        metric: str = "cosine",
        center: bool = False,
        exclude: list | None = None,
    ) -> pl.DataFrame:
        """The ``k`` nearest entities to ``vector``: columns id, (title), score."""
        if metric not in ("cosine", "dot"):
            raise DataError(f"metric must be 'cosine' or 'dot', got {metric!r}.")
        vector = np.asarray(vector, dtype=np.float32).reshape(-1)
        if vector.size != self.dim:
            raise DataError(f"Query vector has dimension {vector.size}, embeddings {self.dim}.")
        mat = self.vectors
        if center:
            mean = mat.mean(axis=0)
            mat, vector = mat - mean, vector - mean
        if metric == "cosine":
            mat, vector = l2_normalize(mat), l2_normalize(vector[None])[0]
        top, scores = top_by_dot(mat, vector, k, self.positions(np.asarray(exclude))
                                 if exclude else None)
        out = pl.DataFrame({"id": self.ids[top], "score": scores.astype(np.float64)})
        if self.metadata is not None:
            titles = self.metadata.select(pl.col("item_id").alias("id"), "title", "genres")
            out = out.join(titles, on="id", how="left", maintain_order="left").select(
                "id", "title", "genres", "score"
            )
        return out

    def most_similar(
        self, key: object, k: int = 10, metric: str = "cosine", center: bool = False
    ) -> pl.DataFrame:
        """The ``k`` entities nearest to ``key`` (an id or a movie title), itself excluded."""
        key = self.resolve(key)
        return self.similar_by_vector(self[key], k, metric, center, exclude=[key])

    # -- persistence ----------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Save as Parquet (``.parquet``) or NumPy ``.npz`` (no pickle either way),
        atomically."""
        path = Path(path)
        if path.suffix == ".npz":
            arrays = {"ids": self.ids, "vectors": self.vectors}
            if self.counts is not None:
                arrays["counts"] = self.counts
            if self.ids.dtype == object:
                arrays["ids"] = self.ids.astype(str)
            return save_arrays(path, kind=np.array(self.kind), **arrays)
        df = pl.DataFrame({"id": self.ids}).with_columns(
            pl.Series("vector", self.vectors, dtype=pl.Array(pl.Float32, self.dim))
        )
        if self.counts is not None:
            df = df.with_columns(pl.Series("count", self.counts))
        if self.metadata is not None:
            meta = self.metadata.select(pl.col("item_id").alias("id"), "title", "genres")
            df = df.join(meta.cast({"id": df.schema["id"]}), on="id", how="left",
                         maintain_order="left")
        info: dict[str, Any] = {"kind": self.kind, "source": self.source}
        if self.metadata is not None:
            # titles of the movies without a vector, so "not embedded by X" survives a reload
            rest = self.metadata.filter(~pl.col("item_id").is_in(pl.Series(self.ids).implode()))
            info["unembedded"] = [[i, t] for i, t in rest.select("item_id", "title").rows()]
        with atomic_path(path) as tmp:
            df.write_parquet(tmp, metadata={"embedlens": json.dumps(info, default=str)})
        return path

    @classmethod
    def load(cls, path: str | Path) -> Embeddings:
        """Load what :meth:`save` wrote; a missing, damaged or foreign file is one
        :class:`DataError` naming it."""
        path = Path(path)
        if path.suffix == ".npz":
            z = load_arrays(path, ("ids", "vectors"), "embeddings file")
            kind = str(z["kind"]) if "kind" in z else "item"
            return cls._checked(path, z["ids"], z["vectors"], kind, None, z.get("counts"))
        df = read_parquet(path, "embeddings file")
        try:
            info = json.loads(parquet_metadata(path).get("embedlens", "{}"))
        except json.JSONDecodeError:
            info = {}
        if "id" not in df.columns or "vector" not in df.columns:
            raise DataError(f"{path} is not an embedlens embeddings file (needs id, vector).")
        info = info if isinstance(info, dict) else {}
        meta = None
        if {"title", "genres"} <= set(df.columns):
            meta = df.select(pl.col("id").alias("item_id"), "title", "genres")
            rest = info.get("unembedded")
            if isinstance(rest, list) and rest:
                try:
                    extra = pl.DataFrame(rest, schema={"item_id": meta.schema["item_id"],
                                                       "title": pl.Utf8}, orient="row")
                    meta = pl.concat([meta, extra.with_columns(
                        pl.lit([], dtype=meta.schema["genres"]).alias("genres"))])
                except (pl.exceptions.PolarsError, TypeError, ValueError):
                    pass  # a foreign or damaged list: titles of embedded movies still work
        counts = df["count"].to_numpy() if "count" in df.columns else None
        kind = str(info.get("kind", "item"))
        source = info.get("source") if isinstance(info.get("source"), str) else None
        emb = cls._checked(path, df["id"].to_numpy(), df["vector"].to_numpy(), kind, meta,
                           counts)
        emb.source = source
        return emb

    @classmethod
    def _checked(cls, path: Path, ids, vectors, kind, meta, counts) -> Embeddings:
        """Build from a file's columns; anything malformed names the file."""
        vectors = np.asarray(vectors)
        if vectors.ndim != 2 or not np.issubdtype(vectors.dtype, np.number):
            raise DataError(f"{path}: the vector column is not a matrix of numbers.")
        try:
            return cls(ids, vectors, kind, meta, counts)
        except DataError as exc:
            raise DataError(f"{path}: {exc}") from None


def top_by_dot(mat: np.ndarray, vector: np.ndarray, k: int,
               exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The positions of the ``k`` rows of ``mat`` with the largest dot product with
    ``vector`` (rows at ``exclude`` left out), best first, ties by position; and their
    scores."""
    scores = mat @ vector
    if exclude is not None and exclude.size:
        scores[exclude] = -np.inf
    k = min(k, int(np.isfinite(scores).sum()))
    top = np.argpartition(-scores, k - 1)[:k] if k else np.empty(0, dtype=np.int64)
    top = top[np.lexsort((top, -scores[top]))]
    return top, scores[top]


#: Lookups of at most this many keys go through a dict of the ids (see ``positions``).
FEW_KEYS = 8


def _numeric(values: np.ndarray) -> bool:
    return values.dtype.kind in "iufb"


def l2_normalize(mat: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm; all-zero rows are left at zero."""
    norms = np.linalg.norm(mat, axis=1, keepdims=True)
    return mat / np.where(norms > 0, norms, 1.0)
