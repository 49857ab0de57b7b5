"""Tuning: a validation split cut from train only, declared search spaces, resumable
studies, pruning hooks, and `tune` / `run --tune` end to end."""

from __future__ import annotations

import json

import pytest

from embedlens.app.tune import tune_method, validation_split
from embedlens.core.errors import DataError
from embedlens.methods.registry import get_method, method_names
from embedlens.prep.protocols import get_protocol
from embedlens.testing import planted_log
from test_cli import run


@pytest.fixture(scope="module")
def planted():
    return planted_log()


@pytest.fixture(scope="module")
def planted_csv(tmp_path_factory, planted):
    path = tmp_path_factory.mktemp("planted") / "planted.csv"
    planted.interactions.write_csv(path)
    return path


@pytest.mark.parametrize("protocol", ["user-time-0.2", "random-0.2", "global-time-0.2"])
def test_validation_is_cut_from_train_by_the_protocols_rule(planted, protocol):
    split = get_protocol(protocol).split(planted.interactions)
    train_ds, val = validation_split(planted, protocol)
    key = ["user_id", "item_id"]
    test_pairs = split.test_all.select(key)
    # nothing of the protocol's test part is seen while tuning
    for part in (val.split.train, val.split.test_all):
        assert part.join(test_pairs, on=key, how="semi").height == 0
    assert train_ds.interactions.height == split.train.height
    if protocol == "global-time-0.2":  # the same rule: the last 20% of train by time
        assert val.split.test_all["timestamp"].min() >= val.split.train["timestamp"].max()


def test_every_tuned_parameter_has_a_valid_range():
    for name in method_names():
        params = get_method(name).Params
        for key, spec in params.search_space().items():
            if spec.tune is True:
                continue
            low, high = spec.tune
            assert low < high, (name, key)
            for value in (low, high):  # both ends are values the method accepts
                get_method(name)(**{key: value})


def test_tune_searches_the_declared_space_and_resumes(planted, tmp_path):
    first = tune_method("ease", planted, "random-0.2", tmp_path, trials=3, seed=1)
    assert first.trials == 3 and first.searched == ["lambda", "min_count", "popularity"]
    assert 1.0 <= first.params["lambda"] <= 5000.0 and 0 < first.value <= 1
    assert (tmp_path / "ease.journal").is_file()
    again = tune_method("ease", planted, "random-0.2", tmp_path, trials=5, seed=1)
    assert again.trials == 5  # the three completed trials were kept, two more ran
    assert again.value >= first.value
    nothing = tune_method("pop", planted, "random-0.2", tmp_path, trials=3)
    assert nothing.trials == 0 and nothing.params == {} and nothing.value is None


def test_a_new_study_starts_from_the_defaults(planted, tmp_path):
    """With a budget of one trial the tune returns the defaults: tuning never ends below
    them on validation, however few trials fit."""
    from embedlens.app.tune import validation_split
    from embedlens.evaluation.evaluate import evaluate_model

    one = tune_method("ials", planted, "random-0.2", tmp_path, trials=1, seed=3)
    defaults = get_method("ials")().params
    spec = get_method("ials").Params.spec
    fitted_keys = [k for k in one.searched if not spec(k).scoring]
    assert {k: one.params[k] for k in fitted_keys} == {k: defaults[k] for k in fitted_keys}
    train_ds, val = validation_split(planted, "random-0.2")
    fitted = get_method("ials")(seed=42).fit(val.train, val.train_dataset(train_ds))
    # the defaults' fit, scored with the scoring parameters the tune chose on it
    fitted.p = fitted.p.replace(**{k: one.params[k] for k in one.searched if spec(k).scoring})
    assert one.value == pytest.approx(evaluate_model(fitted, val)["ndcg@10"])
    assert one.value >= evaluate_model(get_method("ials")(seed=42).fit(
        val.train, val.train_dataset(train_ds)), val)["ndcg@10"]
    more = tune_method("ials", planted, "random-0.2", tmp_path, trials=4, seed=3)
    assert more.trials == 4 and more.value >= one.value


def test_a_default_a_log_range_cannot_hold_is_still_the_first_trials(planted, tmp_path):
    """two-tower's weight_decay defaults to 0, which Optuna refuses on its log range: the
    first trial fits with it anyway instead of failing the whole tune."""
    one = tune_method("two-tower", planted, "random-0.2", tmp_path, trials=1, seed=3,
                      base={"epochs": 1, "device": "cpu"})
    defaults = get_method("two-tower")().params
    assert defaults["weight_decay"] == 0.0 and "weight_decay" not in one.params
    spec = get_method("two-tower").Params.spec
    assert all(v == defaults[k] for k, v in one.params.items() if not spec(k).scoring)
    assert one.trials == 1 and one.value > 0


