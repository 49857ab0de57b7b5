"""``embedlens run``: every method and baseline on one split, a leaderboard and a report.

The run directory::

    RUN/config.toml         the resolved config: ``embedlens run --config`` repeats the run
    RUN/manifest.json       versions, seed, timings, the state of the run and of every method
    RUN/leaderboard.json    one object per method: the keys of ``embedlens evaluate`` plus
                            ``fit_seconds``, ``role`` (baseline/method) and ``status``
    RUN/leaderboard.md      the same, as a Markdown table best first
    RUN/report.html         self-contained: leaderboard, curves, 2-D maps, neighbours
    RUN/<method>/           an ordinary run directory (``embedlens evaluate RUN/<method>``)

A method that fails is recorded (``status: failed``, ``error``, ``<method>/error.txt``) and
the others still run. The data is loaded and split before the folder is touched, so a bad
dataset leaves nothing behind. An interrupted run keeps the methods it finished
(``manifest.json`` says ``interrupted``) and ``--resume`` finishes it; the run counts as
complete only when the manifest says ``done``. One process writes a run folder at a time.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from embedlens.config import RunConfig
from embedlens.data import load_dataset
from embedlens.data.dataset import Dataset
from embedlens.errors import DataError, EmbedlensError
from embedlens.evaluate import EvalSplit
from embedlens.io.files import read_json, read_json_object, write_json, write_text
from embedlens.io.folders import MARKER, OwnedFolder, claim, clear, preflight
from embedlens.models import get_model_class
from embedlens.models.base import EmbeddingModel, Model
from embedlens.progress import note
from embedlens.runs import RUN_FILE, fit_and_save, load_run, resolve_dir, score_run, versions

LEADERBOARD = "leaderboard.json"
MANIFEST = "manifest.json"


class RunInterrupted(EmbedlensError):
    """``embedlens run`` was interrupted (Ctrl-C); the message says what was kept."""


@dataclass
class RunResult:
    """What ``run_all`` produced: the leaderboard rows and the fitted models (in memory)."""

    out: Path
    rows: list[dict[str, Any]]
    models: dict[str, Model] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def failed(self) -> list[str]:
        return [r["method"] for r in self.rows if r["status"] != "ok"]


def run_all(config: RunConfig, out: str | Path, force: bool = False,
            resume: bool = False) -> RunResult:
    """Train and evaluate every method of ``config`` on one split; write the run directory.

    Everything is checked (names, types, every parameter value) and the data loaded and
    split before ``out`` is touched. ``out`` must be new or empty, or a run folder embedlens
    made: ``force`` empties it, ``resume`` keeps the methods it finished (the config must be
    the one it was started with) and runs the rest.
    """
    started = time.perf_counter()
    out = Path(out)
    if force and resume:
        raise DataError("--force starts over and --resume continues: choose one.")
    config.data_dir = resolve_dir(config.data_dir)
    config.validate()
    preflight(out, force=force, resume=resume, occupied=_occupied)
    ds = load_dataset(config.dataset, data_dir=config.data_dir, columns=config.columns)
    data = EvalSplit.prepare(ds, config.protocol)
    folder = claim(out, "run", force=force, resume=resume, occupied=_occupied)
    try:
        return _run_in(folder, config, ds, data, resume, started)
    finally:
        folder.release()


def _run_in(folder: OwnedFolder, config: RunConfig, ds: Dataset, data: EvalSplit,
            resume: bool, started: float) -> RunResult:
    out = folder.path
    finished = _finished(out, config) if resume else {}
    result = RunResult(out, [])
    names = config.all_methods
    states = dict.fromkeys(names, "pending")
    states.update(dict.fromkeys(finished, "ok"))
    _write_manifest(out, config, "running", states)
    config.to_toml(out / "config.toml")
    note(f"{ds.name}: {ds.n_interactions:,} ratings; {config.protocol}: "
         f"{data.train.ratings.nnz:,} train, {data.users.size:,} test users")
    try:
        for i, name in enumerate(names, 1):
            role = "baseline" if name in config.baselines else "method"
            if name in finished:
                info, model = load_run(out / name)
                result.models[name] = model
                result.rows.append({"role": role, "status": "ok", **finished[name]})
                note(f"[{i}/{len(names)}] {name}: finished earlier, kept")
                continue
            note(f"[{i}/{len(names)}] {name} …")
            sub = out / name
            if sub.is_dir() and not sub.is_symlink():  # cut short before: start afresh
                clear(sub)
            elif sub.exists() or sub.is_symlink():
                sub.unlink()
            sub.mkdir(exist_ok=True)
            try:
                model = get_model_class(name)(**config.method_params(name))
                info = fit_and_save(model, ds, data, sub, config.dataset, config.data_dir,
                                    config.columns)
                report = score_run(sub, info, model, data, config.k)
            except Exception as exc:  # one method's failure must not stop the run
                write_text(sub / "error.txt", traceback.format_exc())
                error = f"{type(exc).__name__}: {exc}"
                result.rows.append({"method": name, "role": role, "status": "failed",
                                    "error": error})
                states[name] = "failed"
                _write_manifest(out, config, "running", states)
                note(f"[{i}/{len(names)}] {name} FAILED: {error}")
                continue
            result.models[name] = model
            config.params[name] = model.params  # resolved: the config file repeats the run
            ndcg = f"ndcg@{config.k}"
            result.rows.append({"role": role, "status": "ok", **report})
            states[name] = "ok"
            _write_manifest(out, config, "running", states)
            note(f"[{i}/{len(names)}] {name}: fit {info.fit_seconds:.1f} s, "
                 f"{ndcg} {report[ndcg]:.4f} ± {report[ndcg + '_ci95']:.4f}")
    except KeyboardInterrupt:
        done = sum(v == "ok" for v in states.values())
        if done == 0 and not resume:
            folder.discard()
            raise RunInterrupted(f"Interrupted before any method finished; {out} was "
                                 "removed.") from None
        _write_manifest(out, config, "interrupted", states)
        raise RunInterrupted(
            f"Interrupted: {out} keeps {done} of {len(names)} finished methods. `embedlens run "
            f"--out {out} --resume` finishes it; --force starts over.") from None
    result.seconds = round(time.perf_counter() - started, 1)
    _write_outputs(result, config, ds, data, states)
    return result


def _finished(out: Path, config: RunConfig) -> dict[str, dict[str, Any]]:
    """The methods a resumed run keeps: each with a complete run record and an evaluation on
    this protocol, made with the parameters the config gives now (else the run would mix
    two configs: refused)."""
    manifest = out / MANIFEST
    if not manifest.is_file():
        raise DataError(f"{out} holds no embedlens run to resume ({MANIFEST} is missing); "
                        "use --force to start over.")
    before = read_json_object(manifest, "run manifest")
    for key in ("dataset", "protocol", "seed"):
        if before.get(key) != getattr(config, key):
            raise DataError(
                f"{out} was started with {key} = {before.get(key)!r}; resuming it with "
                f"{getattr(config, key)!r} would mix two runs. Use the same config, or --force "
                "to start over.")
    kept: dict[str, dict[str, Any]] = {}
    for name in config.all_methods:
        sub = out / name
        evaluation = sub / f"evaluation-{config.protocol}.json"
        if not ((sub / RUN_FILE).is_file() and evaluation.is_file()):
            continue
        info, _ = load_run(sub)
        wanted = get_model_class(name)(**config.method_params(name)).params
        if info.params != wanted:
            raise DataError(
                f"{sub} was trained with other parameters than the config now gives; resuming "
                "would mix two runs. Use the same config, or --force to start over.")
        report = read_json_object(evaluation, "evaluation", (f"ndcg@{config.k}",))
        kept[name] = report
        config.params[name] = info.params
    return kept


def _occupied(path: Path) -> str:
    """Why a run folder cannot simply be written again, and what to do."""
    try:
        manifest = read_json_object(path / MANIFEST, "run manifest")
    except DataError:
        return (f"{path} already holds an embedlens folder that is not a finished run; use "
                "--force to replace it.")
    if manifest.get("state") == "done":
        return f"{path} already holds a run; use --force to replace it."
    methods = manifest.get("methods") if isinstance(manifest.get("methods"), dict) else {}
    done = sum(v == "ok" for v in methods.values())
    return (f"{path} holds an unfinished run (state: {manifest.get('state')}, {done} of "
            f"{len(methods)} methods done); use --resume to finish it or --force to start "
            "over.")


def _write_outputs(result: RunResult, config: RunConfig, ds: Dataset, data: EvalSplit,
                   states: dict[str, str]) -> None:
    out = result.out
    config.to_toml(out / "config.toml")
    write_json(out / LEADERBOARD, result.rows)
    write_text(out / "leaderboard.md", leaderboard_markdown(result.rows, config.k))
    from embedlens.report import write_report

    try:
        write_report(out / "report.html", result, config, ds, data)
    except Exception as exc:  # the numbers are written; the run is not complete without it
        write_text(out / "report-error.txt", traceback.format_exc())
        _write_manifest(out, config, "report failed", states, result.seconds)
        raise EmbedlensError(
            f"report.html could not be written ({type(exc).__name__}: {exc}); the leaderboard "
            f"is in {out}, the traceback in report-error.txt. `embedlens run --out {out} "
            "--resume` retries.") from exc
    _write_manifest(out, config, "done", states, result.seconds)


def _write_manifest(
    out: Path, config: RunConfig, state: str, methods: dict[str, str], seconds: float = 0.0
) -> None:
    manifest = {
        "command": "embedlens run", "state": state, "dataset": config.dataset,
        "protocol": config.protocol, "seed": config.seed, "seconds": seconds,
        "versions": versions(), "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "methods": methods,
    }
    write_json(out / MANIFEST, manifest)


def ranked(rows: list[dict[str, Any]], k: int) -> list[dict[str, Any]]:
    """Successful rows best first by NDCG@k (ties by name, so the order is stable)."""
    ok = [r for r in rows if r["status"] == "ok"]
    return sorted(ok, key=lambda r: (-r[f"ndcg@{k}"], r["method"]))


#: The ranking metrics a leaderboard shows with their CI, in column order.
CI_METRICS = ("ndcg", "hitrate", "mrr", "recall", "precision", "map")


def metric_header(k: int) -> list[str]:
    """Column names of :func:`metric_cells`."""
    return [*(f"{c}@{k}" for c in CI_METRICS), f"coverage@{k}"]


def metric_cells(row: dict[str, Any], k: int) -> list[str]:
    """A leaderboard row's metrics as text: mean ± 95% CI, then coverage."""
    cells = [f"{row[f'{c}@{k}']:.4f} ± {row[f'{c}@{k}_ci95']:.4f}" for c in CI_METRICS]
    return [*cells, f"{row[f'coverage@{k}']:.4f}"]


