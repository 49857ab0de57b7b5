"""The contract every method and baseline passes (implicit's shared test mixin, for pytest).

A method of another package runs it by subclassing in its own tests::

    from embedlens.testing import MethodContract

    class TestMyMethod(MethodContract):
        method = "my-method"          # its registered name (entry point embedlens.methods)
        params = {"epochs": 2}        # settings that make it fast on a small log

Every check runs on :func:`~embedlens.testing.planted.planted_log`, a small log with
planted taste groups, so no real data is needed: fit returns the model; the same seed gives
the same vectors; save and load give the same recommendations; scores follow ids, not
indices, on a re-encoded split; recommendations exclude seen items; a bad parameter value
fails when the model is built; parameters round-trip through TOML; scoring parameters
change the scores, not the fit; a heavy popularity prior ranks as popularity does; and the
method beats Random on the planted log.
"""

from __future__ import annotations

import tomllib
from functools import cache
from typing import Any, ClassVar

import numpy as np
import pytest

from embedlens.core.errors import DataError
from embedlens.core.ids import IdMap
from embedlens.core.interactions import InteractionMatrix
from embedlens.data.dataset import Dataset
from embedlens.evaluation.evaluate import evaluate_model
from embedlens.evaluation.splits import EvalSplit
from embedlens.methods.base import ItemVectors, Model
from embedlens.methods.registry import get_method
from embedlens.testing.planted import planted_log


@cache
def planted_split(protocol: str = "random-0.2") -> tuple[Dataset, EvalSplit]:
    """The planted log and its split (built once per process)."""
    ds = planted_log()
    return ds, EvalSplit.prepare(ds, protocol)


def invalid_values(params_class: Any) -> dict[str, Any]:
    """For each parameter, one value it must refuse: outside its choices or range, or of
    the wrong type."""
    out: dict[str, Any] = {}
    for row in params_class.describe():
        spec = params_class.spec(row["name"])
        kind = row["type"].split(" or ")[0]
        if spec.choices is not None:
            out[row["name"]] = "no-such-choice"
        elif kind == "bool":
            out[row["name"]] = "no"
        elif kind in ("int", "float") and spec.ge is not None:
            out[row["name"]] = spec.ge - 1
        elif kind in ("int", "float") and spec.gt is not None:
            out[row["name"]] = spec.gt
        elif kind in ("int", "float"):
            out[row["name"]] = "text"
        else:
            out[row["name"]] = 5
    return out


