"""Every registered method and baseline passes the shared contract on the planted log
(``embedlens.testing.MethodContract``, the same one a third-party method runs)."""

from __future__ import annotations

import importlib.util

from embedlens.methods.registry import method_names
from embedlens.testing import MethodContract

#: Settings that keep each method fast on the planted log (about 5,800 ratings).
FAST = {
    "als": {"factors": 16, "iterations": 5},
    "cleora": {"dim": 32},
    "node2vec": {"min_rating": 4.0, "min_weight": 0.0, "dim": 16},
    "deepwalk": {"dim": 16},
    "two-tower": {"epochs": 10, "batch_size": 128, "device": "cpu", "dim": 16},
    "rating-mf": {"epochs": 10, "device": "cpu", "dim": 8},
    "eges": {"dim": 16},
    "text": {"cache": False, "device": "cpu"},
    "ials": {"dim": 16, "epochs": 8},
    "elsa": {"dim": 32, "epochs": 10, "batch_size": 64, "device": "cpu"},
    "ease-lowrank": {"dim": 32},
}
#: How far above Random each must rank (NDCG@10). Random itself is the floor; rating-mf
#: ranks by rating-trained vectors and text by titles and genres, so both stay modest.
MARGIN = {"random": -1.0, "rating-mf": 0.02, "text": 0.02}


def _contract(name: str) -> type:
    marks = {"__module__": __name__, "method": name, "params": FAST.get(name, {}),
             "margin": MARGIN.get(name, 0.05), "ids_decide_scores": name != "random"}
    return type(f"TestContract_{name.replace('-', '_')}", (MethodContract,), marks)


for _name in method_names():
    if _name == "imported":  # vectors made elsewhere: nothing to fit
        continue
    if _name == "als" and importlib.util.find_spec("implicit") is None:
        continue  # the optional extra is not installed
    globals()[f"TestContract_{_name.replace('-', '_')}"] = _contract(_name)
