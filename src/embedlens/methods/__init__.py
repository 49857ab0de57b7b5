"""Methods: the model base, typed parameters, capabilities and the registry of every
method and baseline (one sub-package per method)."""

from embedlens.methods.base import (
    ColdStart,
    EmbeddingModel,
    EmbeddingParams,
    ItemVectors,
    Model,
    RatingPredictor,
    UserVectors,
    can,
)
from embedlens.methods.registry import (
    all_methods,
    default_baselines,
    get_method,
    method_names,
)

__all__ = [
    "ColdStart",
    "EmbeddingModel",
    "EmbeddingParams",
    "ItemVectors",
    "Model",
    "RatingPredictor",
    "UserVectors",
    "all_methods",
    "can",
    "default_baselines",
    "get_method",
    "method_names",
]
