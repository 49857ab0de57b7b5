"""Every method and baseline, by the name the command line uses."""

from __future__ import annotations

from embedlens.errors import unknown_name
from embedlens.models.base import EmbeddingModel, ImportedModel, Model
from embedlens.models.baselines import ALSModel, EASEModel, PopularityModel, RandomModel
from embedlens.models.cleora import CleoraModel
from embedlens.models.eges import EGESModel
from embedlens.models.neural import RatingModel, TwoTowerModel
from embedlens.models.text import TextModel
from embedlens.models.walk import DeepWalkModel, Node2VecModel

MODELS: dict[str, type[Model]] = {
    cls.name: cls
    for cls in (
        RandomModel, PopularityModel, EASEModel, ALSModel, ImportedModel, CleoraModel,
        Node2VecModel, DeepWalkModel, TwoTowerModel, RatingModel, TextModel, EGESModel,
    )
}
BASELINES = ("random", "pop", "ease", "als")


def get_model_class(name: str) -> type[Model]:
    """The model class registered under ``name`` (e.g. ``"pop"``, ``"cleora"``)."""
    if name not in MODELS:
        raise unknown_name("method", name, list(MODELS))
    return MODELS[name]


__all__ = ["BASELINES", "MODELS", "EmbeddingModel", "Model", "get_model_class"]
