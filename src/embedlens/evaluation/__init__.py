"""Evaluation: the encoded split, the typed result, and the cold-start protocol.

The metric definitions themselves (one each, RePlay's) are pure functions in
:mod:`embedlens.kernels.metrics`: methods that stop early on a validation metric use them
too, and data flows one way, so they sit below the methods."""

from embedlens.evaluation.evaluate import EvalResult, evaluate_model
from embedlens.evaluation.splits import EvalSplit

__all__ = ["EvalResult", "EvalSplit", "evaluate_model"]