def leaderboard_markdown(rows: list[dict[str, Any]], k: int) -> str:
    """The leaderboard as a Markdown table (mean ± 95% CI), failures listed below it."""
    head = ["#", "method", "role", *metric_header(k), "fit s"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for rank, r in enumerate(ranked(rows, k), 1):
        cells = [str(rank), r["method"], r["role"], *metric_cells(r, k),
                 f"{r['fit_seconds']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    failed = [r for r in rows if r["status"] != "ok"]
    if failed:
        lines += ["", "Failed:", ""] + [f"- {r['method']}: {r['error']}" for r in failed]
    rated = [r for r in rows if r["status"] == "ok" and "rmse" in r]
    if rated:
        lines += ["", "Rating prediction (every test rating with a known user and movie):", ""]
        lines += [f"- {r['method']}: RMSE {r['rmse']:.4f}, MAE {r['mae']:.4f}" for r in rated]
    return "\n".join(lines) + "\n"


# -- queries over a run --------------------------------------------------------------------
def method_dir(run: str | Path, method: str | None = None, need: str = "any") -> Path:
    """The single-method run directory a query should read.

    ``run`` is either one method's run (``embedlens train``) or a whole ``embedlens run``;
    for the latter ``method`` picks the sub-run, by default the best one on the leaderboard
    that can answer the query (``need``: "any", "embeddings" or "coldstart").
    """
    run = Path(run)
    if (run / RUN_FILE).is_file():
        if method is not None:
            own = read_json_object(run / RUN_FILE, "run record", ("method",))["method"]
            if own != method:
                raise DataError(f"{run} holds a {own} run, not {method}.")
        return run
    able = _able(run, need)
    if method is None:
        return run / able[0]
    if method not in able:
        raise DataError(
            f"{method} is not a successful method of {run} that can answer this; "
            f"choose from: {', '.join(able)}."
        )
    return run / method


def embedding_runs(run: str | Path, method: str | None = None) -> list[Path]:
    """``method``'s run directory, or, for a full run without one, every successful embedding
    method's (best first)."""
    run = Path(run)
    if method is not None or (run / RUN_FILE).is_file():
        return [method_dir(run, method, "embeddings")]
    return [run / name for name in _able(run, "embeddings")]


def read_leaderboard(run: Path) -> list[dict[str, Any]]:
    """A full run's leaderboard rows, checked; an unfinished or damaged run is one clear
    error."""
    if not (run / LEADERBOARD).is_file():
        if (run / MANIFEST).is_file() or (run / MARKER).is_file():
            raise DataError(f"{run} is an unfinished run (no {LEADERBOARD} yet); `embedlens "
                            f"run --out {run} --resume` finishes it.")
        raise DataError(f"{run} is not a run directory (no {RUN_FILE} or {LEADERBOARD}).")
    rows = read_json(run / LEADERBOARD, "leaderboard")
    if not isinstance(rows, list) or not all(
            isinstance(r, dict) and isinstance(r.get("method"), str) and "status" in r
            for r in rows):
        raise DataError(f"{run / LEADERBOARD} is not a valid leaderboard (a list of rows with "
                        "method and status).")
    for r in rows:
        if r["status"] == "ok":
            keys = [key for key in r if key.startswith("ndcg@") and "_" not in key]
            if not keys or not all(isinstance(r[key], int | float) for key in keys):
                raise DataError(f"{run / LEADERBOARD}: row {r['method']!r} has no numeric "
                                "ndcg.")
    return rows


def _able(run: Path, need: str) -> list[str]:
    """The successful methods of a full run that can answer ``need``, best first."""
    rows = read_leaderboard(run)
    k = next((int(r.get("k", 10)) for r in rows if r["status"] == "ok"), 10)
    able = [r["method"] for r in ranked(rows, k) if _can(r["method"], need)]
    if not able:
        raise DataError(f"No method of {run} can answer this ({need} needed).")
    return able


def _can(method: str, need: str) -> bool:
    cls = get_model_class(method)
    if need == "embeddings":
        return issubclass(cls, EmbeddingModel)
    if need == "coldstart":
        return hasattr(cls, "coldstart")
    return True


__all__ = ["RunConfig", "RunResult", "method_dir", "run_all"]
