"""Typed method parameters, declared once and checked when a method is built.

Each method declares a frozen dataclass of its parameters (scikit-learn's "parameters with
their constraints", validated in one place)::

    @dataclass(frozen=True)
    class CleoraParams(EmbeddingParams):
        dim: int = param(256, "vector dimension", ge=1)
        expansion: str = param("star", "hyperedge expansion", choices=("clique", "star"))

Building it checks every value against its type, allowed choices and range, so a bad value
fails before any data is loaded or any method trains, with a message naming the method, the
parameter, what it accepts and what it got. The same declaration gives the defaults, the
TOML/JSON round trip (:meth:`Params.to_dict`/:meth:`Params.from_dict`) and the parameter
documentation (:meth:`Params.describe`).
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar, Self

from embedlens.core.errors import DataError


@dataclass(frozen=True)
class Spec:
    """What a parameter accepts, beyond its type."""

    doc: str
    choices: tuple[Any, ...] | None = None
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    log: bool = False  # spans orders of magnitude: search it on a log scale
    key: str | None = None  # the external name when the field name cannot be it ("lambda")
    tune: tuple[Any, ...] | bool | None = None  # searched: (low, high), or True: every choice
    scoring: bool = False  # changes only how a fitted model scores, not what it fits

    def constraint(self) -> str:
        """The constraint in words, e.g. ``one of 'bce', 'softmax'`` or ``> 0``."""
        if self.choices is not None:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        parts = [f"{op} {bound:g}" for op, bound in
                 ((">=", self.ge), (">", self.gt), ("<=", self.le), ("<", self.lt))
                 if bound is not None]
        return " and ".join(parts)

    def searched(self) -> str:
        """How the tuner searches it, e.g. ``64-1024, log``, ``every choice, on each fit``
        (empty: it is not searched)."""
        if self.tune is None:
            return ""
        if self.tune is True:
            text = "every choice" if self.choices is not None else "true and false"
        else:
            assert isinstance(self.tune, tuple)
            low, high = self.tune
            text = f"{low:g}-{high:g}" + (", log" if self.log else "")
        return text + (", on each fit" if self.scoring else "")


def param(default: Any, doc: str, *, choices: tuple[Any, ...] | None = None,
          ge: float | None = None, gt: float | None = None, le: float | None = None,
          lt: float | None = None, log: bool = False, key: str | None = None,
          tune: tuple[Any, ...] | bool | None = None, scoring: bool = False) -> Any:
    """A parameter field: its default, a one-line doc and its constraints. ``tune`` marks
    it for the tuner: a ``(low, high)`` range for a number (searched on a log scale when
    ``log``), ``True`` for every choice of a choice or both values of a flag. ``scoring``:
    the parameter only changes how a fitted model scores (cosine or dot, which candidates),
    so the tuner tries its values on each fit instead of fitting again for each."""
    spec = Spec(doc, choices, ge, gt, le, lt, log, key, tune, scoring)
    return field(default=default, metadata={"spec": spec})


@dataclass(frozen=True)
class Params:
    """Base of every method's parameters. Subclasses are frozen dataclasses whose fields
    are declared with :func:`param`; ``owner`` names the method in messages."""

    owner: ClassVar[str] = "method"
    #: Parameters the method no longer has, each with why: a model saved before still loads
    #: (:meth:`from_saved` drops them); a user who passes one is told why it went.
    retired: ClassVar[dict[str, str]] = {}

    def __post_init__(self) -> None:
        hints = _hints(type(self))
        for f in fields(self):
            value = getattr(self, f.name)
            checked = _check(self.owner, _key(f), hints[f.name], value, _spec(f))
            if checked is not value:
                object.__setattr__(self, f.name, checked)

    # -- names and round trip --------------------------------------------------------------
    @classmethod
    def names(cls) -> list[str]:
        """The external parameter names, in declaration order."""
        return [_key(f) for f in fields(cls)]

    @classmethod
    def has(cls, key: str) -> bool:
        """Whether the method has a parameter called ``key``."""
        return key in cls.names()

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None = None) -> Self:
        """Build from external names (TOML, JSON, ``-p key=value``); unknown names and bad
        values raise :class:`DataError`."""
        values = dict(values or {})
        by_key = {_key(f): f.name for f in fields(cls)}
        for key in sorted(set(values) & set(cls.retired) - set(by_key)):
            raise DataError(f"{cls.owner} no longer has {key}: {cls.retired[key]} Remove it.")
        unknown = sorted(set(values) - set(by_key))
        if unknown:
            raise DataError(f"{cls.owner} has no parameter(s) {', '.join(unknown)}; known: "
                            f"{', '.join(sorted(by_key)) or 'none'}.")
        return cls(**{by_key[k]: v for k, v in values.items()})

    @classmethod
    def from_saved(cls, values: Mapping[str, Any]) -> Self:
        """:meth:`from_dict` for parameters a model was saved with, by this or an earlier
        version: retired ones are dropped."""
        return cls.from_dict({k: v for k, v in values.items() if k not in cls.retired})

    def to_dict(self) -> dict[str, Any]:
        """Every parameter by its external name."""
        return {_key(f): getattr(self, f.name) for f in fields(self)}

    def replace(self, **changes: Any) -> Self:
        """A copy with some parameters changed (external names), validated again."""
        return type(self).from_dict({**self.to_dict(), **changes})

    @classmethod
    def describe(cls) -> list[dict[str, Any]]:
        """One row per parameter: name, type, default, constraint, doc, searched (how the
        tuner searches it: :meth:`Spec.searched`)."""
        hints = _hints(cls)
        rows = []
        for f in fields(cls):
            spec = _spec(f)
            rows.append({"name": _key(f), "type": _type_name(hints[f.name]),
                         "default": None if f.default is MISSING else f.default,
                         "constraint": spec.constraint(), "doc": spec.doc,
                         "searched": spec.searched()})
        return rows

    @classmethod
    def search_space(cls) -> dict[str, Spec]:
        """The parameters the tuner searches, by external name, with their :class:`Spec`."""
        return {_key(f): _spec(f) for f in fields(cls) if _spec(f).tune is not None}

    @classmethod
    def spec(cls, key: str) -> Spec:
        """The :class:`Spec` of the parameter called ``key``."""
        for f in fields(cls):
            if _key(f) == key:
                return _spec(f)
        raise DataError(f"{cls.owner} has no parameter {key}.")


def _spec(f: Any) -> Spec:
    return f.metadata.get("spec") or Spec("")


def _key(f: Any) -> str:
    return _spec(f).key or f.name


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _type_name(tp: Any) -> str:
    args = typing.get_args(tp)
    if args:
        return " or ".join("none" if a is type(None) else a.__name__ for a in args)
    return tp.__name__


def _check(owner: str, key: str, tp: Any, value: Any, spec: Spec) -> Any:
    """``value`` checked (and ints widened to float where a float is declared)."""
    allowed = typing.get_args(tp) if isinstance(tp, types.UnionType) else (tp,)
    if value is None:
        if type(None) in allowed:
            return None
        raise DataError(f"{owner} parameter {key} must be {_type_name(tp)}, got none.")
    base = next((a for a in allowed if a is not type(None)), tp)
    value = _coerce(owner, key, base, value)
    if spec.choices is not None and value not in spec.choices:
        raise DataError(f"{owner} parameter {key} must be {spec.constraint()}, got {value!r}.")
    if base in (int, float):
        for ok, bound in ((spec.ge is None or value >= spec.ge, spec.ge),
                          (spec.gt is None or value > spec.gt, spec.gt),
                          (spec.le is None or value <= spec.le, spec.le),
                          (spec.lt is None or value < spec.lt, spec.lt)):
            if not ok and bound is not None:
                raise DataError(f"{owner} parameter {key} must be {spec.constraint()}, "
                                f"got {value!r}.")
    return value


def _coerce(owner: str, key: str, base: type, value: Any) -> Any:
    def wrong() -> DataError:
        what = {bool: "true or false", int: "an integer", float: "a number",
                str: "a string"}.get(base, base.__name__)
        return DataError(f"{owner} parameter {key} must be {what}, got {value!r} "
                         f"({type(value).__name__}).")

    if base is bool:
        if not isinstance(value, bool):
            raise wrong()
        return value
    if base is int:
        if isinstance(value, bool):
            raise wrong()
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if not isinstance(value, int):
            raise wrong()
        return value
    if base is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise wrong()
        if not math.isfinite(value):
            raise DataError(f"{owner} parameter {key} must be a finite number, got {value!r}.")
        return value if isinstance(value, float) else float(value)
    if base is str:
        if not isinstance(value, str):
            raise wrong()
        return value
    return value
