"""Data layer: MovieLens variants by name, local logs, synthetic logs, one schema."""

from embedlens.data.dataset import Dataset
from embedlens.data.local import load_log
from embedlens.data.movielens import load_movielens
from embedlens.data.registry import VARIANTS, Variant, get_variant
from embedlens.data.synthetic import synthetic_movielens

__all__ = [
    "VARIANTS",
    "Dataset",
    "Variant",
    "get_variant",
    "load_log",
    "load_movielens",
    "synthetic_movielens",
]


def is_log_path(name: str) -> bool:
    """Whether ``name`` names a log file rather than a MovieLens variant."""
    from pathlib import Path

    return Path(name).suffix.lower() in (".csv", ".parquet", ".pq", ".tsv")


def load_dataset(name: str, data_dir: str | None = None,
                 columns: dict[str, str | None] | None = None,
                 shared: bool = False) -> Dataset:
    """A MovieLens variant by name, or a local CSV/Parquet log by path; ``columns`` maps
    the log's column names (``{"user": "uid", "rating": None}``; see
    :func:`~embedlens.data.local.parse_columns`). ``shared``: under torchrun, a log file
    is read in shares, each rank keeping its users' rows, and so is a MovieLens variant
    (the older formats parsed whole, then each rank keeps its share)."""
    if is_log_path(name):
        return load_log(name, **(columns or {}), shared=shared)  # type: ignore[arg-type]
    if columns:
        from embedlens.core.errors import DataError

        raise DataError(f"--columns applies to a log file, not the MovieLens variant {name}.")
    return load_movielens(name, data_dir=data_dir, shared=shared)