def test_torch_methods_report_each_epoch_for_pruning(planted):
    from embedlens.evaluation.splits import EvalSplit

    data = EvalSplit.prepare(planted, "random-0.2")
    heard = []
    model = get_method("rating-mf")(epochs=3, patience=5, device="cpu")
    model.epoch_hook = lambda epoch, score: heard.append((epoch, score))
    model.fit(data.train)
    assert [e for e, _ in heard] == [1, 2, 3]
    # higher is better for the listener: rating-mf's RMSE arrives negated
    assert [s for _, s in heard] == [-v for v in model.history["val_rmse"]]


def test_tune_command_writes_a_config_run_takes(planted_csv, tmp_path):
    out = tmp_path / "tuned"
    printed = run("--quiet", "tune", "ease,cleora,pop", "--dataset", str(planted_csv),
                  "--protocol", "random-0.2", "--trials", "3", "--out", str(out)).stdout
    assert "ease" in printed and "cleora" in printed and "(nothing to tune)" in printed
    record = json.loads((out / "tune.json").read_text())
    assert record["results"]["cleora"]["trials"] == 3
    best = (out / "best.toml").read_text()
    assert "[params.ease]" in best and "[params.cleora]" in best
    run("--quiet", "run", "--config", str(out / "best.toml"), "--out", str(tmp_path / "r"))
    rows = {r["method"]: r for r in json.loads((tmp_path / "r" / "leaderboard.json")
                                               .read_text())}
    assert rows["ease"]["status"] == "ok" and rows["cleora"]["status"] == "ok"
    # the same folder cannot continue another protocol's search
    proc = run("tune", "ease", "--dataset", str(planted_csv), "--protocol", "user-time-0.2",
               "--trials", "2", "--out", str(out), ok=False)
    assert proc.returncode == 2 and "would mix two searches" in proc.stderr


def test_run_tune_tunes_every_method_with_one_budget(planted_csv, tmp_path):
    out = tmp_path / "run"
    run("--quiet", "run", "--dataset", str(planted_csv), "--protocol", "random-0.2",
        "--methods", "cleora,ials", "--baselines", "pop,ease", "--tune", "2", "--out",
        str(out))
    rows = {r["method"]: r for r in json.loads((out / "leaderboard.json").read_text())}
    for name in ("cleora", "ials", "ease"):
        assert rows[name]["tuning"]["trials"] == 2, name
        assert rows[name]["tuning"]["budget"] == "2 trials per method"
        tuned = rows[name]["tuning"]["params"]
        trained = json.loads((out / name / "run.json").read_text())["params"]
        assert all(trained[k] == v for k, v in tuned.items()), name  # fitted with the best
    assert rows["pop"]["tuning"]["trials"] == 0
    md = (out / "leaderboard.md").read_text()
    assert "Tuned on a validation split cut from train (2 trials per method" in md
    assert (out / "tuning" / "cleora.journal").is_file()


def test_a_bad_tune_budget_is_refused_before_anything_runs(tmp_path):
    from embedlens.app.config import RunConfig

    with pytest.raises(DataError, match="tune_trials must be a whole number"):
        RunConfig(tune_trials=0)
    proc = run("run", "--tune", "0", "--out", str(tmp_path / "x"), ok=False)
    assert proc.returncode == 2 and not (tmp_path / "x").exists()


def test_a_shipped_preset_fills_what_the_config_leaves_open(monkeypatch):
    from embedlens.app import presets
    from embedlens.app.config import RunConfig

    shipped = {"meta": {"dataset": "ml-100k", "protocol": "random-0.2", "trials": 20},
               "params": {"cleora": {"dim": 32, "iterations": 3}}}
    monkeypatch.setattr(presets, "load_preset",
                        lambda d, p: shipped if (d, p) == ("ml-100k", "random-0.2") else None)
    cfg = RunConfig(protocol="random-0.2", params={"cleora": {"iterations": 1}})
    assert cfg.method_params("cleora") == {"dim": 32, "iterations": 1, "seed": 42}
    assert RunConfig(protocol="random-0.2", preset=False).method_params("cleora") == {
        "seed": 42}
    assert RunConfig(protocol="user-time-0.2").method_params("cleora") == {"seed": 42}
    assert RunConfig(protocol="random-0.2", tune_trials=3).preset_used is None
    assert "tuned preset for ml-100k, random-0.2" in presets.preset_note(shipped)


