import numpy as np
import pytest

from conftest import log
from embedlens.core.embeddings import Embeddings
from embedlens.core.errors import DataError
from embedlens.core.interactions import InteractionMatrix
from embedlens.kernels.aggregate import user_embeddings

DAY = 86_400


@pytest.fixture
def train():
    return InteractionMatrix.from_frame(log([
        (1, 10, 5.0, 0), (1, 20, 1.0, 10 * DAY),
        (2, 20, 4.0, 0),
        (3, 30, 3.0, 0),  # item 30 has no vector -> user 3 gets none
    ]))


ITEMS = Embeddings(np.array([10, 20]), np.array([[1.0, 0.0], [0.0, 1.0]]))


def test_mean(train):
    users = user_embeddings(ITEMS, train, "mean")
    assert users.ids.tolist() == [1, 2]
    assert np.allclose(users[1], [0.5, 0.5]) and np.allclose(users[2], [0, 1])


def test_rating_weighted(train):
    users = user_embeddings(ITEMS, train, "rating")
    assert np.allclose(users[1], [5 / 6, 1 / 6])


def test_recency_weighted(train):
    users = user_embeddings(ITEMS, train, "recency", half_life_days=10)
    # item 10 is 10 days older than the user's latest -> weight 0.5 vs 1
    assert np.allclose(users[1], [1 / 3, 2 / 3])
    with pytest.raises(DataError, match="half_life"):
        user_embeddings(ITEMS, train, "recency", half_life_days=0)
    with pytest.raises(DataError, match="Unknown aggregation"):
        user_embeddings(ITEMS, train, "median")


def test_recency_weighs_from_the_latest_movie_with_a_vector():
    """A user's latest movie has no vector (node2vec leaves some out): the weights count
    from the latest movie that has one. Counted from the dropped movie, 130 days and a
    half-life of 1 day left float32 weights of 1e-39, whose normalisation overflowed to NaN."""
    train = InteractionMatrix.from_frame(log([
        (1, 10, 5.0, 0), (1, 20, 5.0, DAY), (1, 30, 5.0, 131 * DAY),
    ]))
    users = user_embeddings(ITEMS, train, "recency", half_life_days=1)
    assert np.allclose(users[1], [1 / 3, 2 / 3])
