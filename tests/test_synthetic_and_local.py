import numpy as np
import polars as pl
import pytest

from embedlens.core.errors import DataError, UnknownNameError
from embedlens.data import load_log, synthetic_movielens


def test_synthetic_shape_and_determinism():
    a = synthetic_movielens("ml-25m", seed=3, scale=0.002)
    b = synthetic_movielens("ml-25m", seed=3, scale=0.002)
    c = synthetic_movielens("ml-25m", seed=4, scale=0.002)
    assert a.interactions.equals(b.interactions)
    assert not a.interactions.equals(c.interactions)
    df = a.interactions
    assert df.height == pytest.approx(50_000, rel=0.02)
    assert df.select(pl.struct("user_id", "item_id").is_duplicated().sum()).item() == 0
    per_user = df.group_by("user_id").len()["len"]
    assert per_user.min() >= 20
    assert per_user.max() > 5 * per_user.median()  # heavy-tailed activity
    pop = df.group_by("item_id").len()["len"].sort(descending=True).to_numpy()
    assert pop[0] > 10 * np.median(pop)  # power-law popularity
    assert set(df["rating"].unique().to_list()) <= {x / 2 for x in range(1, 11)}
    assert a.items["genres"].list.len().min() >= 1


def test_synthetic_unknown_shape():
    with pytest.raises(UnknownNameError):
        synthetic_movielens("ml-2m")


def test_load_log_with_column_mapping(tmp_path):
    path = tmp_path / "clicks.csv"
    pl.DataFrame({"uid": ["a", "b"], "sku": [5, 6], "when": [10, 20]}).write_csv(path)
    ds = load_log(path, user="uid", item="sku", rating=None, timestamp="when")
    assert ds.interactions.rows() == [("a", 5, 1.0, 10), ("b", 6, 1.0, 20)]
    pq = tmp_path / "log.parquet"
    ds.interactions.write_parquet(pq)
    assert load_log(pq).interactions.equals(ds.interactions)
    with pytest.raises(DataError, match="missing column.*sku"):
        load_log(path, user="uid", item="sku2", rating=None, timestamp="when")
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(DataError, match="unsupported"):
        load_log(tmp_path / "x.json")
