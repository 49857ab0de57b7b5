"""Tuned parameters shipped for the MovieLens variants the project measures on.

Each preset (``<dataset>__<protocol>.toml``) holds, per method and baseline, the parameters
``embedlens tune`` found best on the validation split cut from that protocol's train part
(never its test part), and a ``[meta]`` table saying how they were made.
``benchmarks/make_presets.py`` re-creates them with one command. ``embedlens run`` uses the
preset of its dataset and protocol unless ``--no-preset``; parameters a config gives win.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Any


def preset_name(dataset: str, protocol: str) -> str:
    """The file a preset for ``dataset`` and ``protocol`` lives in."""
    return f"{dataset}__{protocol}.toml"


@cache
def load_preset(dataset: str, protocol: str) -> dict[str, Any] | None:
    """The preset (``{"meta": {...}, "params": {method: {...}}}``), or None if none ships."""
    path = resources.files(__package__).joinpath(preset_name(dataset, protocol))
    if not path.is_file():
        return None
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return {"meta": dict(data.get("meta", {})), "params": dict(data.get("params", {}))}


def preset_note(preset: dict[str, Any]) -> str:
    """One sentence saying which shipped preset a run used and how it was made."""
    from embedlens.app.tune import budget_text

    meta = preset["meta"]
    return (f"Parameters: the tuned preset for {meta.get('dataset')}, {meta.get('protocol')} "
            f"(each method searched on a validation split cut from train, "
            f"{budget_text(meta.get('trials'), meta.get('timeout_seconds'))}, made "
            f"{meta.get('made')}: `{meta.get('command')}`); --no-preset runs the defaults.")