class MethodContract:
    """Subclass with ``method`` (a registered name) and optionally ``params``, ``margin``
    (NDCG@10 above Random's) and ``ids_decide_scores`` (False for methods whose scores are
    random by design: then an item the model never saw need not score -inf either)."""

    method: ClassVar[str]
    params: ClassVar[dict[str, Any]] = {}
    margin: ClassVar[float] = 0.05
    ids_decide_scores: ClassVar[bool] = True

    @classmethod
    def build(cls, **changes: Any) -> Model:
        return get_method(cls.method)(**{**cls.params, **changes})

    @pytest.fixture(scope="class")
    @classmethod
    def planted(cls) -> tuple[Dataset, EvalSplit]:
        return planted_split()

    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls, planted: tuple[Dataset, EvalSplit]) -> Model:
        ds, split = planted
        return cls.build().fit(split.train, split.train_dataset(ds))

    def test_fit_returns_the_model(self, fitted: Model) -> None:
        assert isinstance(fitted, get_method(self.method))
        assert fitted.name == self.method

    def test_same_seed_gives_the_same_vectors(self, planted, fitted: Model) -> None:
        ds, split = planted
        again = self.build().fit(split.train, split.train_dataset(ds))
        if isinstance(fitted, ItemVectors) and isinstance(again, ItemVectors):
            a, b = fitted.item_vectors(), again.item_vectors()
            assert np.array_equal(a.ids, b.ids)
            assert np.array_equal(a.vectors, b.vectors), (
                f"{np.sum(a.vectors != b.vectors)} of {a.vectors.size} values differ, by up "
                f"to {np.max(np.abs(a.vectors - b.vectors)):.3g}")
        users = np.arange(min(5, len(split.train.users)))
        assert np.array_equal(fitted.scorer(split.train)(users),
                              again.scorer(split.train)(users))

    def test_save_and_load_give_the_same_recommendations(self, planted, fitted: Model,
                                                          tmp_path) -> None:
        _, split = planted
        fitted.save(tmp_path)
        back = get_method(self.method).load(tmp_path)
        assert back.params == fitted.params
        users = split.train.users.ids[:5]
        assert back.recommend(split.train, users, 10).equals(
            fitted.recommend(split.train, users, 10))

    def test_scores_follow_ids_on_a_re_encoded_split(self, planted, fitted: Model) -> None:
        """Another catalogue order (an unknown item id first shifts every column): each
        (user, item) keeps its score, the unknown item scores -inf, nothing is NaN."""
        _, split = planted
        train = split.train
        ids = train.items.ids
        items = IdMap(np.concatenate([[ids.min() - 1], ids]))
        shifted = InteractionMatrix.from_frame(split.split.train, users=train.users,
                                               items=items)
        users = np.arange(min(8, len(train.users)))
        a = fitted.scorer(train)(users)
        b = fitted.scorer(shifted)(users)
        assert not np.isnan(b).any()
        if self.ids_decide_scores:
            assert np.isneginf(b[:, 0]).all()
            # float32 products in another order: equal to float32 precision
            scale = float(np.abs(a[np.isfinite(a)]).max(initial=1.0))
            np.testing.assert_allclose(b[:, 1:], a, rtol=1e-4, atol=1e-5 * scale)

    def test_recommendations_exclude_seen_items_and_repeat(self, planted, fitted) -> None:
        _, split = planted
        train = split.train
        user = train.users.ids[0]
        recs = fitted.recommend(train, [user], k=10)
        assert recs.height == 10 and recs["rank"].to_list() == list(range(1, 11))
        seen = set(train.items.ids[train.ratings[0].indices])
        assert not seen & set(recs["item_id"].to_list())
        assert recs.equals(fitted.recommend(train, [user], k=10))
        with pytest.raises(DataError, match="Unknown user"):
            fitted.recommend(train, [-12345], k=10)

    def test_a_bad_parameter_value_fails_when_built(self) -> None:
        params_class = get_method(self.method).Params
        for key, value in invalid_values(params_class).items():
            with pytest.raises(DataError, match=key):
                self.build(**{key: value})
        with pytest.raises(DataError, match="no parameter"):
            self.build(no_such_parameter=1)

    def test_parameters_round_trip_through_toml(self) -> None:
        import tomli_w

        model = self.build()
        text = tomli_w.dumps({k: v for k, v in model.params.items() if v is not None})
        back = get_method(self.method)(**tomllib.loads(text))
        assert back.params == model.params

    def test_scoring_parameters_change_the_scores_not_the_fit(self, planted,
                                                              fitted: Model) -> None:
        """What the tuner relies on: a fitted model with its scoring parameters changed
        scores as a model fitted with them; and ``min_count`` leaves rarer movies out."""
        ds, split = planted
        params_class = get_method(self.method).Params
        keys = [row["name"] for row in params_class.describe()
                if params_class.spec(row["name"]).scoring]
        if not keys:
            return
        counts = split.train.item_counts()
        changes = {key: self._other_value(params_class.spec(key), fitted.params[key], counts)
                   for key in keys}
        fresh = self.build(**changes).fit(split.train, split.train_dataset(ds))
        before = fitted.p
        try:
            fitted.p = fitted.p.replace(**changes)
            users = np.arange(min(8, len(split.train.users)))
            np.testing.assert_allclose(fitted.scorer(split.train)(users),
                                       fresh.scorer(split.train)(users), rtol=1e-5)
        finally:
            fitted.p = before
        if "min_count" in changes:
            recs = fresh.recommend(split.train, split.train.users.ids[:20], k=10)
            rows = split.train.items.index(recs["item_id"].to_numpy())
            assert recs.height > 0 and (counts[rows] >= changes["min_count"]).all()

    def test_a_heavy_popularity_prior_ranks_by_popularity(self, planted,
                                                          fitted: Model) -> None:
        """``popularity`` is an item bias on the model's standardised scores: weighted
        heavily, it ranks each user's unseen movies as popularity does."""
        _, split = planted
        if "popularity" not in fitted.params:
            return
        users = split.train.users.ids[:20]
        before = fitted.p
        try:
            fitted.p = fitted.p.replace(popularity=1e4, min_count=1)
            recs = fitted.recommend(split.train, users, k=10)
        finally:
            fitted.p = before
        counts = split.train.item_counts()
        pop = get_method("pop")().fit(split.train).recommend(split.train, users, k=10)
        got = counts[split.train.items.index(recs["item_id"].to_numpy())]
        want = counts[split.train.items.index(pop["item_id"].to_numpy())]
        # the same counts in the same order (movies with equal counts may swap)
        np.testing.assert_array_equal(got, want)

    @staticmethod
    def _other_value(spec: Any, value: Any, counts: np.ndarray) -> Any:
        if spec.choices is not None:
            return next(c for c in spec.choices if c != value)
        if isinstance(value, bool):
            return not value
        if isinstance(value, float):  # popularity: a prior as heavy as the model's scores
            return 1.0
        # min_count: the median movie's count, which leaves about half of them out
        return max(2, int(np.median(counts)))

    def test_beats_random_on_the_planted_log(self, planted, fitted: Model) -> None:
        _, split = planted
        ours = evaluate_model(fitted, split)
        chance = evaluate_model(get_method("random")().fit(split.train), split)
        assert ours["ndcg@10"] > chance["ndcg@10"] + self.margin, (
            ours["ndcg@10"], chance["ndcg@10"])
