"""The common base every method and baseline implements (implicit-style).

A model is fitted on an :class:`InteractionMatrix` (the encoded train split, plus the dataset
for side information), then produces a *scorer* whose columns follow any train matrix's items,
so a saved model can be scored on a re-created split. Embedding methods subclass
:class:`EmbeddingModel` and only have to produce item (and optionally user) vectors.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

import numpy as np
import polars as pl

from embedlens.core.embeddings import Embeddings, l2_normalize
from embedlens.core.errors import DataError
from embedlens.core.files import read_json_object, write_json
from embedlens.core.interactions import InteractionMatrix
from embedlens.core.params import Params, param
from embedlens.core.params import Params as ParamsBase
from embedlens.data.dataset import Dataset
from embedlens.kernels.aggregate import AGGREGATIONS, user_embeddings
from embedlens.kernels.topk import Scorer, dot_scorer, prior_scorer, topk

MODEL_FILE = "model.json"


@runtime_checkable
class ItemVectors(Protocol):
    """Has one vector per item (for neighbours, maps, export)."""

    def item_vectors(self) -> Embeddings: ...


@runtime_checkable
class UserVectors(Protocol):
    """Has one vector per user of a train matrix (learned, or derived from items)."""

    def user_vectors(self, train: InteractionMatrix) -> Embeddings: ...


@runtime_checkable
class ColdStart(Protocol):
    """Places a movie nobody has rated, from its side information."""

    def coldstart(self, genres: list[str] | None = None, tags: list[str] | None = None,
                  year: int | None = None, title: str | None = None) -> np.ndarray: ...


@runtime_checkable
class RatingPredictor(Protocol):
    """Predicts ratings for (user id, item id) pairs."""

    def predict_ratings(self, user_ids: np.ndarray, item_ids: np.ndarray) -> np.ndarray: ...


#: The capabilities a query can need, by the name the command line uses.
CAPABILITIES: dict[str, type] = {"items": ItemVectors, "users": UserVectors,
                                 "coldstart": ColdStart, "ratings": RatingPredictor}


def place_unseen(model: ColdStart, movies: list[dict[str, Any]], dim: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Vectors for movies nobody has rated (each a dict of :meth:`ColdStart.coldstart`'s
    keyword arguments) and whether each could be placed (zeros where not). A model with a
    ``coldstart_many`` (the text encoder, which encodes them in one batch and reads its
    cache once) places them all at once; others one ``coldstart`` call each."""
    many = getattr(model, "coldstart_many", None)
    if many is not None:
        return many(movies)
    vectors, ok = np.zeros((len(movies), dim), dtype=np.float32), np.zeros(len(movies), bool)
    for row, movie in enumerate(movies):
        try:
            vectors[row] = model.coldstart(**movie)
            ok[row] = True
        except DataError:  # nothing known about this movie: it cannot be placed
            pass
    return vectors, ok


def can(model: object, capability: str) -> bool:
    """Whether a model (or model class) has ``capability`` ("items", "users", "coldstart",
    "ratings")."""
    protocol = CAPABILITIES[capability]
    return issubclass(model, protocol) if isinstance(model, type) else isinstance(model,
                                                                                   protocol)


@dataclass(frozen=True)
class NoParams(Params):
    """A method without parameters."""


