"""What a log must be: the duplicate policy, finite ratings, readable columns; and what the
evaluation does with a relevant item it cannot rank."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from conftest import log
from embedlens.core.errors import DataError, EmbedlensWarning
from embedlens.data import load_log
from embedlens.data.dataset import Dataset, _iso, merge_duplicates
from embedlens.evaluation.evaluate import evaluate_model
from embedlens.evaluation.splits import EvalSplit
from embedlens.methods.registry import get_method


def test_duplicates_keep_the_latest_row_in_log_order():
    df = log([(1, 10, 1.0, 5), (1, 11, 2.0, 6), (1, 10, 5.0, 9), (2, 10, 3.0, 1),
              (1, 10, 4.0, 9)])
    merged, n = merge_duplicates(df)
    assert n == 2
    # (1, 10) kept once: the latest time 9; of the two rows at 9, the later one (rating 4)
    assert merged.rows() == [(1, 11, 2.0, 6), (2, 10, 3.0, 1), (1, 10, 4.0, 9)]
    same, none = merge_duplicates(merged)
    assert none == 0 and same.equals(merged)


def test_duplicates_with_string_ids():
    df = pl.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["x", "x", "x"],
                       "rating": [1.0, 2.0, 3.0], "timestamp": [2, 1, 1]})
    merged, n = merge_duplicates(df)
    assert n == 1 and merged["rating"].to_list() == [1.0, 3.0]


def test_load_log_merges_and_counts_duplicates(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("user_id,item_id,rating,timestamp\n1,10,3,1\n1,10,5,2\n2,10,4,1\n")
    ds = load_log(path)
    assert ds.n_interactions == 2 and ds.meta["duplicates_merged"] == 1
    assert ds.interactions.filter(pl.col("user_id") == 1)["rating"].to_list() == [5.0]


@pytest.mark.parametrize(("body", "message"), [
    ("1,10,nan,1\n2,10,4,1\n", "'rating' has 1 row"),
    ("1,10,inf,1\n2,10,4,1\n", "not finite"),
    ("1,10,1e30,1\n2,10,4,1\n", "beyond ±1e\\+06"),
    ("1,10,good,1\n2,10,4,1\n", "'rating' has 1 value\\(s\\) that are not numbers.*'good'"),
    ("1,10,4,yesterday\n2,10,4,1\n", "'timestamp' holds text.*'yesterday'"),
    ("1,10,4,1\n,10,4,1\n", "no user id"),
    ("1,10,,1\n2,10,4,1\n", "'rating' has 1 missing"),
])
def test_bad_values_are_refused_at_load_naming_file_and_column(tmp_path, body, message):
    path = tmp_path / "bad.csv"
    path.write_text("user_id,item_id,rating,timestamp\n" + body)
    with pytest.raises(DataError, match=message) as err:
        load_log(path)
    assert "bad.csv" in str(err.value)


def test_non_utf8_log_is_one_clear_error(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("user_id,item_id,rating,timestamp\n1,caf\xe9,4,1\n".encode("latin-1"))
    with pytest.raises(DataError, match="latin.csv is not UTF-8"):
        load_log(path)


def test_iso_dates_and_datetimes_become_unix_seconds(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("u,i,t\n1,10,2020-01-02\n2,10,1970-01-01T00:01:00\n")
    ds = load_log(path, user="u", item="i", rating=None, timestamp="t")
    assert ds.interactions["timestamp"].to_list() == [1577923200, 60]
    assert ds.interactions["rating"].to_list() == [1.0, 1.0]


def test_a_dataset_built_by_hand_is_checked_too():
    with pytest.raises(DataError, match="not finite"):
        Dataset("x", log([(1, 10, math.nan, 1)]))


def test_dates_of_any_int64_print():
    assert _iso(0) == "1970-01-01"
    assert _iso(-86_400) == "1969-12-31"
    assert "not a date" in _iso(-(2**62))


def test_relevant_items_already_in_train_are_excluded_and_reported():
    """A hand-built log with a repeated pair: its test copy cannot be ranked, so it must not
    count as a miss. The fixed Pop model hits user 1's one rankable item at rank 1."""
    rows = [(u, i, 5.0, i) for u in range(1, 6) for i in range(1, 6)]
    rows += [(1, 9, 5.0, 100), (1, 3, 5.0, 101)]  # user 1: a new item, then item 3 again
    data_rows = pl.DataFrame(rows, schema=["user_id", "item_id", "rating", "timestamp"],
                             orient="row").with_columns(pl.col("rating").cast(pl.Float32))
    data_rows = pl.concat([data_rows, data_rows.filter(pl.col("user_id") == 2)
                           .with_columns(pl.lit(9).alias("item_id"), pl.lit(50).alias(
                               "timestamp")).cast(data_rows.schema)])
    ds = Dataset("dups", data_rows)
    with pytest.warns(EmbedlensWarning, match="also in their user's train rows"):
        data = EvalSplit.prepare(ds, "user-time-0.2")
    assert data.excluded_relevant >= 1
    report = evaluate_model(get_method("pop")().fit(data.train), data, k=5)
    assert report["relevant_excluded"] == data.excluded_relevant
    # every truth entry is rankable: none is in its user's train row
    overlap = data.truth.multiply(data.train.binary()[data.users])
    assert overlap.nnz == 0


def test_a_model_that_recommends_nothing_is_an_error():
    from embedlens.core.embeddings import Embeddings

    rows = [(u, i, 4.0, i) for u in range(6) for i in range(6)]
    data = EvalSplit.prepare(Dataset("x", log(rows)), "random-0.2")
    model = get_method("imported").from_embeddings(
        Embeddings(np.array([999]), np.ones((1, 4)), "item"))  # knows none of the items
    with pytest.raises(DataError, match="recommended nothing"):
        evaluate_model(model, data, k=3)


def test_non_finite_vectors_are_refused():
    from embedlens.core.embeddings import Embeddings

    with pytest.raises(DataError, match="NaN or infinite"):
        Embeddings([1, 2], np.array([[1.0, 2.0], [np.nan, 0.0]]))
