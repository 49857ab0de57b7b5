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

import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from embedlens.app.config import RunConfig
from embedlens.app.leaderboard import (
    COLD_START,
    LEADERBOARD,
    Leaderboard,
    Row,
    coldstart_markdown,
)
from embedlens.app.queries import COLDSTART, MANIFEST
from embedlens.app.train import fit_and_save, save_train, score_run
from embedlens.core.distributed import rank_report, work_done, world, world_record
from embedlens.core.errors import DataError, EmbedlensError
from embedlens.core.files import read_json_object, write_json, write_text
from embedlens.core.progress import note, quiet_here
from embedlens.data import load_dataset
from embedlens.data.dataset import Dataset
from embedlens.evaluation.evaluate import EvalResult
from embedlens.evaluation.splits import EvalSplit
from embedlens.io.folders import OwnedFolder, claim, clear, preflight
from embedlens.io.runs import RUN_FILE, load_run, resolve_dir, versions
from embedlens.methods.base import ItemVectors, Model
from embedlens.methods.registry import get_method

#: A tuned method's search record, and its results over several seeds, beside its run.
TUNING_FILE, SEEDS_FILE = "tuning.json", "seeds.json"
#: The share of movies the cold-start leaderboard holds out.
COLD_FRACTION = 0.1


class RunInterrupted(EmbedlensError):
    """``embedlens run`` was interrupted (Ctrl-C); the message says what was kept."""


@dataclass
class RunResult:
    """What ``run_all`` produced: the leaderboard and the fitted models (in memory)."""

    out: Path
    board: Leaderboard
    models: dict[str, Model] = field(default_factory=dict)
    seconds: float = 0.0
    coldstart: dict[str, Any] | None = None  # coldstart.json: the cold-start leaderboard

    @property
    def failed(self) -> list[str]:
        return [r.method for r in self.board.failed]


def run_all(config: RunConfig, out: str | Path, force: bool = False,
            resume: bool = False, dataset: Dataset | None = None) -> RunResult:
    """Train and evaluate every method of ``config`` on one split; write the run directory.

    Everything is checked (names, types, every parameter value) and the data loaded and
    split before ``out`` is touched. ``out`` must be new or empty, or a run folder embedlens
    made: ``force`` empties it, ``resume`` keeps the methods it finished (the config must be
    the one it was started with) and runs the rest. ``dataset`` runs on data already in
    memory (``config.dataset`` then only names it in the records).
    """
    started = time.perf_counter()
    out = Path(out)
    w = world()
    if w.size > 1 and resume:  # every rank must run the same methods in the same order
        raise DataError("--resume is not supported under torchrun: start over with --force, "
                        "or finish the run in one process.")
    if w.size > 1 and config.tune_timeout is not None:  # each rank would stop on its own clock
        raise DataError("--tune-timeout is not supported under torchrun: the ranks could stop "
                        "after different trials. Give the budget as trials (--tune N).")
    if not w.main:
        # the other ranks take part in every collective but keep what they write private,
        # in a folder of their own that is removed at the end: only rank 0 writes `out`
        import tempfile

        with tempfile.TemporaryDirectory(prefix=f"embedlens-rank{w.rank}-") as own:
            return _run_checked(config, Path(own) / "run", False, False, dataset, started)
    return _run_checked(config, out, force, resume, dataset, started)


def _run_checked(config: RunConfig, out: Path, force: bool, resume: bool,
                 dataset: Dataset | None, started: float) -> RunResult:
    if force and resume:
        raise DataError("--force starts over and --resume continues: choose one.")
    config.data_dir = resolve_dir(config.data_dir)
    config.validate()
    preflight(out, force=force, resume=resume, occupied=_occupied)
    work_before = work_done()  # the run's share of the work includes reading its rows
    ds = dataset if dataset is not None else load_dataset(
        config.dataset, data_dir=config.data_dir, columns=config.columns, shared=True)
    data = EvalSplit.prepare(ds, config.protocol)
    _leave_out_refusing_baselines(config, data)
    folder = claim(out, "run", force=force, resume=resume, occupied=_occupied)
    try:
        return _run_in(folder, config, ds, data, resume, started, work_before)
    finally:
        folder.release()


