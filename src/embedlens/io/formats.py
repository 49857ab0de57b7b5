"""Export embeddings to the formats other tools read, and import Cleora's ``.out`` files."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import polars as pl

from embedlens.core.embeddings import Embeddings
from embedlens.core.errors import DataError
from embedlens.core.files import write_text

FORMATS = ("projector", "parquet", "numpy", "word2vec", "cleora")


def export(emb: Embeddings, fmt: str, out: str | Path) -> list[Path]:
    """Write ``emb`` in ``fmt`` (one of :data:`FORMATS`) at/under ``out``; return the files."""
    out = Path(out)
    if fmt == "projector":
        return to_projector(emb, out)
    if fmt == "parquet":
        return [emb.save(out if out.suffix == ".parquet" else out / f"{emb.kind}s.parquet")]
    if fmt == "numpy":
        return [emb.save(out if out.suffix == ".npz" else out / f"{emb.kind}s.npz")]
    if fmt == "word2vec":
        return [to_word2vec(emb, out if out.suffix else out / f"{emb.kind}s.w2v.txt")]
    if fmt == "cleora":
        return [to_cleora(emb, out if out.suffix else out / f"{emb.kind}s.out")]
    raise DataError(f"Unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}.")


def _clean(values: pl.Series) -> pl.Series:
    return values.cast(pl.Utf8).fill_null("").str.replace_all(r"[\t\r\n]", " ")


def _vector_text(vectors: np.ndarray, sep: str) -> list[str]:
    buf = io.StringIO()
    np.savetxt(buf, vectors, fmt="%.6g", delimiter=sep)
    return buf.getvalue().splitlines()


def to_projector(emb: Embeddings, out_dir: Path) -> list[Path]:
    """TensorFlow Embedding Projector: ``embeddings.tsv`` and ``metadata.tsv`` (id, title,
    genres; a one-column file without header when there is no metadata)."""
    vec_path, meta_path = out_dir / "embeddings.tsv", out_dir / "metadata.tsv"
    write_text(vec_path, "\n".join(_vector_text(emb.vectors, "\t")) + "\n")
    ids = pl.DataFrame({"id": emb.ids})
    if emb.metadata is not None:
        meta = emb.metadata.select(
            pl.col("item_id").alias("id"), "title", pl.col("genres").list.join("|")
        ).cast({"id": ids.schema["id"]})
        rows = ids.join(meta, on="id", how="left", maintain_order="left")
        lines = ["id\ttitle\tgenres"] + [
            "\t".join(r) for r in zip(
                _clean(rows["id"]), _clean(rows["title"]), _clean(rows["genres"]), strict=True
            )
        ]
    else:
        lines = _clean(ids["id"]).to_list()
    write_text(meta_path, "\n".join(lines) + "\n")
    return [vec_path, meta_path]


def to_word2vec(emb: Embeddings, path: Path) -> Path:
    """word2vec text format: ``N D`` then ``id v1 … vD`` per line (gensim reads it)."""
    body = _vector_text(emb.vectors, " ")
    ids = _clean(pl.Series(emb.ids)).str.replace_all(" ", "_").to_list()
    return write_text(
        path,
        f"{len(emb)} {emb.dim}\n" + "\n".join(f"{i} {v}" for i, v in zip(ids, body, strict=True))
        + "\n",
    )


def to_cleora(emb: Embeddings, path: Path) -> Path:
    """Cleora v1 ``.out``: ``N D`` then ``entity occurrence v1 … vD`` per line."""
    counts = emb.counts if emb.counts is not None else np.ones(len(emb), dtype=np.int64)
    body = _vector_text(emb.vectors, " ")
    ids = _clean(pl.Series(emb.ids)).str.replace_all(" ", "_").to_list()
    return write_text(
        path,
        f"{len(emb)} {emb.dim}\n"
        + "\n".join(f"{i} {c} {v}" for i, c, v in zip(ids, counts, body, strict=True))
        + "\n",
    )


def from_cleora(path: str | Path, kind: str = "item", strip_prefix: str = "") -> Embeddings:
    """Read a Cleora ``.out`` file (as written by the Cleora binary or :func:`to_cleora`).

    Entity names that are all integers (after removing ``strip_prefix``, e.g. ``"movie_"``)
    become integer ids, so they match MovieLens ids.
    """
    return _read_text_vectors(Path(path), kind, strip_prefix, has_count=True)


def from_word2vec(path: str | Path, kind: str = "item", strip_prefix: str = "") -> Embeddings:
    """Read a word2vec text file."""
    return _read_text_vectors(Path(path), kind, strip_prefix, has_count=False)


def _read_text_vectors(path: Path, kind: str, prefix: str, has_count: bool) -> Embeddings:
    if not path.is_file():
        raise DataError(f"No such embeddings file: {path}")
    try:
        with path.open(encoding="utf-8") as fh:
            header = fh.readline().split()
    except UnicodeDecodeError:
        raise DataError(f"{path.name} is not a text embeddings file (not UTF-8).") from None
    try:
        n, dim = int(header[0]), int(header[1])
    except (IndexError, ValueError):
        got = " ".join(header)
        raise DataError(f"{path.name}: first line must be 'N D', got {got!r}.") from None
    fixed = 2 if has_count else 1
    names = ["entity", "count"][:fixed] + [f"v{j}" for j in range(dim)]
    try:
        df = pl.read_csv(
            path, separator=" ", has_header=False, skip_rows=1, new_columns=names,
            schema_overrides={"entity": pl.Utf8}, quote_char=None, truncate_ragged_lines=False,
        )
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"{path.name}: cannot parse vectors ({exc}).") from exc
    if df.width != len(names) or df.height != n:
        raise DataError(
            f"{path.name}: header says {n} x {dim}, file has {df.height} rows x "
            f"{df.width - fixed} values."
        )
    entity = df["entity"].str.strip_prefix(prefix) if prefix else df["entity"]
    as_int = entity.cast(pl.Int64, strict=False)
    ids = as_int.to_numpy() if as_int.null_count() == 0 else entity.to_numpy()
    vectors = df.select(names[fixed:]).to_numpy().astype(np.float32)
    counts = df["count"].to_numpy() if has_count else None
    return Embeddings(ids, vectors, kind, counts=counts)