def test_every_shipped_preset_is_valid_for_the_methods_it_names():
    """A preset that names a parameter a method no longer has, or a value out of its
    range, would fail every default run on its dataset: caught here, not by a user."""
    from importlib import resources

    from embedlens.app.presets import load_preset

    files = [f.name for f in resources.files("embedlens.app.presets").iterdir()
             if f.name.endswith(".toml")]
    assert {"ml-100k__user-time-0.2.toml", "ml-latest-small__user-time-0.2.toml"} <= set(files)
    for name in files:
        dataset, protocol = name.removesuffix(".toml").split("__")
        preset = load_preset(dataset, protocol)
        assert preset is not None
        meta = preset["meta"]
        assert (meta["dataset"], meta["protocol"]) == (dataset, protocol)
        get_protocol(protocol)  # a protocol the project knows
        assert meta["trials"] >= 1 and meta["timeout_seconds"] > 0
        assert "make_presets.py" in meta["command"]
        for method, params in preset["params"].items():
            assert method in method_names(), (name, method)
            get_method(method).Params.from_dict(params)  # names and values validate
            assert 0 < meta["validation_ndcg@10"][method] <= 1
            assert meta["trials_done"][method] >= 1


class _Scored:
    """A stand-in fitted model whose score is a table of its two scoring parameters."""

    def __init__(self, table):
        from embedlens.methods.base import EmbeddingParams

        self.p = EmbeddingParams()
        self.table = table

    @property
    def params(self):
        return self.p.to_dict()

    def score(self):
        key = (self.p.similarity, self.p.min_count)
        if key not in self.table:  # as evaluate_model when every candidate is left out
            raise DataError("recommended nothing")
        return self.table[key]


def test_scoring_ascent_takes_each_parameters_best_value_and_keeps_ties():
    from embedlens.app.tune import scoring_ascent

    values = {"similarity": ["dot", "cosine"], "min_count": [1, 10, 100, 1000]}
    # cosine is worse on its own at min_count 1 but best at 10: a second pass finds it
    table = {("dot", 1): 0.30, ("cosine", 1): 0.20, ("dot", 10): 0.35,
             ("cosine", 10): 0.50, ("dot", 100): 0.10, ("cosine", 100): 0.40}
    model = _Scored(table)
    chosen, best = scoring_ascent(model, values, model.score)
    assert chosen == {"similarity": "cosine", "min_count": 10} and best == 0.50
    assert (model.p.similarity, model.p.min_count) == ("cosine", 10)  # left as chosen
    # min_count 1000 leaves nothing to recommend: passed over, not a failed trial
    # nothing scores higher than the model's own values: they stay
    flat = _Scored({key: 0.3 for key in table})
    assert scoring_ascent(flat, values, flat.score) == ({"similarity": "dot",
                                                         "min_count": 1}, 0.3)


def test_scoring_parameters_are_searched_on_each_fit(planted, tmp_path, monkeypatch):
    """A trial fits once, whatever the scoring parameters try; the best trial's scoring
    choice is part of the result and reproduces its validation score."""
    from embedlens.evaluation.evaluate import evaluate_model
    from embedlens.methods.baselines.ease import EASEModel

    fits = []
    fit = EASEModel.fit
    monkeypatch.setattr(EASEModel, "fit", lambda self, *a: fits.append(1) or fit(self, *a))
    result = tune_method("ease", planted, "user-time-0.2", tmp_path, trials=3, seed=1)
    assert len(fits) == 3 and set(result.params) == {"lambda", "min_count", "popularity"}
    train_ds, val = validation_split(planted, "user-time-0.2")
    again = EASEModel(**result.params).fit(val.train, val.train_dataset(train_ds))
    assert evaluate_model(again, val)["ndcg@10"] == pytest.approx(result.value)


def test_each_parameter_says_how_it_is_searched():
    rows = {r["name"]: r["searched"] for r in get_method("cleora").Params.describe()}
    assert rows["dim"] == "64-1024, log" and rows["expansion"] == "every choice"
    assert rows["min_count"] == "1-100, log, on each fit"
    assert rows["similarity"] == "every choice, on each fit" and rows["seed"] == ""
    # learned user vectors: how users are derived is not searched
    assert get_method("ials").Params.spec("aggregation").searched() == ""
    assert "tuned" in run("methods", "cleora").stdout