def _leave_out_refusing_baselines(config: RunConfig, data: EvalSplit) -> None:
    """Leave out of the *default* baselines one that refuses this train matrix (EASE above
    its ``max_items``: 59,047 movies at the ML-25M shape), with a note and a line in the
    manifest, so that a default run on a large catalogue ends without a failure. Baselines
    the user named are run as asked, and fail with their own message."""
    if not config.baselines_by_default:
        return
    n_users, n_items = data.train.shape
    for name in list(config.baselines):
        why = get_method(name)(**config.method_params(name)).refusal(n_users, n_items)
        if why is not None:
            config.baselines.remove(name)
            config.left_out[name] = why
            note(f"{name}: left out of the default baselines: {why}")


def _run_in(folder: OwnedFolder, config: RunConfig, ds: Dataset, data: EvalSplit,
            resume: bool, started: float, work_before: dict[str, int]) -> RunResult:
    out = folder.path
    finished = _finished(out, config) if resume else {}
    result = RunResult(out, Leaderboard([]))
    rows = result.board.rows
    names = config.all_methods
    states = dict.fromkeys(names, "pending")
    states.update(dict.fromkeys(finished, "ok"))
    _write_manifest(out, config, "running", states)
    config.to_toml(out / "config.toml")
    save_train(out, ds, data)  # one train matrix for every method's queries
    note(f"{ds.name}: {ds.n_interactions:,} ratings; {config.protocol}: "
         f"{data.train.ratings.nnz:,} train, {data.users.size:,} test users")
    if config.preset_used is not None:
        from embedlens.app.presets import preset_note

        note(preset_note(config.preset_used))
    neighbours = _neighbour_split(data, ds)
    cold = ColdStartFits(config, ds)
    tune_split = None
    if config.tuned:
        from embedlens.app.tune import validation_split

        tune_split = validation_split(ds, config.protocol)
    try:
        for i, name in enumerate(names, 1):
            role = "baseline" if name in config.baselines else "method"
            if name in finished:
                info, model = load_run(out / name)
                result.models[name] = model
                kept, searched = finished[name]
                seeds = (read_json_object(out / name / SEEDS_FILE, "seeds record")
                         if (out / name / SEEDS_FILE).is_file() else None)
                rows.append(Row(name, role, "ok", kept, tuning=searched, seeds=seeds)
                            if kept is not None else _cold_start_row(name, role, info.fit_seconds,
                                                                    model, neighbours, config.k))
                note(f"[{i}/{len(names)}] {name}: finished earlier, kept")
                continue
            note(f"[{i}/{len(names)}] {name} …")
            sub = out / name
            if sub.is_dir() and not sub.is_symlink():  # cut short before: start afresh
                clear(sub)
            elif sub.exists() or sub.is_symlink():
                sub.unlink()
            sub.mkdir(exist_ok=True)
            tuning: dict[str, Any] | None = None
            warm = get_method(name).warm_ranked
            try:
                params = config.method_params(name)
                if config.tuned and warm:  # the tuner's objective is the warm ranking
                    params, tuning = _tuned(name, params, config, ds, out, tune_split)
                model = get_method(name)(**params)
                cold.start_beside(name, params)
                info = fit_and_save(model, ds, data, sub, config.dataset, config.data_dir,
                                    config.columns, with_train=False)
                ndcg = f"ndcg@{config.k}"
                if not warm:
                    row = _cold_start_row(name, role, info.fit_seconds, model, neighbours,
                                          config.k)
                    outcome = "judged on the cold-start board"
                else:
                    report = score_run(sub, info, model, data, config.k, neighbours)
                    seeds = _other_seeds(name, params, report, config, ds, data)
                    row = Row(name, role, "ok", report, tuning=tuning, seeds=seeds)
                    outcome = f"{ndcg} {report.metrics[ndcg]:.4f} ± {report.ci95[ndcg]:.4f}"
            except Exception as exc:  # one method's failure must not stop the run
                if world().size > 1:
                    # ...except under torchrun: the other ranks may be waiting for this one
                    # in a collective, so the whole run stops (torchrun ends every rank)
                    raise
                write_text(sub / "error.txt", traceback.format_exc())
                error = f"{type(exc).__name__}: {exc}"
                rows.append(Row(name, role, "failed", error=error, tuning=tuning))
                states[name] = "failed"
                _write_manifest(out, config, "running", states)
                note(f"[{i}/{len(names)}] {name} FAILED: {error}")
                continue
            result.models[name] = model
            config.params[name] = model.params  # resolved: the config file repeats the run
            if tuning is not None:
                write_json(sub / TUNING_FILE, tuning)
            if row.seeds is not None:
                write_json(sub / SEEDS_FILE, row.seeds)
            rows.append(row)
            states[name] = "ok"
            _write_manifest(out, config, "running", states)
            note(f"[{i}/{len(names)}] {name}: fit {info.fit_seconds:.1f} s, {outcome}")
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
    result.coldstart = _coldstart_stage(config, ds, out, cold)
    result.seconds = round(time.perf_counter() - started, 1)
    # under torchrun: each rank's share of the run's work, time and memory, for the manifest
    ranks = rank_report(result.seconds, since=work_before)
    _write_outputs(result, config, ds, data, states, ranks)
    return result


