"""Shared fixtures: the real MovieLens copies beside the repository and small hand-made logs."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest

from embedlens.core.progress import set_quiet

REPO = Path(__file__).resolve().parents[1]
ML_DIR = Path(os.environ.get("EMBEDLENS_TEST_DATA", REPO.parent / "shared" / "movielens"))

set_quiet(True)


@pytest.fixture(scope="session")
def ml_dir() -> Path:
    """Folder with the real ml-100k and ml-latest-small (``$EMBEDLENS_TEST_DATA``)."""
    if not (ML_DIR / "ml-100k" / "u.data").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"MovieLens test data missing at {ML_DIR}; set EMBEDLENS_TEST_DATA.")
        pytest.skip(f"MovieLens test data not found at {ML_DIR}")
    return ML_DIR


@pytest.fixture(scope="session")
def ml100k(ml_dir):
    from embedlens.data import load_movielens

    return load_movielens("ml-100k", data_dir=ml_dir)


@pytest.fixture(scope="session")
def ml_small(ml_dir):
    from embedlens.data import load_movielens

    return load_movielens("ml-latest-small", data_dir=ml_dir)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Never touch the user's real cache from a test."""
    monkeypatch.setenv("EMBEDLENS_DATA_DIR", str(tmp_path_factory.mktemp("cache")))


def log(rows: list[tuple]) -> pl.DataFrame:
    """An interactions frame from (user, item, rating, timestamp) tuples."""
    return pl.DataFrame(
        rows, schema=["user_id", "item_id", "rating", "timestamp"], orient="row"
    ).with_columns(pl.col("rating").cast(pl.Float32))
