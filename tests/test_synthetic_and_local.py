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


@pytest.mark.parametrize("shape", ["ml-1m", "ml-25m"])
def test_a_synthetic_log_written_as_a_release_loads_back_as_written(tmp_path, shape):
    from embedlens.data import load_movielens
    from embedlens.data.registry import get_variant
    from embedlens.data.synthetic import write_movielens_folder

    ds = synthetic_movielens(shape, seed=2, scale=0.002)
    variant = get_variant(shape)
    write_movielens_folder(ds, tmp_path / variant.folder, variant.layout)
    back = load_movielens(shape, data_dir=tmp_path)
    key = ["user_id", "item_id"]
    assert back.interactions.sort(key).equals(ds.interactions.sort(key))
    assert back.items.select("item_id", "title", "genres").sort("item_id").equals(
        ds.items.select("item_id", "title", "genres").sort("item_id"))
    assert not list(tmp_path.rglob("*.tmp*"))  # atomic writes leave nothing behind


def test_the_synthetic_command_writes_a_release_run_can_read(tmp_path):
    from test_cli import run

    out = run("--quiet", "datasets", "synthetic", "ml-25m", "--out", str(tmp_path / "data"),
              "--scale", "0.001").stdout
    assert "25,000 ratings" in " ".join(out.split())  # the console wraps a long path
    info = run("datasets", "info", "ml-25m", "--data-dir", str(tmp_path / "data")).stdout
    assert "25,000" in info
    again = run("datasets", "synthetic", "ml-25m", "--out", str(tmp_path / "data"),
                "--scale", "0.001", ok=False)
    assert again.returncode == 2 and "--force" in again.stderr
    user = tmp_path / "mine" / "ml-1m"
    user.mkdir(parents=True)
    (user / "notes.txt").write_text("mine")
    refused = run("datasets", "synthetic", "ml-1m", "--out", str(tmp_path / "mine"),
                  "--scale", "0.01", "--force", ok=False)
    assert refused.returncode == 2 and (user / "notes.txt").read_text() == "mine"
    bad = run("datasets", "synthetic", "ml-1m", "--out", str(tmp_path / "x"), "--scale", "2",
              ok=False)
    assert bad.returncode == 2 and "--scale must be in (0, 1], got 2.0" in bad.stderr
