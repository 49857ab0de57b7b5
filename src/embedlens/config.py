"""The TOML configuration of ``embedlens run``: what to train, on which data and split.

A config file looks like::

    dataset = "ml-100k"
    data_dir = "../shared/movielens"      # optional: local copies, no download
    protocol = "user-time-0.2"
    methods = ["cleora", "two-tower"]     # or "all"
    baselines = ["random", "pop", "ease"]
    seed = 42
    k = 10

    [params.two-tower]
    epochs = 10

The run directory gets the *resolved* config (every parameter of every method written out,
data_dir made absolute), so ``embedlens run --config RUN/config.toml`` repeats the run even
after a default changes.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from embedlens.errors import DataError
from embedlens.prep.protocols import DEFAULT_PROTOCOL, get_protocol

#: The learned methods ``--methods all`` trains, in the order they run.
ALL_METHODS = ("cleora", "node2vec", "deepwalk", "eges", "two-tower", "rating-mf", "text")
#: The yardsticks every run scores on the same split.
DEFAULT_BASELINES = ("random", "pop", "ease")


@dataclass
class RunConfig:
    """Everything that decides the numbers of an ``embedlens run``."""

    dataset: str = "ml-100k"
    data_dir: str | None = None
    protocol: str = DEFAULT_PROTOCOL
    methods: list[str] = field(default_factory=lambda: list(ALL_METHODS))
    baselines: list[str] = field(default_factory=lambda: list(DEFAULT_BASELINES))
    seed: int = 42
    k: int = 10
    params: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.methods, str):
            self.methods = parse_methods(self.methods)
        if isinstance(self.baselines, str):
            self.baselines = [b for b in self.baselines.split(",") if b.strip()]
        self.methods = [m.strip() for m in self.methods]
        self.baselines = [b.strip() for b in self.baselines]
        self.validate()

    @property
    def all_methods(self) -> list[str]:
        """Baselines first (cheap yardsticks), then the learned methods; no repeats."""
        return list(dict.fromkeys([*self.baselines, *self.methods]))

    def validate(self) -> None:
        """Fail before any training on a bad name, value or parameter."""
        from embedlens.models import get_model_class

        get_protocol(self.protocol)
        if not self.all_methods:
            raise DataError("The config names no method and no baseline to run.")
        if self.k < 1:
            raise DataError(f"k must be at least 1, got {self.k}.")
        for name in self.all_methods:
            get_model_class(name)(**self.method_params(name))  # unknown parameters raise
        # [params.x] of a method not run now is kept (one file can serve several --methods)
        # but must still name a method, so a typo is not silently ignored.
        for name in self.params:
            get_model_class(name)

    def method_params(self, name: str) -> dict[str, Any]:
        """The parameters ``name`` runs with: the config's seed unless the method sets one."""
        from embedlens.models import get_model_class

        params = dict(self.params.get(name, {}))
        if "seed" in get_model_class(name).defaults:
            params.setdefault("seed", self.seed)
        return params

    @classmethod
    def from_toml(cls, path: str | Path) -> RunConfig:
        """Read a config file; unknown keys are an error, not silently ignored."""
        path = Path(path)
        if not path.is_file():
            raise DataError(f"No such config file: {path}")
        try:
            raw = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise DataError(f"{path} is not valid TOML: {exc}") from None
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise DataError(
                f"{path}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}."
            )
        params = raw.get("params", {})
        if not isinstance(params, dict) or not all(isinstance(v, dict) for v in params.values()):
            raise DataError(f"{path}: [params.<method>] tables expected under 'params'.")
        return cls(**raw)

    def to_toml(self, path: str | Path) -> Path:
        """Write the config. TOML has no null, so ``None`` values are left out; reading the
        file back gives them their default, which is ``None`` for every parameter that has one.
        """
        import tomli_w

        data = _drop_none(asdict(self))
        path = Path(path)
        path.write_text(tomli_w.dumps(data))
        return path


def parse_methods(spec: str) -> list[str]:
    """``"all"`` or a comma-separated list of method names."""
    names = [m.strip() for m in spec.split(",") if m.strip()]
    if names == ["all"]:
        return list(ALL_METHODS)
    if "all" in names:
        raise DataError("'all' cannot be combined with other method names.")
    return names


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    return value
