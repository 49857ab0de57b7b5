import numpy as np
import polars as pl
import pytest

from conftest import log
from embedlens.core.errors import DataError, UnknownNameError
from embedlens.core.ids import IdMap
from embedlens.core.interactions import InteractionMatrix
from embedlens.prep import (
    GlobalTimeSplitter,
    KCoreFilter,
    MinCountFilter,
    RandomSplitter,
    RatingFilter,
    UserTimeSplitter,
    get_protocol,
)


def test_rating_filter():
    df = log([(1, 1, 3.0, 1), (1, 2, 4.0, 2), (2, 1, 5.0, 3)])
    assert RatingFilter(4)(df)["item_id"].to_list() == [2, 1]
    with pytest.raises(DataError, match="No interactions left"):
        RatingFilter(6)(df)


def test_min_count_is_one_pass_but_kcore_iterates():
    # user 3 has 2 interactions, one on item 30 which only user 3 has
    df = log([
        (1, 10, 5, 1), (1, 20, 5, 2), (2, 10, 5, 3), (2, 20, 5, 4),
        (3, 10, 5, 5), (3, 30, 5, 6),
    ])
    one = MinCountFilter(min_user=2, min_item=2)(df)
    # item 30 dropped, user 3 kept in this pass although now has 1 interaction
    assert sorted(one["user_id"].to_list()) == [1, 1, 2, 2, 3]
    core = KCoreFilter(k_user=2, k_item=2)(df)
    assert sorted(set(core["user_id"].to_list())) == [1, 2]
    assert core.height == 4


def test_global_time_ties_go_to_test():
    # 10 rows; cut row index int(10*0.8)=8 has timestamp 7, shared by rows 7..9
    ts = [1, 2, 3, 4, 5, 6, 7, 7, 7, 8]
    df = log([(u % 3, u, 5.0, t) for u, t in enumerate(ts)])
    train, test = GlobalTimeSplitter(test_fraction=0.2).split(df)
    assert sorted(test["timestamp"].to_list()) == [7, 7, 7, 8]
    assert train["timestamp"].max() == 6


def test_global_time_drop_cold():
    df = log([(1, 1, 5, 1), (1, 2, 5, 2), (2, 1, 5, 3), (1, 3, 5, 4), (3, 1, 5, 5)])
    _, test = GlobalTimeSplitter(test_fraction=0.4).split(df)
    assert test.height == 2  # (1,3) and (3,1)
    _, test = GlobalTimeSplitter(test_fraction=0.4, drop_cold_items=True).split(df)
    assert test.rows() == [(3, 1, 5.0, 5)]
    with pytest.raises(DataError, match="empty test"):
        GlobalTimeSplitter(test_fraction=0.4, drop_cold_items=True, drop_cold_users=True).split(df)


def test_user_time_fraction_and_last_n():
    rows = [(1, i, 5.0, 100 - i) for i in range(10)] + [(2, i, 5.0, i) for i in range(5)]
    df = log(rows)
    _, test = UserTimeSplitter(test_fraction=0.2).split(df)
    by_user = test.group_by("user_id").agg(pl.col("item_id").sort()).sort("user_id")
    # user 1's latest are items 0 and 1 (largest timestamps); user 2: 1 of 5 (round(5/5)>0.8)
    assert by_user["item_id"].to_list() == [[0, 1], [4]]
    _, last = UserTimeSplitter(test_fraction=None, last_n=3).split(df)
    assert last.filter(pl.col("user_id") == 2)["item_id"].sort().to_list() == [2, 3, 4]
    with pytest.raises(DataError, match="exactly one"):
        UserTimeSplitter(test_fraction=0.2, last_n=1).split(df)


def test_random_split_reproducible():
    df = log([(u, i, 5.0, u * 10 + i) for u in range(20) for i in range(10)])
    a_train, a_test = RandomSplitter(test_fraction=0.25, seed=7).split(df)
    b_train, b_test = RandomSplitter(test_fraction=0.25, seed=7).split(df)
    _, c_test = RandomSplitter(test_fraction=0.25, seed=8).split(df)
    assert a_test.equals(b_test) and a_train.equals(b_train)
    assert not a_test.equals(c_test)
    assert a_test.height == 50 and a_train.height == 150
    with pytest.raises(DataError, match="between 0 and 1"):
        RandomSplitter(test_fraction=1.0).split(df)


def test_named_protocols_on_ml100k(ml100k):
    split = get_protocol("global-time-0.2").split(ml100k.interactions)
    assert split.train.height == 79_999  # cut at row 80,000; ties with it go to test
    assert split.test["rating"].min() >= 4
    assert split.test["user_id"].is_in(split.train["user_id"].implode()).all()
    rnd = get_protocol("random-0.2").split(ml100k.interactions)
    assert rnd.train.height == 80_000
    assert rnd.test["rating"].min() == 1  # all test rows relevant
    ut = get_protocol("user-time-0.2").split(ml100k.interactions)
    last = ut.train.group_by("user_id").agg(pl.col("timestamp").max().alias("t"))
    first_test = ut.test.group_by("user_id").agg(pl.col("timestamp").min().alias("t"))
    joined = last.join(first_test, on="user_id", suffix="_test")
    assert (joined["t"] <= joined["t_test"]).all()
    with pytest.raises(UnknownNameError, match="random-0.2"):
        get_protocol("random-02")


def test_id_map_and_matrix():
    df = log([(10, 7, 4.0, 5), (30, 7, 2.0, 6), (10, 9, 5.0, 7), (10, 7, 1.0, 9)])
    m = InteractionMatrix.from_frame(df)
    assert m.users.ids.tolist() == [10, 30] and m.items.ids.tolist() == [7, 9]
    assert m.users.index(np.array([30, 99, 10])).tolist() == [1, -1, 0]
    # the repeated (10, 7) keeps its latest rating
    assert m.ratings.toarray().tolist() == [[1.0, 5.0], [2.0, 0.0]]
    assert m.binary().sum() == 3
    assert IdMap.fit(pl.Series(["b", "a", "b"])).ids.tolist() == ["a", "b"]


def test_id_map_indexes_few_and_many_values_alike():
    # a few values take numpy on the calling thread, many take numba's table: same answers
    ids = IdMap.fit(np.array([5, 8, 9, 20], dtype=np.int32))
    # below, inside (present and absent: 6, 15) and above the ids' span
    probe = np.array([4, 5, 9, 21, 20, -3, 8, 100, 6, 15], dtype=np.int64)
    want = [-1, 0, 2, -1, 3, -1, 1, -1, -1, -1]
    flagged = [-7 if w < 0 else w for w in want]
    assert ids.index(probe).tolist() == want
    assert ids.index(probe, missing=-7).tolist() == flagged
    assert [ids.position(int(v), missing=-7) for v in probe] == flagged
    many = np.tile(probe, 200)  # above FEW_VALUES
    assert ids.index(many).tolist() == want * 200
    assert ids.index(many, missing=-7).tolist() == flagged * 200


def test_missing_column_is_named():
    with pytest.raises(DataError, match="timestamp"):
        GlobalTimeSplitter().split(pl.DataFrame({"user_id": [1, 2], "item_id": [1, 2]}))