class Model(ABC):
    """Base of all recommenders: ``fit``, ``scorer``, ``recommend``, ``save``/``load``.

    Parameters are a frozen dataclass (``Params``, see :mod:`embedlens.core.params`), checked when
    the model is built: ``Model(dim=64)`` or ``Model(params)``. ``self.p`` is that dataclass;
    ``self.params`` the same as a plain dict (what ``model.json`` stores).
    """

    name: ClassVar[str] = "model"
    #: A run fits these methods before the others (see ``RunConfig.all_methods``).
    fit_early: ClassVar[bool] = False
    #: Whether a run ranks the method for warm users on its leaderboard. False: a method
    #: made to place movies nobody has rated (text), judged on the run's cold-start board
    #: alone; the run still fits and saves it for queries and judges its nearest movies.
    warm_ranked: ClassVar[bool] = True
    #: Whether most of the method's fit runs on one core (a sequential SGD kernel that
    #: releases the GIL): a run then fits its cold-start model beside the warm one, on the
    #: core the fit leaves idle.
    fits_on_one_core: ClassVar[bool] = False
    Params: ClassVar[type[ParamsBase]] = NoParams

    def __init__(self, params: ParamsBase | None = None, /, **values: Any) -> None:
        if params is not None:
            if values or not isinstance(params, self.Params):
                raise DataError(f"{self.name} takes one {self.Params.__name__} or keyword "
                                "parameters, not both.")
            self.p: Any = params
        else:
            self.p = self.Params.from_dict(values)
        self.history: dict[str, list[float]] = {}

    @property
    def params(self) -> dict[str, Any]:
        """Every parameter by name (a copy; the model's own are frozen)."""
        return self.p.to_dict()

    @abstractmethod
    def fit(self, train: InteractionMatrix, dataset: Dataset | None = None) -> Self:
        """Learn from the train interactions (and the dataset's side tables, if used)."""

    def refusal(self, n_users: int, n_items: int) -> str | None:
        """Why this model, with its parameters, will not fit a train matrix of this shape
        (None: it will). ``fit`` raises with this message; a run asks first, to leave a
        default baseline out instead of failing (EASE above its ``max_items``)."""
        return None

    @abstractmethod
    def scorer(self, train: InteractionMatrix) -> Scorer:
        """Score rows ``users`` (indices into ``train.users``) against ``train.items``."""

    def recommend(
        self, train: InteractionMatrix, user_ids: list | np.ndarray, k: int = 10,
        exclude_seen: bool = True, scorer: Scorer | None = None,
    ) -> pl.DataFrame:
        """Top-``k`` items per user id: columns user_id, rank, item_id, score. ``scorer``:
        this model's ``scorer(train)``, built once by a caller that asks many times (a
        server), since building it may derive every user's vector."""
        user_ids = np.asarray(user_ids)
        rows = train.users.index(user_ids)
        if (rows < 0).any():
            missing = user_ids[rows < 0][:5].tolist()
            raise DataError(f"Unknown user id(s) {missing}: not in the train data.")
        items, scores = topk(
            scorer or self.scorer(train), rows, len(train.items), k,
            exclude=train.ratings if exclude_seen else None,
        )
        valid = items >= 0
        return pl.DataFrame({
            "user_id": np.repeat(user_ids, k)[valid.ravel()],
            "rank": np.tile(np.arange(1, k + 1), len(user_ids))[valid.ravel()],
            "item_id": train.items.ids[items[valid]],
            "score": scores[valid].astype(np.float64),
        })

    # -- persistence ----------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        """Write the model's state, then ``model.json`` (parameters, history), each file
        atomically."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self._save_state(directory)
        state = {"name": self.name, "params": self.params, "history": self.history}
        write_json(directory / MODEL_FILE, state)

    @classmethod
    def load(cls, directory: str | Path) -> Self:
        """Read a model written by :meth:`save`; a damaged or foreign ``model.json`` is one
        clear :class:`DataError`."""
        directory = Path(directory)
        path = directory / MODEL_FILE
        state = read_json_object(path, "model file", ("params",))
        if not isinstance(state["params"], dict):
            raise DataError(f"{path}: 'params' must be an object.")
        if state.get("name", cls.name) != cls.name:
            raise DataError(f"{path} holds a {state['name']!r} model, not {cls.name}.")
        try:
            model = cls(cls.Params.from_saved(state["params"]))
        except DataError as exc:
            raise DataError(f"{path}: {exc}") from None
        history = state.get("history", {})
        model.history = history if isinstance(history, dict) else {}
        model._load_state(directory)
        return model

    def _save_state(self, directory: Path) -> None:  # noqa: B027 - optional hook
        """Write learned arrays (subclasses that learn any)."""

    def _load_state(self, directory: Path) -> None:  # noqa: B027 - optional hook
        """Read learned arrays (subclasses that learn any)."""


