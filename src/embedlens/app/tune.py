"""Tuning: every method and baseline searched on a validation split with the same budget.

The validation split is cut from the protocol's *train* part by the protocol's own rule
(user-time: each user's last 20% of train; global-time: the last 20% of train by time;
random: a random 20% of train), so the test part is read once, by the final evaluation,
and never while tuning. The search space of a method is the parameters its ``Params``
declare with ``tune=`` (ranges, log scale and choices declared once, beside the parameter).
Parameters declared ``scoring=True`` (cosine or dot, centring, how users are derived, the
``min_count`` floor on candidates, the ``popularity`` prior) change only how a fitted model
scores: they are not trials' parameters but are searched on each trial's fit
(:func:`scoring_ascent`), so a trial costs one fit whatever they are.

Optuna's TPE sampler (seeded) proposes the trials; the torch methods report their own
per-epoch validation score so poor trials are pruned early. A study lives in a journal file
in the output folder, so an interrupted tune resumes where it stopped; the best parameters
go to ``best.toml``, a config ``embedlens run --config`` takes.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from embedlens.core.errors import DataError, EmbedlensError
from embedlens.core.params import Spec
from embedlens.core.progress import note
from embedlens.data.dataset import Dataset
from embedlens.evaluation.evaluate import evaluate_model
from embedlens.evaluation.splits import EvalSplit
from embedlens.methods.registry import get_method
from embedlens.prep.protocols import get_protocol

#: The metric every tune maximises on the validation split.
TUNE_METRIC = "ndcg"


@dataclass
class TuneResult:
    """The outcome of one method's search."""

    method: str
    params: dict[str, Any]  # the best trial's values of the searched parameters
    value: float | None  # its validation NDCG@k (None: nothing to search)
    trials: int  # completed trials, resumed ones included
    pruned: int = 0
    seconds: float = 0.0
    searched: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "params": self.params, "value": self.value,
                "trials": self.trials, "pruned": self.pruned, "seconds": self.seconds,
                "searched": self.searched}


def validation_split(ds: Dataset, protocol: str) -> tuple[Dataset, EvalSplit]:
    """The protocol's train part, split again by the protocol's own rule: (the train part as
    a dataset, its fit/validation split)."""
    implicit = bool(ds.meta.get("implicit"))
    if ds.is_share:  # under torchrun, this rank's users: the train part numbered over all
        from embedlens.data.shares import numbered, part_of
        from embedlens.prep.scope import scope_of

        split = get_protocol(protocol).split(numbered(ds), implicit, scope_of(ds))
        train_ds = part_of(ds, split.train)
    else:
        split = get_protocol(protocol).split(ds.interactions, implicit=implicit)
        train_ds = ds.with_interactions(split.train)
    try:
        return train_ds, EvalSplit.prepare(train_ds, protocol)
    except DataError as exc:
        raise DataError(f"Cannot cut a validation split from {protocol}'s train part: {exc}") \
            from None


def suggest(trial: Any, name: str, spec: Spec, kind: type) -> Any:
    """One value of a parameter for an Optuna trial, from its declared search range."""
    if spec.tune is True:
        values = list(spec.choices) if spec.choices is not None else [True, False]
        return trial.suggest_categorical(name, values)
    assert isinstance(spec.tune, tuple) and len(spec.tune) == 2
    low, high = spec.tune
    if kind is int:
        return trial.suggest_int(name, int(low), int(high), log=spec.log)
    return trial.suggest_float(name, float(low), float(high), log=spec.log)


