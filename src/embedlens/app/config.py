"""The TOML configuration of ``embedlens run``: what to train, on which data and split.

A config file looks like::

    dataset = "ml-100k"                   # or a log file: "clicks.csv"
    data_dir = "../shared/movielens"      # optional: local copies, no download
    protocol = "user-time-0.2"
    methods = ["cleora", "two-tower"]     # or "all"
    baselines = ["random", "pop", "ease"]
    seed = 42
    k = 10
    columns = { user = "uid", item = "sku", rating = "", timestamp = "ts" }   # logs only

    [params.two-tower]
    epochs = 10

Every value is checked when the config is built (types, names, and every method's
parameter values), so a bad config fails before anything trains. The run directory gets the
*resolved* config (every parameter of every method written out, data_dir made absolute), so
``embedlens run --config RUN/config.toml`` repeats the run even after a default changes.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from embedlens.core.errors import DataError
from embedlens.core.files import write_text
from embedlens.methods.registry import all_methods, default_baselines, get_method
from embedlens.prep.protocols import DEFAULT_PROTOCOL, get_protocol


class DefaultBaselines(list[str]):
    """The default baselines: a list that remembers nobody chose it (it survives
    ``dataclasses.replace``; a config file's or the command line's list is a plain one)."""


@dataclass
class RunConfig:
    """Everything that decides the numbers of an ``embedlens run``."""

    dataset: str = "ml-100k"
    data_dir: str | None = None
    protocol: str = DEFAULT_PROTOCOL
    methods: list[str] = field(default_factory=lambda: list(all_methods()))
    #: the default baselines (random, pop, ease) are a DefaultBaselines list: a run leaves
    #: out one of them that refuses the data (EASE above its max_items), with a note;
    #: baselines a user names always run (and fail with their message)
    baselines: list[str] = field(default_factory=lambda: DefaultBaselines(default_baselines()))
    seed: int = 42
    k: int = 10
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    columns: dict[str, str | None] | None = None
    tune_trials: int | None = None
    tune_timeout: float | None = None
    seeds: int = 1
    preset: bool = True
    #: default baselines a run left out, each with the reason (not part of the config file:
    #: the resolved config names the baselines that ran)
    left_out: dict[str, str] = field(default_factory=dict, init=False, repr=False,
                                     compare=False)

    def __post_init__(self) -> None:
        by_default = isinstance(self.baselines, DefaultBaselines)
        self._check_types()
        if isinstance(self.methods, str):
            self.methods = parse_methods(self.methods)
        if isinstance(self.baselines, str):
            self.baselines = [b for b in self.baselines.split(",") if b.strip()]
        self.methods = [m.strip() for m in self.methods]
        self.baselines = [b.strip() for b in self.baselines]
        if by_default:
            self.baselines = DefaultBaselines(self.baselines)
        if self.columns is not None:
            from embedlens.data.local import parse_columns

            self.columns = parse_columns(self.columns) or None
        self.validate()

    def _check_types(self) -> None:
        """Each field has the type it needs: a wrong one is named, not cast."""
        def fail(key: str, expected: str) -> DataError:
            value = getattr(self, key)
            return DataError(f"config: {key} must be {expected}, got {value!r} "
                             f"({type(value).__name__}).")

        for key in ("dataset", "protocol"):
            if not isinstance(getattr(self, key), str):
                raise fail(key, "a string")
        if self.data_dir is not None and not isinstance(self.data_dir, str | Path):
            raise fail("data_dir", "a folder path (a string)")
        if self.data_dir is not None:
            self.data_dir = str(self.data_dir)
        for key in ("methods", "baselines"):
            value = getattr(self, key)
            if not (isinstance(value, str) or (isinstance(value, list | tuple) and all(
                    isinstance(v, str) for v in value))):
                raise fail(key, '"all", a comma-separated string or a list of names')
            if isinstance(value, tuple):
                setattr(self, key, list(value))
        for key in ("seed", "k"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int):
                raise fail(key, "an integer")
        if self.seed < 0:
            raise DataError(f"config: seed must be >= 0, got {self.seed}.")
        if not isinstance(self.preset, bool):
            raise fail("preset", "true or false")
        if isinstance(self.seeds, bool) or not isinstance(self.seeds, int) or self.seeds < 1:
            raise fail("seeds", "a whole number of seeds, at least 1")
        if self.tune_trials is not None and (isinstance(self.tune_trials, bool) or not
                                             isinstance(self.tune_trials, int)
                                             or self.tune_trials < 1):
            raise fail("tune_trials", "a whole number of trials, at least 1")
        if self.tune_timeout is not None and (isinstance(self.tune_timeout, bool) or not
                                              isinstance(self.tune_timeout, int | float)
                                              or self.tune_timeout <= 0):
            raise fail("tune_timeout", "a positive number of seconds")
        if not isinstance(self.params, dict) or not all(
                isinstance(k, str) and isinstance(v, dict) for k, v in self.params.items()):
            raise DataError("config: params must hold one [params.<method>] table per method.")
        if self.columns is not None and not isinstance(self.columns, dict):
            raise fail("columns", "a table of role = column name")

    @property
    def baselines_by_default(self) -> bool:
        """Whether the baselines are the defaults, not named by the user."""
        return isinstance(self.baselines, DefaultBaselines)

    @property
    def tuned(self) -> bool:
        """Whether every method and baseline is tuned before it is evaluated."""
        return self.tune_trials is not None or self.tune_timeout is not None

    @property
    def all_methods(self) -> list[str]:
        """Baselines first (cheap yardsticks), then the learned methods, those that fit
        early (text: ``Model.fit_early``) first among them; no repeats."""
        early = [m for m in self.methods if get_method(m).fit_early]
        return list(dict.fromkeys([*self.baselines, *early, *self.methods]))

    def validate(self) -> None:
        """Fail before any training on a bad name, value or parameter."""
        get_protocol(self.protocol)
        if not self.all_methods:
            raise DataError("The config names no method and no baseline to run.")
        if self.k < 1:
            raise DataError(f"k must be at least 1, got {self.k}.")
        if self.columns:
            from embedlens.data import is_log_path

            if not is_log_path(self.dataset):
                raise DataError(f"columns apply to a log file, not the MovieLens variant "
                                f"{self.dataset}.")
        for name in self.all_methods:
            get_method(name)(**self.method_params(name))  # bad names and values raise
        # [params.x] of a method not run now is kept (one file can serve several --methods)
        # but must still name a method and hold values it takes.
        for name in self.params:
            get_method(name)(**self.params[name])

    @property
    def preset_used(self) -> dict[str, Any] | None:
        """The shipped preset this run starts from (None: plain defaults): only for an
        untuned run, on a dataset and protocol the project tuned for."""
        if not self.preset or self.tuned:
            return None
        from embedlens.app.presets import load_preset

        return load_preset(self.dataset, self.protocol)

    def method_params(self, name: str) -> dict[str, Any]:
        """The parameters ``name`` runs with: the config's own, over the shipped preset's
        (when one applies), over the defaults; the config's seed unless the method sets
        one."""
        preset = self.preset_used
        params = {**(preset["params"].get(name, {}) if preset else {}),
                  **self.params.get(name, {})}
        if get_method(name).Params.has("seed"):
            params.setdefault("seed", self.seed)
        return params

    @classmethod
    def from_toml(cls, path: str | Path) -> RunConfig:
        """Read a config file; unknown keys and values of the wrong type are errors naming
        the file, never silently ignored or cast."""
        path = Path(path)
        if not path.is_file():
            raise DataError(f"No such config file: {path}")
        try:
            raw = tomllib.loads(path.read_bytes().decode("utf-8"))
        except UnicodeDecodeError:
            raise DataError(f"{path} is not a text file (not UTF-8); a config is TOML text.") \
                from None
        except tomllib.TOMLDecodeError as exc:
            raise DataError(f"{path} is not valid TOML: {exc}") from None
        known = {f.name for f in fields(cls) if f.init}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise DataError(
                f"{path}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}."
            )
        if "columns" in raw and isinstance(raw["columns"], dict):
            # TOML has no null: an empty string means "the log has no such column"
            raw["columns"] = {k: (v or None) if isinstance(v, str) else v
                              for k, v in raw["columns"].items()}
        try:
            return cls(**raw)
        except DataError as exc:
            raise DataError(f"{path}: {exc}") from None

    def to_toml(self, path: str | Path) -> Path:
        """Write the config (atomically). TOML has no null, so ``None`` values are left out
        (a column the log lacks is written as ""); reading the file back gives them their
        default, which is ``None`` for every parameter that has one."""
        import tomli_w

        data = asdict(self)
        del data["left_out"]
        data["baselines"] = list(data["baselines"])
        if data.get("columns"):
            data["columns"] = {k: v or "" for k, v in data["columns"].items()}
        return write_text(path, tomli_w.dumps(_drop_none(data)))


def parse_methods(spec: str) -> list[str]:
    """``"all"`` or a comma-separated list of method names."""
    names = [m.strip() for m in spec.split(",") if m.strip()]
    if names == ["all"]:
        return list(all_methods())
    if "all" in names:
        raise DataError("'all' cannot be combined with other method names.")
    return names


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    return value