def aggregation_param(default: str = "mean", tune: bool = False) -> Any:
    """The ``aggregation`` parameter, with a method's own default; ``tune`` where it
    matters: in methods whose users are derived from their movies (not learned)."""
    return param(default, "user vector when none is learned: the mean, rating- or "
                 "recency-weighted mean of the user's train items", choices=AGGREGATIONS,
                 tune=tune or None, scoring=True)


def similarity_param(default: str = "dot") -> Any:
    """The ``similarity`` parameter, with a method's own default."""
    return param(default, "user-item score: dot product or cosine", choices=("dot", "cosine"),
                 tune=True, scoring=True)


def min_count_param() -> Any:
    """The ``min_count`` parameter: a floor on the movies a model recommends (searched by the
    tuner for every model that ranks by its own scores, baselines included)."""
    return param(1, "recommend only movies with at least this many train interactions "
                 "(gensim's min_count, on the candidates: every movie keeps its vector)",
                 ge=1, log=True, tune=(1, 100), scoring=True)


def candidates(train: InteractionMatrix, min_count: int) -> np.ndarray | None:
    """Which of ``train``'s items may be recommended under ``min_count`` (None: all)."""
    if min_count <= 1:
        return None
    return train.item_counts() >= min_count


def popularity_param() -> Any:
    """The ``popularity`` parameter: the weight of a popularity prior on a model's scores
    (searched by the tuner for every model that ranks by its own scores, baselines
    included; see :func:`with_popularity`)."""
    return param(0.0, "weight of a popularity prior: each user's scores standardised, plus "
                 "this times the movie's standardised log train count (0: the model alone)",
                 ge=0.0, tune=(0.0, 2.0), scoring=True)


def with_popularity(scorer: Scorer, train: InteractionMatrix, weight: float) -> Scorer:
    """``scorer`` with a popularity prior of ``weight``: an item bias, the movie's log train
    count standardised over ``train``'s movies, added to each user's standardised scores.
    Why: a user's vector says what they like, not how likely a movie is to be seen at all;
    the bias is what matrix factorisation learns as b_i, here one weight the tuner picks."""
    if weight == 0:
        return scorer
    counts = np.log1p(train.item_counts().astype(np.float64))
    spread = counts.std()
    return prior_scorer(scorer, (counts - counts.mean()) / (spread if spread > 0 else 1.0),
                        weight)


def seed_param(default: int = 42) -> Any:
    """The ``seed`` parameter (a run's seed reaches every method that has one)."""
    return param(default, "random seed: the same seed gives the same vectors", ge=0)


def device_param(default: str = "auto") -> Any:
    """The torch ``device``: "auto" takes a GPU when torch sees one."""
    return param(default, "where torch trains: auto (GPU when present), cpu or cuda",
                 choices=("auto", "cpu", "cuda"))


@dataclass(frozen=True)
class EmbeddingParams(Params):
    """How every embedding method turns its vectors into scores: scoring parameters, which
    the tuner tries on each fit (see :func:`embedlens.core.params.param`)."""

    aggregation: str = aggregation_param()
    similarity: str = similarity_param()
    center: bool = param(False, "subtract the mean item vector before scoring", tune=True,
                         scoring=True)
    min_count: int = min_count_param()
    popularity: float = popularity_param()


