"""Run directories: what ``embedlens train`` writes and ``evaluate``/``similar`` read.

A run directory holds ``run.json`` (method, dataset, data_dir, protocol, parameters, seed,
versions, fit time), the model's own files (``model.json``; ``items.parquet``/``users.parquet``
for embedding methods) and one ``evaluation-<protocol>.json`` per evaluation. Every file is
written atomically and ``run.json`` last, so a folder with a ``run.json`` holds a complete
run. ``embedlens train`` writes only into a new or empty folder, or (``--force``) one it made
itself; a failed or interrupted training leaves nothing behind.
"""

from __future__ import annotations

import platform
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from embedlens import __version__
from embedlens.data import is_log_path, load_dataset
from embedlens.data.dataset import Dataset
from embedlens.errors import DataError
from embedlens.evaluate import EvalSplit, evaluate_model
from embedlens.io.files import atomic_path, read_json_object, write_json
from embedlens.io.folders import claim, preflight
from embedlens.models import get_model_class
from embedlens.models.base import Model
from embedlens.prep.protocols import DEFAULT_PROTOCOL, get_protocol

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

    def load_dataset(self, data_dir: str | Path | None = None) -> Dataset:
        """The dataset the run was trained on (``data_dir`` overrides the recorded one)."""
        return load_dataset(self.dataset, data_dir=resolve_dir(data_dir) or self.data_dir,
                            columns=self.columns)


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


def fit_and_save(
    model: Model, ds: Dataset, data: EvalSplit, folder: Path, dataset: str,
    data_dir: str | None = None, columns: dict[str, str | None] | None = None,
) -> RunInfo:
    """Fit ``model`` on ``data``'s train part and write it into ``folder`` (``run.json``
    last, so the run counts as complete only once everything else is on disk)."""
    start = time.perf_counter()
    model.fit(data.train, data.train_dataset(ds))
    fit_seconds = time.perf_counter() - start
    info = RunInfo(
        method=model.name, dataset=dataset_ref(dataset), protocol=data.protocol,
        data_dir=data_dir, params=model.params, fit_seconds=round(fit_seconds, 3),
        versions=versions(), created=time.strftime("%Y-%m-%dT%H:%M:%S"), columns=columns,
    )
    model.save(folder)
    if model.history:
        plot_history(model.history, folder / "loss.png",
                     f"{model.name} on {ds.name} ({data.protocol})")
    info.save(folder)
    return info


def train_run(
    method: str,
    dataset: str,
    out: str | Path,
    protocol: str = DEFAULT_PROTOCOL,
    data_dir: str | Path | None = None,
    params: dict[str, Any] | None = None,
    force: bool = False,
    columns: dict[str, str | None] | None = None,
) -> tuple[RunInfo, Model]:
    """Fit ``method`` on ``protocol``'s train split of ``dataset`` and save it in ``out``.

    Parameters and protocol are checked before any data is read. ``out`` must be new or
    empty, or (``force``) a folder embedlens made, which is emptied first. If anything
    fails, what this call wrote is removed.
    """
    model = get_model_class(method)(**(params or {}))
    get_protocol(protocol)

    def occupied(p: Path) -> str:
        return (f"{p} already holds an embedlens run; use --force to replace it, or choose "
                "another --out.")

    preflight(out, force=force, occupied=occupied)
    data_dir = resolve_dir(data_dir)
    ds = load_dataset(dataset, data_dir=data_dir, columns=columns)
    data = EvalSplit.prepare(ds, protocol)
    folder = claim(out, "train", force=force, occupied=occupied)
    try:
        info = fit_and_save(model, ds, data, folder.path, dataset, data_dir, columns)
    except BaseException:
        folder.discard()
        raise
    folder.release()
    return info, model


def plot_history(history: dict[str, list[float]], path: Path, title: str) -> Path:
    """Training curves (one panel per recorded series) as a PNG, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = {k: v for k, v in history.items() if v}
    fig, axes = plt.subplots(1, len(series), figsize=(4.5 * len(series), 3.2), squeeze=False)
    for ax, (name, values) in zip(axes[0], series.items(), strict=True):
        ax.plot(range(1, len(values) + 1), values, marker="o")
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return path


def load_run(run_dir: str | Path) -> tuple[RunInfo, Model]:
    """The run's record and its model."""
    info = RunInfo.load(Path(run_dir))
    return info, get_model_class(info.method).load(run_dir)


