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


def load_dataset(name: str, data_dir: str | None = None) -> Dataset:
    """A MovieLens variant by name, or a local CSV/Parquet log by path (default columns)."""
    from pathlib import Path

    if Path(name).suffix.lower() in (".csv", ".parquet", ".pq", ".tsv"):
        return load_log(name)
    return load_movielens(name, data_dir=data_dir)
