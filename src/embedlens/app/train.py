"""Training a method into a run folder, and scoring runs and embeddings files.

``embedlens train`` writes only into a new or empty folder, or (``--force``) one it made
itself; a failed or interrupted training leaves nothing behind. A run is scored only on the
protocol it was trained on.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from embedlens.core.distributed import rank_report, work_done, world, world_record
from embedlens.core.errors import DataError
from embedlens.core.files import atomic_path, load_arrays, save_arrays, write_json
from embedlens.core.interactions import InteractionMatrix
from embedlens.data import load_dataset
from embedlens.data.dataset import Dataset
from embedlens.evaluation.evaluate import EvalResult, evaluate_model
from embedlens.evaluation.similarity import SimilaritySplit, evaluate_similarity
from embedlens.evaluation.splits import EvalSplit
from embedlens.io.folders import claim, preflight
from embedlens.io.runs import RunInfo, dataset_ref, load_run, resolve_dir, versions
from embedlens.methods.base import ItemVectors, Model
from embedlens.methods.registry import get_method
from embedlens.methods.training import KEPT
from embedlens.prep.protocols import DEFAULT_PROTOCOL, get_protocol

#: The train matrix (and titles) a run keeps for queries.
TRAIN_FILE = "train.npz"
#: Each test user's held-out movies, kept beside the train matrix.
HELDOUT_FILE = "heldout.npz"


def save_train(folder: Path, ds: Dataset, data: EvalSplit) -> Path:
    """The run's train matrix and movie titles (``train.npz``): what ``recommend`` needs,
    without loading the dataset or splitting it again."""
    titles = None
    if ds.items is not None:
        table = dict(ds.items.select("item_id", "title").rows())
        titles = np.array([table.get(i) or "" for i in data.train.items.ids.tolist()])
    save_heldout(folder, data)
    return data.train.save(folder / TRAIN_FILE, titles)


class HeldOut:
    """Each test user's held-out movies (the ground truth the metrics count), in the train
    matrix's rows and columns: what the explorer marks as hits without loading the dataset
    and splitting it again (14 s at ML-25M)."""

    def __init__(self, users: np.ndarray, truth: sp.csr_matrix) -> None:
        self.users = np.asarray(users, dtype=np.int64)  # sorted train rows
        self.truth = truth

    def columns_of(self, row: int) -> np.ndarray:
        """The train columns of user ``row``'s held-out movies (empty: not a test user)."""
        at = int(np.searchsorted(self.users, row))
        if at == self.users.size or self.users[at] != row:
            return np.empty(0, dtype=np.int32)
        return self.truth.indices[self.truth.indptr[at]:self.truth.indptr[at + 1]]

    @classmethod
    def of(cls, data: EvalSplit) -> HeldOut:
        """The held-out movies of a split."""
        return cls(data.users, data.truth)


def save_heldout(folder: Path, data: EvalSplit) -> Path:
    """Write ``heldout.npz``: :class:`HeldOut` of ``data``, atomically."""
    t = data.truth
    return save_arrays(folder / HELDOUT_FILE, users=data.users.astype(np.int64),
                       indptr=t.indptr, indices=t.indices, shape=np.asarray(t.shape))


def load_heldout(run_dir: Path) -> HeldOut | None:
    """The held-out movies a run saved (its own, or its full run's), if it saved them."""
    for path in (run_dir / HELDOUT_FILE, run_dir.parent / HELDOUT_FILE):
        if path.is_file():
            z = load_arrays(path, ("users", "indptr", "indices", "shape"), "held-out file")
            shape = tuple(int(n) for n in z["shape"])
            try:
                truth = sp.csr_matrix((np.ones(z["indices"].size, dtype=np.float32),
                                       z["indices"], z["indptr"]), shape=shape)
            except (ValueError, TypeError) as exc:
                raise DataError(f"{path} is not a valid held-out file ({exc}).") from None
            if z["users"].size != shape[0]:
                raise DataError(f"{path}: {z['users'].size} users for {shape[0]} rows.")
            return HeldOut(z["users"], truth)
    return None


def load_train(run_dir: Path) -> tuple[InteractionMatrix, np.ndarray | None] | None:
    """The train matrix a run saved (its own, or its full run's), if there is one."""
    for path in (run_dir / TRAIN_FILE, run_dir.parent / TRAIN_FILE):
        if path.is_file():
            return InteractionMatrix.load(path)
    return None