def check_same_protocol(trained_on: str, protocol: str, what: str, retrain: str) -> None:
    """Refuse to score on ``protocol`` what was trained on another protocol's train part:
    that train part holds rows of ``protocol``'s test set, so the figures would leak."""
    get_protocol(protocol)
    if protocol != trained_on:
        raise DataError(
            f"{what} was trained on {trained_on}, whose train part holds rows of {protocol}'s "
            f"test set: scoring it on {protocol} would leak. {retrain}")


def evaluate_run(
    run_dir: str | Path,
    protocol: str | None = None,
    data_dir: str | Path | None = None,
    k: int = 10,
) -> dict[str, Any]:
    """Score a saved run on the protocol it was trained on (asking for another one is
    refused: it would leak); the result is also written to
    ``<run>/evaluation-<protocol>.json``."""
    run_dir = Path(run_dir)
    info, model = load_run(run_dir)
    protocol = protocol or info.protocol
    check_same_protocol(info.protocol, protocol, f"{run_dir} ({info.method})",
                        f"Train it on {protocol} instead: embedlens train {info.method} "
                        f"--dataset {info.dataset} --protocol {protocol} --out DIR.")
    ds = info.load_dataset(data_dir)
    return score_run(run_dir, info, model, EvalSplit.prepare(ds, protocol), k)


def score_run(
    run_dir: Path, info: RunInfo, model: Model, data: EvalSplit, k: int = 10
) -> dict[str, Any]:
    """Evaluate a fitted run's model on ``data``; write ``evaluation-<protocol>.json``."""
    report = evaluate_model(model, data, k)
    report["method"] = info.method
    report["dataset"] = info.dataset
    report["trained_on"] = info.protocol
    report["fit_seconds"] = info.fit_seconds
    write_json(run_dir / f"evaluation-{data.protocol}.json", report)
    return report


def evaluate_file(
    path: str | Path,
    dataset: str,
    protocol: str = DEFAULT_PROTOCOL,
    data_dir: str | Path | None = None,
    k: int = 10,
    similarity: str = "cosine",
    strip_prefix: str = "",
    trained_on: str | None = None,
    columns: dict[str, str | None] | None = None,
) -> dict[str, Any]:
    """Score item embeddings from a Cleora ``.out`` (or word2vec text) file; users are the
    mean of their train items. The result is written beside the file.

    A file carries no record of its training data, so the caller must say it was trained on
    ``protocol``'s train part (``trained_on``; ``embedlens datasets split`` writes that
    part): embeddings that saw the test rows would score far too high.
    """
    from embedlens.export import from_cleora, from_word2vec
    from embedlens.models.base import ImportedModel

    path = Path(path)
    if not path.is_file():
        raise DataError(f"No such embeddings file: {path}")
    get_protocol(protocol)
    if trained_on is None:
        raise DataError(
            f"{path.name} carries no record of what it was trained on, and embeddings that saw "
            f"{protocol}'s test rows score far too high. Train it on {protocol}'s train part "
            f"(embedlens datasets split {dataset} --protocol {protocol} --out DIR writes it), "
            f"then pass --trained-on {protocol}.")
    check_same_protocol(trained_on, protocol, path.name,
                        f"Train it on {protocol}'s train part instead.")
    try:
        with path.open(encoding="utf-8") as fh:
            header, first = fh.readline().split(), fh.readline().split()
    except UnicodeDecodeError:
        raise DataError(f"{path.name} is not a text embeddings file (not UTF-8).") from None
    # Cleora rows carry an integer occurrence count before the vector; word2vec rows do not.
    is_cleora = len(header) == 2 and header[1].isdigit() and len(first) == int(header[1]) + 2
    reader = from_cleora if is_cleora else from_word2vec
    items = reader(path, "item", strip_prefix)
    ds = load_dataset(dataset, data_dir=resolve_dir(data_dir), columns=columns)
    if items.metadata is None and ds.items is not None:
        items.metadata = ds.items.select("item_id", "title", "genres")
    model = ImportedModel.from_embeddings(items, similarity=similarity)
    report = evaluate_model(model, EvalSplit.prepare(ds, protocol), k)
    report.update(method=f"imported:{path.name}", dataset=dataset, trained_on=trained_on)
    write_json(path.with_name(f"{path.stem}.evaluation-{protocol}.json"), report)
    return report
