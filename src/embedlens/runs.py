"""Run directories: what ``embedlens train`` writes and ``evaluate``/``similar`` read.

A run directory holds ``run.json`` (method, dataset, data_dir, protocol, parameters, seed,
versions, fit time), the model's own files (``model.json``; ``items.parquet``/``users.parquet``
for embedding methods) and one ``evaluation-<protocol>.json`` per evaluation.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from embedlens import __version__
from embedlens.data import load_dataset
from embedlens.data.dataset import Dataset
from embedlens.errors import DataError
from embedlens.evaluate import EvalSplit, evaluate_model
from embedlens.models import get_model_class
from embedlens.models.base import Model
from embedlens.prep.protocols import DEFAULT_PROTOCOL

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

    def save(self, run_dir: Path) -> None:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / RUN_FILE).write_text(json.dumps(asdict(self), indent=2, default=str))

    @classmethod
    def load(cls, run_dir: Path) -> RunInfo:
        path = Path(run_dir) / RUN_FILE
        if not path.is_file():
            raise DataError(f"{run_dir} is not a run directory (no {RUN_FILE}).")
        return cls(**json.loads(path.read_text()))


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


def train_run(
    method: str,
    dataset: str,
    out: str | Path,
    protocol: str = DEFAULT_PROTOCOL,
    data_dir: str | Path | None = None,
    params: dict[str, Any] | None = None,
    loaded: Dataset | None = None,
    split: EvalSplit | None = None,
) -> tuple[RunInfo, Model]:
    """Fit ``method`` on ``protocol``'s train split of ``dataset`` and save it in ``out``."""
    cls = get_model_class(method)
    model = cls(**(params or {}))  # validates parameters before any loading
    ds = loaded or load_dataset(dataset, data_dir=resolve_dir(data_dir))
    data = split or EvalSplit.prepare(ds, protocol)
    start = time.perf_counter()
    model.fit(data.train, data.train_dataset(ds))
    fit_seconds = time.perf_counter() - start
    out = Path(out)
    info = RunInfo(
        method=method, dataset=dataset, protocol=protocol, data_dir=resolve_dir(data_dir),
        params=model.params, fit_seconds=round(fit_seconds, 3), versions=versions(),
        created=time.strftime("%Y-%m-%dT%H:%M:%S"),
    )
    model.save(out)
    info.save(out)
    if model.history:
        plot_history(model.history, out / "loss.png", f"{method} on {dataset} ({protocol})")
    return info, model


def plot_history(history: dict[str, list[float]], path: Path, title: str) -> Path:
    """Training curves (one panel per recorded series) as a PNG."""
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
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def load_run(run_dir: str | Path) -> tuple[RunInfo, Model]:
    """The run's record and its model."""
    info = RunInfo.load(Path(run_dir))
    return info, get_model_class(info.method).load(run_dir)


def evaluate_run(
    run_dir: str | Path,
    protocol: str | None = None,
    data_dir: str | Path | None = None,
    k: int = 10,
) -> dict[str, Any]:
    """Score a saved run on ``protocol`` (default: the one it was trained on); the result is
    also written to ``<run>/evaluation-<protocol>.json``."""
    run_dir = Path(run_dir)
    info, model = load_run(run_dir)
    protocol = protocol or info.protocol
    ds = load_dataset(info.dataset, data_dir=resolve_dir(data_dir) or info.data_dir)
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
    (run_dir / f"evaluation-{data.protocol}.json").write_text(json.dumps(report, indent=2))
    return report


def evaluate_file(
    path: str | Path,
    dataset: str,
    protocol: str = DEFAULT_PROTOCOL,
    data_dir: str | Path | None = None,
    k: int = 10,
    similarity: str = "cosine",
    strip_prefix: str = "",
) -> dict[str, Any]:
    """Score item embeddings from a Cleora ``.out`` (or word2vec text) file; users are the
    mean of their train items. The result is written beside the file."""
    from embedlens.export import from_cleora, from_word2vec
    from embedlens.models.base import ImportedModel

    path = Path(path)
    if not path.is_file():
        raise DataError(f"No such embeddings file: {path}")
    with path.open() as fh:
        header, first = fh.readline().split(), fh.readline().split()
    # Cleora rows carry an integer occurrence count before the vector; word2vec rows do not.
    is_cleora = len(header) == 2 and header[1].isdigit() and len(first) == int(header[1]) + 2
    reader = from_cleora if is_cleora else from_word2vec
    items = reader(path, "item", strip_prefix)
    ds = load_dataset(dataset, data_dir=resolve_dir(data_dir))
    if items.metadata is None and ds.items is not None:
        items.metadata = ds.items.select("item_id", "title", "genres")
    model = ImportedModel.from_embeddings(items, similarity=similarity)
    report = evaluate_model(model, EvalSplit.prepare(ds, protocol), k)
    report.update(method=f"imported:{path.name}", dataset=dataset)
    out = path.with_name(f"{path.stem}.evaluation-{protocol}.json")
    out.write_text(json.dumps(report, indent=2))
    return report