class ColdStartFits:
    """The cold-start board's split and refitted models (:func:`_coldstart_stage`).

    A method whose fit runs mostly on one core (``fits_on_one_core``: EGES's sequential
    SGD) leaves the other core idle for minutes, and its cold-start refit costs as much
    again at the end of the run. So when the run starts such a method's warm fit, the
    cold-start split and the refits of every such method start in a background thread beside
    it, silent, each on the core the other leaves idle; the stage at the end takes them.
    The models are the same either way (each fit is seeded and runs the same code); only
    the warm fit's seconds include the sharing of the machine (``coldstart.json`` names
    that fit: ``fitted_beside``).
    Not under torchrun (the collectives of two fits would interleave) and not when numba's
    threading layer cannot launch parallel kernels from two threads at once (workqueue)."""

    def __init__(self, config: RunConfig, ds: Dataset) -> None:
        self.config, self.ds = config, ds
        self.able = _coldstart_methods(config, ds)
        self.beside: str | None = None  # the warm fit the background started beside
        self._thread: threading.Thread | None = None
        self._split: Any = None
        self._models: dict[str, Any] = {}
        self._error: BaseException | None = None

    def start_beside(self, name: str, params: dict[str, Any]) -> None:
        """Start the background refits if ``name`` (about to fit with ``params``, which the
        stage at the end would use too) fits on one core and cold-starts."""
        one_core = [n for n in self.able if get_method(n).fits_on_one_core]
        if (self._thread is not None or name not in one_core or world().size > 1
                or not _kernels_launch_from_two_threads()):
            return
        given = {n: params if n == name else self.config.method_params(n) for n in one_core}
        self.beside = name
        note(f"cold start: {', '.join(one_core)} refitted in the background, beside {name}")
        self._thread = threading.Thread(target=self._fit, args=(given,), daemon=True,
                                        name="cold-start fits")
        self._thread.start()

    def _fit(self, given: dict[str, dict[str, Any]]) -> None:
        try:
            with quiet_here():
                self._split = _cold_split(self.config, self.ds)
                for n, params in given.items():
                    self._models[n] = _cold_model(n, params, self._split)
        except BaseException as exc:  # handed to the stage, which records it
            self._error = exc

    def models(self) -> tuple[Any, dict[str, Any]]:
        """The split and every able method's cold-start model: what the background fitted,
        and the rest fitted now (in the run's order)."""
        if self._thread is not None:
            self._thread.join()
            if self._error is not None:
                raise self._error
        split = self._split if self._split is not None else _cold_split(self.config, self.ds)
        return split, {n: self._models[n] if n in self._models else
                       _cold_model(n, self.config.method_params(n), split) for n in self.able}


def _coldstart_methods(config: RunConfig, ds: Dataset) -> list[str]:
    """The run's methods that can place an unseen movie (none without a movie table)."""
    from embedlens.methods.base import can

    if ds.items is None:
        return []
    return [n for n in config.all_methods if can(get_method(n), "coldstart")]


def _cold_split(config: RunConfig, ds: Dataset) -> Any:
    from embedlens.evaluation.coldstart import ColdSplit

    return ColdSplit.prepare(ds, COLD_FRACTION, config.seed)


def _cold_model(name: str, params: dict[str, Any], split: Any) -> Any:
    """``name`` fitted on the cold-start split, with what placing unseen movies needs."""
    return get_method(name)(**coldstart_params(name, params)).fit(split.train,
                                                                  split.train_dataset)


def _kernels_launch_from_two_threads() -> bool:
    """Whether numba's threading layer (known once a parallel kernel has run) takes
    parallel launches from two threads at once: omp and tbb do, workqueue does not."""
    import numba

    try:
        return numba.threading_layer() in ("omp", "tbb")
    except ValueError:  # no parallel kernel has run yet
        return False


