"""Run records: what a run directory says about how it was made, and reading a run back.

A run directory holds ``run.json`` (method, dataset, data_dir, protocol, parameters, seed,
versions, fit time), the model's own files (``model.json``; ``items.parquet``/``users.parquet``
for embedding methods) and one ``evaluation-<protocol>.json`` per evaluation. Every file is
written atomically and ``run.json`` last, so a folder with a ``run.json`` holds a complete
run.
"""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from embedlens import __version__
from embedlens.core.errors import DataError
from embedlens.core.files import read_json_object, write_json
from embedlens.data import is_log_path, load_dataset
from embedlens.data.dataset import Dataset
from embedlens.methods.base import Model
from embedlens.methods.registry import get_method

RUN_FILE = "run.json"


@dataclass
class RunInfo:
    """What a run directory records about how it was made."""

    method: str
    dataset: str
    protocol: str
    data_dir: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    fit_seconds: float = 0.0
    versions: dict[str, str] = field(default_factory=dict)
    created: str = ""
    columns: dict[str, str | None] | None = None
    #: under torchrun: backend and world size (None: one process)
    distributed: dict[str, Any] | None = None

    def save(self, run_dir: Path) -> None:
        write_json(Path(run_dir) / RUN_FILE, asdict(self))

    @classmethod
    def load(cls, run_dir: Path) -> RunInfo:
        path = Path(run_dir) / RUN_FILE
        if not path.is_file():
            raise DataError(f"{run_dir} is not a run directory (no {RUN_FILE}).")
        raw = read_json_object(path, "run record", ("method", "dataset", "protocol"))
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in raw.items() if k in known}
        for key in ("method", "dataset", "protocol"):
            if not isinstance(values[key], str):
                raise DataError(f"{path}: {key} must be a string, got {values[key]!r}.")
        if not isinstance(values.get("params", {}), dict):
            raise DataError(f"{path}: params must be an object.")
        if values.get("data_dir") is not None and not isinstance(values["data_dir"], str):
            raise DataError(f"{path}: data_dir must be a string or null.")
        if values.get("columns") is not None and not isinstance(values["columns"], dict):
            raise DataError(f"{path}: columns must be an object or null.")
        if not isinstance(values.get("fit_seconds", 0.0), int | float):
            raise DataError(f"{path}: fit_seconds must be a number.")
        return cls(**values)

    def load_dataset(self, data_dir: str | Path | None = None, shared: bool = False
                     ) -> Dataset:
        """The dataset the run was trained on (``data_dir`` overrides the recorded one;
        ``shared``: see :func:`~embedlens.data.load_dataset`)."""
        return load_dataset(self.dataset, data_dir=resolve_dir(data_dir) or self.data_dir,
                            columns=self.columns, shared=shared)


def versions() -> dict[str, str]:
    """Versions of the packages that decide a run's numbers (those installed)."""
    from importlib.metadata import PackageNotFoundError, version

    found = {"embedlens": __version__, "python": platform.python_version()}
    for package in ("numpy", "scipy", "polars", "numba", "torch", "gensim",
                    "sentence-transformers", "implicit"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            continue
    return found


def resolve_dir(data_dir: str | Path | None) -> str | None:
    """An absolute path (runs record where their data came from), or None."""
    return str(Path(data_dir).expanduser().resolve()) if data_dir is not None else None


def dataset_ref(dataset: str) -> str:
    """How a run records its dataset: a variant name, or a log's absolute path (so the run
    can be evaluated from any folder)."""
    return str(Path(dataset).expanduser().resolve()) if is_log_path(dataset) else dataset


def load_run(run_dir: str | Path) -> tuple[RunInfo, Model]:
    """The run's record and its model."""
    info = RunInfo.load(Path(run_dir))
    return info, get_method(info.method).load(run_dir)