def fit_and_save(
    model: Model, ds: Dataset, data: EvalSplit, folder: Path, dataset: str,
    data_dir: str | None = None, columns: dict[str, str | None] | None = None,
    with_train: bool = True,
) -> RunInfo:
    """Fit ``model`` on ``data``'s train part and write it into ``folder`` (``run.json``
    last, so the run counts as complete only once everything else is on disk). With
    ``with_train`` the train matrix goes along (a full run keeps one for all methods)."""
    start = time.perf_counter()
    before = work_done()
    model.fit(data.train, data.train_dataset(ds))
    fit_seconds = time.perf_counter() - start
    info = RunInfo(
        method=model.name, dataset=dataset_ref(dataset), protocol=data.protocol,
        data_dir=data_dir, params=model.params, fit_seconds=round(fit_seconds, 3),
        versions=versions(), created=time.strftime("%Y-%m-%dT%H:%M:%S"), columns=columns,
        distributed=world_record(rank_report(fit_seconds, since=before)),
    )
    w = world()
    if not w.main:  # under torchrun only rank 0 writes
        return info
    model.save(folder)
    if with_train:
        save_train(folder, ds, data)
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
    model = get_method(method)(**(params or {}))
    get_protocol(protocol)

    def occupied(p: Path) -> str:
        return (f"{p} already holds an embedlens run; use --force to replace it, or choose "
                "another --out.")

    main = world().main  # under torchrun every rank fits; only rank 0 checks and writes out
    if main:
        preflight(out, force=force, occupied=occupied)
    data_dir = resolve_dir(data_dir)
    ds = load_dataset(dataset, data_dir=data_dir, columns=columns, shared=True)
    data = EvalSplit.prepare(ds, protocol)
    if not main:
        return fit_and_save(model, ds, data, Path(out), dataset, data_dir, columns), model
    folder = claim(out, "train", force=force, occupied=occupied)
    try:
        info = fit_and_save(model, ds, data, folder.path, dataset, data_dir, columns)
    except BaseException:
        folder.discard()
        raise
    folder.release()
    return info, model


def kept_check(history: dict[str, list[float]]) -> int | None:
    """The check (1-based) whose network early stopping kept; ``None`` for a method that
    keeps its last epoch."""
    kept = history.get(KEPT)
    return int(kept[0]) if kept else None


def plot_history(history: dict[str, list[float]], path: Path, title: str) -> Path:
    """Training curves (one panel per recorded series) as a PNG, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = {k: v for k, v in history.items() if v and k != KEPT}
    kept = kept_check(history)
    fig, axes = plt.subplots(1, len(series), figsize=(4.5 * len(series), 3.2), squeeze=False)
    for ax, (name, values) in zip(axes[0], series.items(), strict=True):
        ax.plot(range(1, len(values) + 1), values, marker="o")
        if kept is not None:
            ax.axvline(kept, color="#d62728", linestyle="--", linewidth=1, label="kept")
            ax.legend(loc="best", fontsize=8)
        ax.set_xlabel("epoch" if kept is None else "validation check")
        ax.set_title(name)
        ax.grid(alpha=0.3)
    fig.suptitle(title if kept is None else f"{title}; kept check {kept} of "
                 f"{len(history.get('loss', []))}")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return path


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
) -> EvalResult:
    """Score a saved run on the protocol it was trained on (asking for another one is
    refused: it would leak); the result is also written to
    ``<run>/evaluation-<protocol>.json``."""
    run_dir = Path(run_dir)
    info, model = load_run(run_dir)
    protocol = protocol or info.protocol
    check_same_protocol(info.protocol, protocol, f"{run_dir} ({info.method})",
                        f"Train it on {protocol} instead: embedlens train {info.method} "
                        f"--dataset {info.dataset} --protocol {protocol} --out DIR.")
    ds = info.load_dataset(data_dir, shared=True)
    return score_run(run_dir, info, model, EvalSplit.prepare(ds, protocol), k)


def score_run(
    run_dir: Path, info: RunInfo, model: Model, data: EvalSplit, k: int = 10,
    neighbours: tuple[SimilaritySplit, Dataset] | None = None,
) -> EvalResult:
    """Evaluate a fitted run's model on ``data`` (and, given ``neighbours``, judge its
    nearest movies too); write ``evaluation-<protocol>.json``."""
    result = evaluate_model(model, data, k).with_run(
        method=info.method, dataset=info.dataset, trained_on=info.protocol,
        fit_seconds=info.fit_seconds)
    if neighbours is not None and isinstance(model, ItemVectors):
        split, ds = neighbours
        result = result.with_run(similarity=evaluate_similarity(
            model.item_vectors(), split, k, ds.items))
    if world().main:  # under torchrun every rank has the result; one writes it
        write_json(run_dir / f"evaluation-{data.protocol}.json", result.to_dict())
    return result


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
) -> EvalResult:
    """Score item embeddings from a Cleora ``.out`` (or word2vec text) file; users are the
    mean of their train items. The result is written beside the file.

    A file carries no record of its training data, so the caller must say it was trained on
    ``protocol``'s train part (``trained_on``; ``embedlens datasets split`` writes that
    part): embeddings that saw the test rows would score far too high.
    """
    from embedlens.io.formats import from_cleora, from_word2vec
    from embedlens.methods.base import ImportedModel

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
    ds = load_dataset(dataset, data_dir=resolve_dir(data_dir), columns=columns, shared=True)
    if items.metadata is None and ds.items is not None:
        items.metadata = ds.items.select("item_id", "title", "genres")
    model = ImportedModel.from_embeddings(items, similarity=similarity)
    result = evaluate_model(model, EvalSplit.prepare(ds, protocol), k).with_run(
        method=f"imported:{path.name}", dataset=dataset, trained_on=trained_on)
    write_json(path.with_name(f"{path.stem}.evaluation-{protocol}.json"), result.to_dict())
    return result
