"""The one list of methods: the names the command line uses, mapped to classes imported only
when used (so naming a baseline never imports torch).

Other packages add methods without editing embedlens, through the entry-point group
``embedlens.methods`` (``name = "package.module:Class"``, the class a
:class:`~embedlens.methods.base.Model` whose ``name`` is that name); ``embedlens methods``
lists them and every command takes them by name. ``--methods all`` and the default
baselines come from :func:`all_methods` and :func:`default_baselines`, nowhere else.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from embedlens.core.errors import EmbedlensError, unknown_name

if TYPE_CHECKING:
    from embedlens.methods.base import Model

ENTRY_POINT_GROUP = "embedlens.methods"


@dataclass(frozen=True)
class Entry:
    """A registered method: where its class lives and what role it plays."""

    name: str
    target: str  # "package.module:Class"
    role: str  # "method", "baseline", or "import" (vectors made elsewhere)
    in_default_run: bool  # trained by `--methods all` / among the default baselines
    source: str = "embedlens"


_BUILTIN = (
    Entry("random", "embedlens.methods.baselines.random:RandomModel", "baseline", True),
    Entry("pop", "embedlens.methods.baselines.popularity:PopularityModel", "baseline", True),
    Entry("ease", "embedlens.methods.baselines.ease:EASEModel", "baseline", True),
    Entry("als", "embedlens.methods.baselines.als:ALSModel", "baseline", False),
    Entry("cleora", "embedlens.methods.cleora.model:CleoraModel", "method", True),
    Entry("node2vec", "embedlens.methods.walks.model:Node2VecModel", "method", True),
    Entry("deepwalk", "embedlens.methods.walks.model:DeepWalkModel", "method", True),
    Entry("eges", "embedlens.methods.eges.model:EGESModel", "method", True),
    Entry("two-tower", "embedlens.methods.two_tower.model:TwoTowerModel", "method", True),
    Entry("rating-mf", "embedlens.methods.rating_mf.model:RatingModel", "method", True),
    Entry("text", "embedlens.methods.text.model:TextModel", "method", True),
    Entry("ials", "embedlens.methods.ials.model:IALSModel", "method", True),
    Entry("elsa", "embedlens.methods.elsa.model:ELSAModel", "method", True),
    Entry("ease-lowrank", "embedlens.methods.ease_lowrank.model:EASELowRankModel", "method",
          True),
    Entry("imported", "embedlens.methods.base:ImportedModel", "import", False),
)


@cache
def entries() -> dict[str, Entry]:
    """Every registered method by name: the built-in ones, then those of installed plugins
    (a plugin may not reuse a built-in name)."""
    from importlib.metadata import entry_points

    found = {e.name: e for e in _BUILTIN}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in found:
            continue  # a built-in name always means the built-in method
        dist = getattr(ep, "dist", None)
        found[ep.name] = Entry(ep.name, ep.value, "method", False,
                               dist.name if dist is not None else "plugin")
    return found


def get_method(name: str) -> type[Model]:
    """The class registered under ``name`` (e.g. ``"pop"``, ``"cleora"``), imported now."""
    known = entries()
    if name not in known:
        raise unknown_name("method", name, list(known))
    return _load(known[name])


@cache
def _load(entry: Entry) -> type[Model]:
    from embedlens.methods.base import Model

    module, _, attr = entry.target.partition(":")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise EmbedlensError(f"Method {entry.name!r} ({entry.target}, from {entry.source}) "
                             f"cannot be loaded: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, Model)) or cls.name != entry.name:
        raise EmbedlensError(f"{entry.target} (from {entry.source}) is not an embedlens Model "
                             f"named {entry.name!r}.")
    return cls


def method_names(role: str | None = None) -> list[str]:
    """Registered names, optionally only those of one ``role``."""
    return [n for n, e in entries().items() if role is None or e.role == role]


def all_methods() -> tuple[str, ...]:
    """What ``--methods all`` trains, in the order it runs."""
    return tuple(e.name for e in _BUILTIN if e.role == "method" and e.in_default_run)


def default_baselines() -> tuple[str, ...]:
    """The yardsticks every run scores on the same split unless told otherwise."""
    return tuple(e.name for e in _BUILTIN if e.role == "baseline" and e.in_default_run)


def role_of(name: str) -> str:
    """"method", "baseline" or "import" (an unknown name raises)."""
    known = entries()
    if name not in known:
        raise unknown_name("method", name, list(known))
    return known[name].role