def tune_method(
    method: str, ds: Dataset, protocol: str, out: Path, trials: int | None = 20,
    timeout: float | None = None, seed: int = 42, k: int = 10,
    base: dict[str, Any] | None = None, split: tuple[Dataset, EvalSplit] | None = None,
) -> TuneResult:
    """Search ``method``'s declared space on the validation split for ``trials`` trials
    (counting those a previous, interrupted call completed) or ``timeout`` seconds; the
    study is kept in ``out/<method>.journal``. ``base`` holds fixed parameters (a seed).
    A new study's first trial is the method's defaults."""
    try:
        import optuna
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend
    except ImportError as exc:
        raise EmbedlensError("Tuning needs optuna: pip install 'embedlens[tune]'.") from exc
    import typing

    cls = get_method(method)
    space = cls.Params.search_space()
    base = dict(base or {})
    if not space:  # popularity, random: nothing to search
        return TuneResult(method, {}, None, 0)
    if trials is None and timeout is None:
        raise DataError("Give tuning a budget: a number of trials or a timeout.")
    hints = typing.get_type_hints(cls.Params)
    kinds = {key: _base_type(hints[_field_name(cls.Params, key)]) for key in space}
    # parameters that need a fit of their own are the trials' (TPE); scoring parameters are
    # tried on each trial's fit (scoring_ascent)
    names = [key for key, spec in space.items() if not spec.scoring]
    scoring = {key: scoring_values(spec, kinds[key]) for key, spec in space.items()
               if spec.scoring}
    if not names:  # nothing to fit differently: one fit, its scoring searched
        trials, timeout = 1, None
    train_ds, val = split or validation_split(ds, protocol)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out.mkdir(parents=True, exist_ok=True)
    storage = JournalStorage(JournalFileBackend(str(out / f"{method}.journal")))
    study = optuna.create_study(
        study_name=method, storage=storage, direction="maximize", load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2))
    defaults = cls.Params().to_dict()
    # a default Optuna cannot hold as a value of its range (0 on a log scale: two-tower's
    # weight_decay) is not a parameter of the first trial; that trial fits with it unsuggested
    unheld = {name for name in names if space[name].log
              and isinstance(defaults[name], int | float) and defaults[name] <= 0}
    if not study.trials:
        # the first trial of a new study is the method's defaults, so a tune can only
        # improve on them (on validation), however few trials its budget allows
        with warnings.catch_warnings():  # a default may lie outside the searched range
            warnings.simplefilter("ignore")
            study.enqueue_trial({name: defaults[name] for name in names if name not in unheld},
                                user_attrs={DEFAULTS_ATTR: True})
    done = [t for t in study.trials if t.state.is_finished()]
    remaining = None if trials is None else max(0, trials - len(done))
    started = time.perf_counter()
    key = f"{TUNE_METRIC}@{k}"

    def objective(trial: Any) -> float:
        with warnings.catch_warnings():  # the enqueued defaults, outside the range
            warnings.simplefilter("ignore")
            first = trial.user_attrs.get(DEFAULTS_ATTR, False)
            values = {name: defaults[name] if first and name in unheld
                      else suggest(trial, name, space[name], kinds[name]) for name in names}
        model = cls(**{**base, **values})
        hook = getattr(model, "epoch_hook", False)
        if hook is not False:  # the torch methods: report each epoch, stop a poor trial

            def on_epoch(epoch: int, score: float) -> None:
                trial.report(score, epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned()

            model.epoch_hook = on_epoch  # type: ignore[attr-defined]
        model.fit(val.train, val.train_dataset(train_ds))
        chosen, value = scoring_ascent(model, scoring, lambda: float(
            evaluate_model(model, val, k).metrics[key]))
        trial.set_user_attr(SCORING_ATTR, chosen)
        return value

    def progress(study: Any, trial: Any) -> None:
        state = "pruned" if trial.state == optuna.trial.TrialState.PRUNED else (
            f"{key} {trial.value:.4f}" if trial.value is not None else "failed")
        best = f"{study.best_value:.4f}" if _has_best(study) else "-"
        note(f"[tune {method}] trial {trial.number + 1}: {state}; best {best}; "
             f"{time.perf_counter() - started:.0f} s")

    if remaining != 0:
        study.optimize(objective, n_trials=remaining, timeout=timeout, callbacks=[progress],
                       catch=(DataError,))
    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    if not finished:
        raise EmbedlensError(f"Tuning {method} finished no trial (pruned: {pruned}); give it "
                             "a larger budget.")
    best = study.best_trial
    assert best.value is not None  # a completed trial
    params = {**best.params, **best.user_attrs.get(SCORING_ATTR, {})}
    return TuneResult(method, params, float(best.value), len(finished), pruned,
                      round(time.perf_counter() - started, 1), sorted(space))


#: The trial attribute marking a study's first trial, the method's defaults.
DEFAULTS_ATTR = "defaults"
#: The trial attribute holding the scoring parameters chosen on the trial's fit.
SCORING_ATTR = "scoring"
#: Values of a numeric scoring parameter tried on a fit (geometric on a log scale).
SCORING_GRID = 5


def scoring_values(spec: Spec, kind: type) -> list[Any]:
    """The values of a scoring parameter tried on each fit: every choice (both values of
    a flag), or ``SCORING_GRID`` points of its range."""
    if spec.tune is True:
        return list(spec.choices) if spec.choices is not None else [False, True]
    assert isinstance(spec.tune, tuple) and len(spec.tune) == 2
    low, high = (float(v) for v in spec.tune)
    grid = (np.geomspace if spec.log else np.linspace)(low, high, SCORING_GRID)
    return sorted({round(float(v)) for v in grid}) if kind is int else [float(v) for v in grid]


def scoring_ascent(model: Any, values: dict[str, list[Any]], score: Callable[[], float],
                   ) -> tuple[dict[str, Any], float]:
    """The best scoring parameters of a fitted ``model`` by ``score()``: starting from its
    own, each parameter in turn takes the value that scores best with the others held, until
    a pass changes nothing (at most three passes). A value replaces the current one only if
    it scores strictly higher, so where nothing differs the model's own values stay. The
    model is left with the chosen values; returns them and their score. A value with which
    the model recommends nothing (a ``min_count`` above every movie's count) is passed over."""
    best = score()
    chosen = {key: model.params[key] for key in values}
    for _ in range(3):
        changed = False
        for key, options in values.items():
            for value in options:
                if value == chosen[key]:
                    continue
                model.p = model.p.replace(**{key: value})
                try:
                    got = score()
                except DataError:  # nothing left to recommend with this value
                    continue
                if got > best:
                    best, chosen[key], changed = got, value, True
            model.p = model.p.replace(**{key: chosen[key]})
        if not changed:
            break
    return chosen, best


def _has_best(study: Any) -> bool:
    try:
        study.best_value  # noqa: B018 - raises until a trial completed
    except ValueError:
        return False
    return True


def _field_name(params_class: Any, key: str) -> str:
    from dataclasses import fields

    for f in fields(params_class):
        spec = f.metadata.get("spec")
        if (spec.key if spec is not None and spec.key else f.name) == key:
            return f.name
    raise KeyError(key)


def _base_type(tp: Any) -> type:
    import typing

    args = [a for a in typing.get_args(tp) if a is not type(None)]
    return args[0] if args else tp


TUNE_FILE = "tune.json"
BEST_FILE = "best.toml"


def tune_all(
    methods: list[str], ds: Dataset, dataset: str, protocol: str, out: Path,
    trials: int | None = 20, timeout: float | None = None, seed: int = 42, k: int = 10,
    data_dir: str | None = None, columns: dict[str, str | None] | None = None,
) -> dict[str, TuneResult]:
    """Tune each of ``methods`` with the same budget into ``out`` (resuming studies found
    there); write ``tune.json`` (every result) and ``best.toml`` (a run config with the best
    parameters) after each method, atomically."""
    from embedlens.app.config import RunConfig
    from embedlens.core.files import write_json
    from embedlens.methods.registry import role_of

    split = validation_split(ds, protocol)
    results: dict[str, TuneResult] = {}
    for name in methods:
        base = {"seed": seed} if get_method(name).Params.has("seed") else {}
        results[name] = tune_method(name, ds, protocol, out, trials, timeout, seed, k, base,
                                    split)
        record = {"dataset": dataset, "protocol": protocol, "seed": seed, "k": k,
                  "budget": budget_text(trials, timeout),
                  "results": {n: r.to_dict() for n, r in results.items()}}
        write_json(out / TUNE_FILE, record)
        params = {n: r.params for n, r in results.items() if r.params}
        RunConfig(dataset=dataset, data_dir=data_dir, protocol=protocol, seed=seed, k=k,
                  methods=[n for n in results if role_of(n) == "method"],
                  baselines=[n for n in results if role_of(n) == "baseline"],
                  params=params, columns=columns).to_toml(out / BEST_FILE)
    return results


def check_tune_folder(out: Path, dataset: str, protocol: str, seed: int, k: int) -> None:
    """A folder may hold one tune: resuming it with another dataset, protocol, seed or k
    would mix two searches in one study."""
    from embedlens.core.files import read_json_object
    from embedlens.io.folders import preflight

    preflight(out, resume=True)
    record = out / TUNE_FILE
    if not record.is_file():
        return
    before = read_json_object(record, "tune record")
    for key, value in (("dataset", dataset), ("protocol", protocol), ("seed", seed), ("k", k)):
        if before.get(key) != value:
            raise DataError(f"{out} holds a tune with {key} = {before.get(key)!r}; resuming it "
                            f"with {value!r} would mix two searches. Choose another --out.")


def budget_text(trials: int | None, timeout: float | None) -> str:
    """The budget in words, for records and leaderboards."""
    parts = ([f"{trials} trials"] if trials is not None else []) + (
        [f"{timeout:g} s"] if timeout is not None else [])
    return " or ".join(parts) + " per method"