def _coldstart_stage(config: RunConfig, ds: Dataset, out: Path,
                     cold: ColdStartFits) -> dict[str, Any] | None:
    """The cold-start leaderboard (``coldstart.json``): the run's methods that can place an
    unseen movie, fitted again (with the run's parameters, and what placing unseen movies
    needs switched on: :func:`coldstart_params`) on the cold-start split, beside
    genre popularity and random order. None when no such method runs or the data has no
    movie table; a failure is recorded, and the run goes on."""
    from embedlens.evaluation.coldstart import coldstart_board

    if not cold.able:
        return None
    note(f"cold start: {', '.join(cold.able)} on 10% of movies held out entirely …")
    record: dict[str, Any] = {"fraction": COLD_FRACTION}
    if cold.beside is not None:
        record["fitted_beside"] = cold.beside
    try:
        split, models = cold.models()
        record.update(held_out_movies=int(split.cold_items.size),
                      test_users=int(split.test["user_id"].n_unique()),
                      rows=coldstart_board(models, split, config.k, config.seed))
    except Exception as exc:  # the warm leaderboard stands without it
        record["error"] = f"{type(exc).__name__}: {exc}"
    write_json(out / COLDSTART, record)
    return record


def coldstart_params(method: str, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` with what ``method`` needs to place unseen movies switched on (its
    ``Params.coldstart_overrides``; EGES: side information)."""
    return {**params, **getattr(get_method(method).Params, "coldstart_overrides", {})}


def _other_seeds(name: str, params: dict[str, Any], first: EvalResult, config: RunConfig,
                 ds: Dataset, data: EvalSplit) -> dict[str, Any] | None:
    """With ``config.seeds`` > 1: the method fitted again with seeds ``seed+1, ...`` (in
    memory; the run keeps the first), each scored on test; the mean NDCG@k over all seeds
    and its 95% CI over seeds (Student's t). None for one seed or a method without one."""
    if config.seeds < 2 or not get_method(name).Params.has("seed"):
        return None
    from embedlens.evaluation.evaluate import evaluate_model

    key = f"ndcg@{config.k}"
    values, seeds = [first.metrics[key]], [params["seed"]]
    for n in range(1, config.seeds):
        seed = params["seed"] + n
        model = get_method(name)(**{**params, "seed": seed})
        model.fit(data.train, data.train_dataset(ds))
        values.append(evaluate_model(model, data, config.k).metrics[key])
        seeds.append(seed)
    return seed_summary(seeds, values, key)


def seed_summary(seeds: list[int], values: list[float], key: str) -> dict[str, Any]:
    """Mean and 95% CI half-width (Student's t over seeds) of one metric."""
    from scipy import stats

    arr = np.asarray(values, dtype=np.float64)
    half = float(stats.t.ppf(0.975, arr.size - 1) * arr.std(ddof=1) / np.sqrt(arr.size))
    return {"n": int(arr.size), "seeds": seeds, "metric": key, "values": arr.tolist(),
            "mean": float(arr.mean()), "ci95": half}


def _cold_start_row(name: str, role: str, fit_seconds: float | None, model: Model,
                    neighbours: tuple[Any, Dataset] | None, k: int) -> Row:
    """The leaderboard row of a method not ranked for warm users (``warm_ranked`` False):
    its fit time and the judgement of its nearest movies (cheap: a sample of queries, so a
    resumed run judges again rather than keep a file for it)."""
    from embedlens.evaluation.similarity import evaluate_similarity

    judged = None
    if neighbours is not None and isinstance(model, ItemVectors):
        split, ds = neighbours
        judged = evaluate_similarity(model.item_vectors(), split, k, ds.items)
    return Row(name, role, COLD_START, fit_seconds=fit_seconds, similarity=judged)


def _neighbour_split(data: EvalSplit, ds: Dataset) -> tuple[Any, Dataset] | None:
    """The held-out companions every method's neighbours are judged against (None when the
    split has too few test users to say)."""
    from embedlens.evaluation.similarity import SimilaritySplit

    try:
        return SimilaritySplit.prepare(data), ds
    except DataError:
        return None


def _tuned(name: str, params: dict[str, Any], config: RunConfig, ds: Dataset, out: Path,
           split: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """``name``'s parameters after tuning on the validation split (the study kept in
    ``RUN/tuning/``, so a resumed run resumes the search), and the record of the search."""
    from embedlens.app.tune import budget_text, tune_method

    result = tune_method(name, ds, config.protocol, out / "tuning", config.tune_trials,
                         config.tune_timeout, config.seed, config.k, params, split)
    record = {**result.to_dict(), "budget": budget_text(config.tune_trials,
                                                        config.tune_timeout)}
    return {**params, **result.params}, record


def _finished(out: Path, config: RunConfig
              ) -> dict[str, tuple[EvalResult | None, dict[str, Any] | None]]:
    """The methods a resumed run keeps: each with a complete run record and an evaluation on
    this protocol (None for a method not ranked for warm users), made with the parameters
    the config gives now (else the run would mix two configs: refused)."""
    manifest = out / MANIFEST
    if not manifest.is_file():
        raise DataError(f"{out} holds no embedlens run to resume ({MANIFEST} is missing); "
                        "use --force to start over.")
    before = read_json_object(manifest, "run manifest")
    for key in ("dataset", "protocol", "seed", "tune_trials", "tune_timeout", "seeds"):
        if before.get(key) != getattr(config, key):
            raise DataError(
                f"{out} was started with {key} = {before.get(key)!r}; resuming it with "
                f"{getattr(config, key)!r} would mix two runs. Use the same config, or --force "
                "to start over.")
    kept: dict[str, tuple[EvalResult | None, dict[str, Any] | None]] = {}
    for name in config.all_methods:
        sub = out / name
        evaluation = sub / f"evaluation-{config.protocol}.json"
        warm = get_method(name).warm_ranked  # a cold-start-only method has no evaluation
        if not ((sub / RUN_FILE).is_file() and (evaluation.is_file() or not warm)):
            continue
        info, _ = load_run(sub)
        wanted = get_method(name)(**config.method_params(name)).params
        if not config.tuned and info.params != wanted:  # a tuned run's come from its study
            raise DataError(
                f"{sub} was trained with other parameters than the config now gives; resuming "
                "would mix two runs. Use the same config, or --force to start over.")
        tuning = (read_json_object(sub / TUNING_FILE, "tuning record")
                  if (sub / TUNING_FILE).is_file() else None)
        kept[name] = (EvalResult.from_dict(read_json_object(evaluation, "evaluation"),
                                           str(evaluation)) if warm else None, tuning)
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
    listed = manifest.get("methods")
    methods: dict[str, Any] = listed if isinstance(listed, dict) else {}
    done = sum(v == "ok" for v in methods.values())
    return (f"{path} holds an unfinished run (state: {manifest.get('state')}, {done} of "
            f"{len(methods)} methods done); use --resume to finish it or --force to start "
            "over.")


def _write_outputs(result: RunResult, config: RunConfig, ds: Dataset, data: EvalSplit,
                   states: dict[str, str], ranks: list[dict[str, Any]] | None = None) -> None:
    out = result.out
    config.to_toml(out / "config.toml")
    result.board.save(out / LEADERBOARD)
    markdown = result.board.markdown()
    preset = config.preset_used
    if preset is not None:
        from embedlens.app.presets import preset_note

        markdown += "\n" + preset_note(preset) + "\n"
    for name, why in config.left_out.items():
        markdown += f"\nLeft out of the default baselines: {name} ({why})\n"
    if result.coldstart is not None:
        markdown += "\nCold start (movies nobody rated, placed from side information):\n\n"
        markdown += coldstart_markdown(result.coldstart, config.k)
    write_text(out / "leaderboard.md", markdown)
    from embedlens.app.report import write_report

    try:
        write_report(out / "report.html", result.board, result.models, config, ds, data,
                     result.seconds, result.coldstart)
    except Exception as exc:  # the numbers are written; the run is not complete without it
        write_text(out / "report-error.txt", traceback.format_exc())
        _write_manifest(out, config, "report failed", states, result.seconds, ranks)
        raise EmbedlensError(
            f"report.html could not be written ({type(exc).__name__}: {exc}); the leaderboard "
            f"is in {out}, the traceback in report-error.txt. `embedlens run --out {out} "
            "--resume` retries.") from exc
    _write_manifest(out, config, "done", states, result.seconds, ranks)


def _write_manifest(
    out: Path, config: RunConfig, state: str, methods: dict[str, str], seconds: float = 0.0,
    ranks: list[dict[str, Any]] | None = None,
) -> None:
    manifest = {
        "command": "embedlens run", "state": state, "dataset": config.dataset,
        "protocol": config.protocol, "seed": config.seed, "seconds": seconds,
        "tune_trials": config.tune_trials, "tune_timeout": config.tune_timeout,
        "seeds": config.seeds,
        "preset": (config.preset_used or {}).get("meta"),
        "versions": versions(), "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "methods": methods,
    }
    if config.left_out:
        manifest["left_out"] = config.left_out
    record = world_record(ranks)
    if record is not None:
        manifest["distributed"] = record
    write_json(out / MANIFEST, manifest)