class EmbeddingModel(Model):
    """A model whose score is user · item over learned (or derived) vectors.

    Subclasses set ``item_embeddings`` (and ``user_embeddings`` when they learn users) in
    ``fit``; their ``Params`` extend :class:`EmbeddingParams`. Without user vectors, each
    user is the ``aggregation`` of their train items. ``similarity`` "cosine" scores on unit
    vectors; ``center`` subtracts the item mean first; ``min_count`` leaves movies with fewer
    train interactions out of the candidates; ``popularity`` adds a popularity prior to each
    user's standardised scores (:func:`with_popularity`).
    """

    Params: ClassVar[type[ParamsBase]] = EmbeddingParams

    def __init__(self, params: ParamsBase | None = None, /, **values: Any) -> None:
        super().__init__(params, **values)
        self.item_embeddings: Embeddings | None = None
        self.user_embeddings: Embeddings | None = None

    def item_vectors(self) -> Embeddings:
        """The item vectors as the method scores them (mean-centred when ``center``)."""
        if self.item_embeddings is None:
            raise DataError(f"{self.name} is not fitted: no item embeddings yet.")
        items = self.item_embeddings
        items.source = items.source or self.name
        return items.centered() if self.p.center else items

    def user_vectors(self, train: InteractionMatrix) -> Embeddings:
        """The user vectors: learned ones, or the aggregation of each user's train items."""
        if self.user_embeddings is not None:
            return self.user_embeddings
        return user_embeddings(self.item_vectors(), train, self.p.aggregation)

    def ranked_vectors(self) -> Embeddings:
        """The movie vectors users are scored against: the item vectors, unless a method
        ranks by others (EGES: its context vectors)."""
        return self.item_vectors()

    def scorer(self, train: InteractionMatrix) -> Scorer:
        v, item_ok = self.ranked_vectors().aligned(train.items.ids)
        u, user_ok = self.user_vectors(train).aligned(train.users.ids)
        if self.p.similarity == "cosine":
            u, v = l2_normalize(u), l2_normalize(v)
        floor = candidates(train, self.p.min_count)
        scorer = dot_scorer(u, v, user_ok, item_ok if floor is None else item_ok & floor)
        return with_popularity(scorer, train, self.p.popularity)

    def similar_items(self, item: object, k: int = 10) -> pl.DataFrame:
        """Nearest movies to an item id or title by cosine. (Ranking for users may use dot
        products; between items, raw dot products mostly rank by vector length.)"""
        return self.item_vectors().most_similar(item, k, metric="cosine")

    def _save_state(self, directory: Path) -> None:
        self._items_raw().save(directory / "items.parquet")
        if self.user_embeddings is not None:
            self.user_embeddings.save(directory / "users.parquet")

    def _items_raw(self) -> Embeddings:
        if self.item_embeddings is None:
            raise DataError(f"{self.name} is not fitted: nothing to save.")
        return self.item_embeddings

    def _load_state(self, directory: Path) -> None:
        self.item_embeddings = Embeddings.load(directory / "items.parquet")
        users = directory / "users.parquet"
        self.user_embeddings = Embeddings.load(users) if users.is_file() else None


def item_metadata(dataset: Dataset | None) -> pl.DataFrame | None:
    """The (item_id, title, genres) table to attach to item embeddings, if the data has one."""
    if dataset is None or dataset.items is None:
        return None
    return dataset.items.select("item_id", "title", "genres")


@dataclass(frozen=True)
class ImportedParams(EmbeddingParams):
    owner: ClassVar[str] = "imported"
    similarity: str = similarity_param("cosine")


class ImportedModel(EmbeddingModel):
    """Embeddings made elsewhere (a Cleora ``.out`` or word2vec file), scored like ours."""

    name = "imported"
    Params = ImportedParams

    @classmethod
    def from_embeddings(cls, items: Embeddings, **params: Any) -> ImportedModel:
        model = cls(**params)
        model.item_embeddings = items
        return model

    def fit(self, train: InteractionMatrix, dataset: Dataset | None = None) -> Self:
        raise DataError("Imported embeddings are not trained here; load them from a file.")
