"""embedlens: movie and user embeddings from interaction logs, evaluated on one protocol.

The public API, importable from here (each name loads its module on first use, so
``import embedlens`` stays light and never imports torch)::

    from embedlens import load_movielens, EvalSplit, get_method, evaluate_model

    ml = load_movielens("ml-100k", data_dir="../shared/movielens")
    data = EvalSplit.prepare(ml, "user-time-0.2")
    model = get_method("cleora")().fit(data.train, data.train_dataset(ml))
    print(evaluate_model(model, data)["ndcg@10"])
    model.item_vectors().most_similar("star wars")

The layers, one folder each, data flowing one way: ``core`` (errors, parameters, ids,
interactions, embeddings, files) -> ``kernels`` (numba/numpy building blocks) -> ``data``
(loaders) -> ``prep`` (filters, splitters, protocols) -> ``methods`` -> ``evaluation`` ->
``io`` (run records, formats, folders) -> ``app`` (config, pipeline, report, command line);
``testing`` holds the contract every method passes.
"""

from __future__ import annotations

import importlib
from typing import Any

from embedlens.core.threads import configure_pools

configure_pools()  # before torch, numba or a BLAS loads: see embedlens.core.threads

__version__ = "0.1.0"

_API = {
    # data
    "Dataset": "embedlens.data", "load_dataset": "embedlens.data",
    "load_log": "embedlens.data", "load_movielens": "embedlens.data",
    "synthetic_movielens": "embedlens.data",
    # preparation
    "KCoreFilter": "embedlens.prep", "MinCountFilter": "embedlens.prep",
    "RatingFilter": "embedlens.prep", "PROTOCOLS": "embedlens.prep",
    "get_protocol": "embedlens.prep",
    # core containers
    "Embeddings": "embedlens.core.embeddings", "InteractionMatrix": "embedlens.core.interactions",
    "IdMap": "embedlens.core.ids", "EmbedlensError": "embedlens.core.errors",
    "DataError": "embedlens.core.errors",
    # methods
    "Model": "embedlens.methods", "EmbeddingModel": "embedlens.methods",
    "get_method": "embedlens.methods", "method_names": "embedlens.methods",
    # evaluation
    "EvalSplit": "embedlens.evaluation", "EvalResult": "embedlens.evaluation",
    "evaluate_model": "embedlens.evaluation",
    # runs
    "RunConfig": "embedlens.app.config", "run_all": "embedlens.app.pipeline",
    "train_run": "embedlens.app.train", "evaluate_run": "embedlens.app.train",
    "load_run": "embedlens.io.runs",
}

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name in _API:
        value = getattr(importlib.import_module(_API[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'embedlens' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
