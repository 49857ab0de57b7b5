import io
import zipfile

import polars as pl
import pytest

from embedlens.core.errors import DataError, DatasetNotAvailableError, UnknownNameError
from embedlens.data import load_movielens
from embedlens.data.movielens import GENRES_100K


def test_ml100k_real_counts(ml100k):
    assert ml100k.n_interactions == 100_000
    assert ml100k.n_users == 943
    assert ml100k.n_items == 1_682
    assert ml100k.items.height == 1_682
    assert ml100k.users.height == 943
    assert ml100k.tags is None
    assert ml100k.interactions.schema["rating"] == pl.Float32
    ts = ml100k.interactions["timestamp"]
    assert (ts.min(), ts.max()) == (874724710, 893286638)


def test_ml100k_items_parsed_from_latin1_flags(ml100k):
    items = ml100k.items
    toy = items.filter(pl.col("item_id") == 1).row(0, named=True)
    assert toy["title"] == "Toy Story (1995)"
    assert toy["year"] == 1995
    assert toy["genres"] == ["Animation", "Children's", "Comedy"]
    # u.item is Latin-1: item 543 is "Misérables, Les (1995)"
    assert items.filter(pl.col("item_id") == 543)["title"][0] == "Mis\u00e9rables, Les (1995)"
    # "unknown" genre flag means no genre; every genre name is one of u.genre's
    all_genres = set(items["genres"].explode().drop_nulls())
    assert all_genres <= set(GENRES_100K) - {"unknown"}
    assert items.filter(pl.col("item_id") == 267)["genres"][0].to_list() == []


def test_ml100k_users(ml100k):
    u1 = ml100k.users.filter(pl.col("user_id") == 1).row(0, named=True)
    assert u1 == {"user_id": 1, "gender": "M", "age": 24, "occupation": "technician"}


def test_latest_small_real_counts(ml_small):
    assert ml_small.n_interactions == 100_836
    assert ml_small.n_users == 610
    assert ml_small.n_items == 9_724
    assert ml_small.items.height == 9_742
    assert ml_small.tags.height == 3_683
    genres = set(ml_small.items["genres"].explode().drop_nulls())
    # CRLF line endings must not leak into the last column
    assert "Drama" in genres and not any(g.endswith("\r") for g in genres)
    assert "(no genres listed)" not in genres
    half_stars = set(ml_small.interactions["rating"].unique().to_list())
    assert half_stars == {x / 2 for x in range(1, 11)}


def test_reads_official_zip_directly(ml_dir, ml_small):
    ds = load_movielens("latest-small", data_dir=ml_dir / "ml-latest-small" / "ml-latest-small.zip")
    assert ds.interactions.equals(ml_small.interactions)
    assert ds.tags.equals(ml_small.tags)


def _dat_zip(path, folder="ml-1m"):
    """A tiny ml-1m-style archive: '::'-separated, Latin-1 titles."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{folder}/ratings.dat", "1::10::5::978300760\n1::20::3::978302109\n"
                    "2::10::4::978301968\n")
        zf.writestr(
            f"{folder}/movies.dat",
            "10::Caf\xe9 Society (1995)::Drama|Romance\n20::Alien: Director's Cut (1979)::Horror\n"
            .encode("latin-1"),
        )
        zf.writestr(f"{folder}/users.dat", "1::F::1::10::48067\n2::M::56::16::70072\n")
    return path


def test_dat_layout(tmp_path):
    ds = load_movielens("ml-1m", data_dir=_dat_zip(tmp_path / "ml-1m.zip"))
    assert ds.n_interactions == 3
    items = ds.items.sort("item_id")
    assert items["title"].to_list() == ["Caf\u00e9 Society (1995)", "Alien: Director's Cut (1979)"]
    assert items["year"].to_list() == [1995, 1979]
    assert items["genres"].to_list() == [["Drama", "Romance"], ["Horror"]]
    assert ds.users["occupation"].to_list() == ["10", "16"]


def test_dat_layout_tags_keep_separators(tmp_path):
    path = tmp_path / "ml-10m.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("ml-10M100K/ratings.dat", "5::1::3.5::1000\n")
        zf.writestr("ml-10M100K/movies.dat", "1::Toy Story (1995)::Animation|Children\n")
        zf.writestr("ml-10M100K/tags.dat", "5::1::pixar::classic::1001\n")
    ds = load_movielens("ml-10m", data_dir=tmp_path)
    # a tag containing "::" is kept whole; the timestamp is the last field
    assert ds.tags.row(0) == (5, 1, "pixar::classic", 1001)


def test_missing_variant_is_clear(tmp_path):
    with pytest.raises(DatasetNotAvailableError, match="ml-1m.zip"):
        load_movielens("ml-1m", data_dir=tmp_path)


def test_unknown_variant_suggests(tmp_path):
    with pytest.raises(UnknownNameError, match="ml-1m"):
        load_movielens("ml-1mm", data_dir=tmp_path)


def test_corrupt_local_zip(tmp_path):
    (tmp_path / "ml-1m.zip").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a valid zip"):
        load_movielens("ml-1m", data_dir=tmp_path)


def test_incomplete_copy_names_missing_file(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ml-1m/ratings.dat", "1::1::5::1\n")
    (tmp_path / "ml-1m.zip").write_bytes(buf.getvalue())
    with pytest.raises(DataError, match="movies.dat"):
        load_movielens("ml-1m", data_dir=tmp_path)
