"""``embedlens run``: every method and baseline on one split, a leaderboard and a report.

The run directory::

    RUN/config.toml         the resolved config: ``embedlens run --config`` repeats the run
    RUN/manifest.json       versions, seed, timings, the status of every method
    RUN/leaderboard.json    one object per method: the keys of ``embedlens evaluate`` plus
                            ``fit_seconds``, ``role`` (baseline/method) and ``status``
    RUN/leaderboard.md      the same, as a Markdown table best first
    RUN/report.html         self-contained: leaderboard, curves, 2-D maps, neighbours
    RUN/<method>/           an ordinary run directory (``embedlens evaluate RUN/<method>``)

A method that fails is recorded (``status: failed``, ``error``, ``<method>/error.txt``) and
the others still run.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from embedlens.config import RunConfig
from embedlens.data import load_dataset
from embedlens.errors import DataError
from embedlens.evaluate import EvalSplit
from embedlens.models import get_model_class
from embedlens.models.base import EmbeddingModel, Model
from embedlens.progress import is_quiet
from embedlens.runs import RUN_FILE, resolve_dir, score_run, train_run, versions

LEADERBOARD = "leaderboard.json"
MANIFEST = "manifest.json"


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


def _log(message: str) -> None:
    """One line per step on stderr (silenced by ``--quiet``, like the progress bars)."""
    if not is_quiet():
        print(message, file=sys.stderr, flush=True)


def prepare_out(out: Path, force: bool) -> None:
    """Create ``out``; replace a previous run there only when asked."""
    if out.exists() and any(out.iterdir()):
        if not (out / MANIFEST).is_file():
            raise DataError(f"{out} exists, is not empty and is not an embedlens run; "
                            "choose another --out.")
        if not force:
            raise DataError(f"{out} already holds a run; use --force to replace it.")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def run_all(config: RunConfig, out: str | Path, force: bool = False) -> RunResult:
    """Train and evaluate every method of ``config`` on one split; write the run directory."""
    started = time.perf_counter()
    out = Path(out)
    config.data_dir = resolve_dir(config.data_dir)
    config.validate()
    prepare_out(out, force)
    # Written first so an interrupted run is still recognised (and replaced by --force).
    _write_manifest(out, config, "running", {})
    config.to_toml(out / "config.toml")

    ds = load_dataset(config.dataset, data_dir=config.data_dir)
    data = EvalSplit.prepare(ds, config.protocol)
    _log(f"{ds.name}: {ds.n_interactions:,} ratings; {config.protocol}: "
         f"{data.train.ratings.nnz:,} train, {data.users.size:,} test users")

    result = RunResult(out, [])
    names = config.all_methods
    for i, name in enumerate(names, 1):
        role = "baseline" if name in config.baselines else "method"
        _log(f"[{i}/{len(names)}] {name} …")
        try:
            info, model = train_run(
                name, config.dataset, out / name, config.protocol, config.data_dir,
                config.method_params(name), loaded=ds, split=data,
            )
            report = score_run(out / name, info, model, data, config.k)
        except Exception as exc:  # one method's failure must not stop the run
            (out / name).mkdir(exist_ok=True)
            (out / name / "error.txt").write_text(traceback.format_exc())
            error = f"{type(exc).__name__}: {exc}"
            result.rows.append({"method": name, "role": role, "status": "failed",
                                "error": error})
            _log(f"[{i}/{len(names)}] {name} FAILED: {error}")
            continue
        result.models[name] = model
        config.params[name] = model.params  # resolved: the config file repeats the run
        ndcg = f"ndcg@{config.k}"
        result.rows.append({"role": role, "status": "ok", **report})
        _log(f"[{i}/{len(names)}] {name}: fit {info.fit_seconds:.1f} s, "
             f"{ndcg} {report[ndcg]:.4f} ± {report[ndcg + '_ci95']:.4f}")

    result.seconds = round(time.perf_counter() - started, 1)
    _write_outputs(result, config, ds, data)
    return result


def _write_outputs(result: RunResult, config: RunConfig, ds: Any, data: EvalSplit) -> None:
    out = result.out
    config.to_toml(out / "config.toml")
    (out / LEADERBOARD).write_text(json.dumps(result.rows, indent=2))
    (out / "leaderboard.md").write_text(leaderboard_markdown(result.rows, config.k))
    from embedlens.report import write_report

    try:
        write_report(out / "report.html", result, config, ds, data)
    except Exception as exc:  # the numbers are written; say what broke
        (out / "report-error.txt").write_text(traceback.format_exc())
        _log(f"report.html could not be written: {type(exc).__name__}: {exc}")
    _write_manifest(out, config, "done", {r["method"]: r["status"] for r in result.rows},
                    result.seconds)


def _write_manifest(
    out: Path, config: RunConfig, state: str, methods: dict[str, str], seconds: float = 0.0
) -> None:
    manifest = {
        "command": "embedlens run", "state": state, "dataset": config.dataset,
        "protocol": config.protocol, "seed": config.seed, "seconds": seconds,
        "versions": versions(), "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "methods": methods,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2))


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
            own = json.loads((run / RUN_FILE).read_text())["method"]
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


def _able(run: Path, need: str) -> list[str]:
    """The successful methods of a full run that can answer ``need``, best first."""
    if not (run / LEADERBOARD).is_file():
        raise DataError(f"{run} is not a run directory (no {RUN_FILE} or {LEADERBOARD}).")
    rows = json.loads((run / LEADERBOARD).read_text())
    k = next((int(r["k"]) for r in rows if r["status"] == "ok"), 10)
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
