"""Run folders never lose or mix data: refusals, --force, failures, interruption, --resume,
locks, and custom logs end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from embedlens.app.config import RunConfig
from embedlens.app.pipeline import RunInterrupted, run_all
from embedlens.app.queries import MANIFEST
from embedlens.core.errors import DataError, EmbedlensError
from embedlens.io.folders import MARKER, claim
from embedlens.methods.baselines import PopularityModel
from embedlens.methods.cleora.model import CleoraModel
from test_cli import run


def _config(ml_dir, **changes):
    base = dict(dataset="ml-100k", data_dir=str(ml_dir), methods=["cleora"], baselines=["pop"],
                params={"cleora": {"dim": 16}})
    return RunConfig(**{**base, **changes})


def test_a_run_that_fails_before_training_leaves_no_folder(tmp_path, ml_dir):
    out = tmp_path / "out"
    proc = run("run", "--dataset", "ml-1m", "--data-dir", str(ml_dir), "--out", str(out),
               ok=False)
    assert proc.returncode == 2 and "ml-1m is not in" in proc.stderr
    (tmp_path / "bad.csv").write_text("user_id,item_id,rating,timestamp\n1,2,x,3\n")
    proc = run("run", "--dataset", str(tmp_path / "bad.csv"), "--out", str(out), ok=False)
    assert proc.returncode == 2 and "not numbers" in proc.stderr
    assert not out.exists()
    # the corrected rerun is not blocked by any stub
    run("--quiet", "run", "--dataset", "ml-100k", "--data-dir", str(ml_dir), "--methods",
        "cleora", "--baselines", "pop", "--out", str(out))
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["state"] == "done"
    # ML-100k on the default protocol: the shipped tuned preset, recorded and applied
    from embedlens.app.config import RunConfig
    from embedlens.app.presets import load_preset

    shipped = load_preset("ml-100k", "user-time-0.2")
    assert shipped is not None and manifest["preset"]["trials"] == shipped["meta"]["trials"]
    resolved = RunConfig.from_toml(out / "config.toml").params["cleora"]
    assert {k: resolved[k] for k in shipped["params"]["cleora"]} == shipped["params"]["cleora"]
    assert "tuned preset for ml-100k, user-time-0.2" in (out / "leaderboard.md").read_text()


def test_train_refuses_a_run_folder_and_force_empties_it_first(tmp_path, ml_dir):
    out = tmp_path / "tt"
    run("--quiet", "train", "two-tower", "--dataset", "ml-100k", "--data-dir", str(ml_dir),
        "--out", str(out), "-p", "epochs=1", "-p", "device=cpu")
    assert (out / "users.parquet").is_file()
    proc = run("train", "node2vec", "--dataset", "ml-100k", "--data-dir", str(ml_dir),
               "--out", str(out), ok=False)
    assert proc.returncode == 2 and "--force" in proc.stderr
    run("--quiet", "train", "node2vec", "--dataset", "ml-100k", "--data-dir", str(ml_dir),
        "--out", str(out), "--force")
    assert not (out / "users.parquet").exists()  # two-tower's users are gone, not reused
    assert not (out / "loss.png").exists()
    report = json.loads(run("evaluate", str(out)).stdout and
                        (out / "evaluation-user-time-0.2.json").read_text())
    assert report["method"] == "node2vec" and report["ndcg@10"] > 0.1


def test_a_training_that_fails_leaves_nothing(tmp_path, ml_dir):
    out = tmp_path / "text"
    proc = run("train", "text", "--dataset", "ml-100k", "--data-dir", str(ml_dir), "--out",
               str(out), "-p", "encoder=/no/such/encoder", ok=False)
    assert proc.returncode == 2 and "Cannot load the sentence encoder" in proc.stderr
    assert not out.exists()


def test_an_interrupted_run_keeps_what_finished_and_resume_completes_it(
        tmp_path, ml_dir, monkeypatch):
    out = tmp_path / "run"
    real_fit = CleoraModel.fit

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(CleoraModel, "fit", interrupted)
    with pytest.raises(RunInterrupted, match="keeps 1 of 2 finished methods.*--resume"):
        run_all(_config(ml_dir), out)
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["state"] == "interrupted" and manifest["methods"]["pop"] == "ok"
    assert not (out / "leaderboard.json").exists()
    # queries say what the folder is
    proc = run("similar", str(out), "star wars", ok=False)
    assert proc.returncode == 2 and "unfinished run" in proc.stderr
    # without --resume or --force: refused with both options named
    with pytest.raises(DataError, match="unfinished run.*--resume.*--force"):
        run_all(_config(ml_dir), out)
    # resuming with another seed would mix two runs
    with pytest.raises(DataError, match="mix two runs"):
        run_all(_config(ml_dir, seed=7), out, resume=True)
    monkeypatch.setattr(CleoraModel, "fit", real_fit)
    monkeypatch.setattr(PopularityModel, "fit", lambda *a, **k: pytest.fail("pop redone"))
    result = run_all(_config(ml_dir), out, resume=True)
    assert {r.method: r.status for r in result.board.rows} == {"pop": "ok", "cleora": "ok"}
    assert json.loads((out / MANIFEST).read_text())["state"] == "done"
    assert (out / "report.html").is_file()


def test_resume_keeps_a_method_judged_on_the_cold_start_board(tmp_path, ml_dir, monkeypatch):
    """Text has no warm evaluation file; a resumed run keeps its fitted model (no refit),
    judges its neighbours again and keeps it out of the warm ranking."""
    from embedlens.methods.text.model import TextModel

    real_cleora = CleoraModel.fit
    out = tmp_path / "run"
    config = dict(methods=["cleora", "text"], params={"cleora": {"dim": 16}})

    def encode(texts):  # a stand-in for the sentence encoder: fast, deterministic
        return np.array([[len(t), t.count("a"), t.count("e"), 1.0] for t in texts],
                        dtype=np.float32)

    monkeypatch.setattr(TextModel, "encoder_override", ("counting", encode))
    monkeypatch.setattr(CleoraModel, "fit", lambda *a, **k: (_ for _ in ()).throw(
        KeyboardInterrupt))
    with pytest.raises(RunInterrupted, match="keeps 2 of 3 finished methods"):
        run_all(_config(ml_dir, **config), out)
    assert json.loads((out / MANIFEST).read_text())["methods"]["text"] == "ok"
    monkeypatch.setattr(CleoraModel, "fit", real_cleora)
    fits = []
    real_fit = TextModel.fit

    def counted(self, train, dataset=None):
        fits.append(train.shape)
        return real_fit(self, train, dataset)

    monkeypatch.setattr(TextModel, "fit", counted)
    result = run_all(_config(ml_dir, **config), out, resume=True)
    # one fit: the cold-start board's, on the log without its held-out movies
    assert len(fits) == 1 and fits[0][1] < 1682
    assert any(r["ranking"] == "text" for r in result.coldstart["rows"])
    rows = {r.method: r for r in result.board.rows}
    assert rows["text"].status == "cold-start" and rows["text"].fit_seconds is not None
    assert rows["text"].neighbours is not None
    assert {r.method for r in result.board.ranked()} == {"cleora", "pop"}
    assert [r.method for r in result.board.fitted()][-1] == "text"
    assert result.failed == []


def test_resume_from_the_command_line_reads_the_runs_own_config(tmp_path, ml_dir, monkeypatch):
    out = tmp_path / "run"
    monkeypatch.setattr(CleoraModel, "fit", lambda *a, **k: (_ for _ in ()).throw(
        KeyboardInterrupt))
    with pytest.raises(RunInterrupted):
        run_all(_config(ml_dir, protocol="random-0.2"), out)
    monkeypatch.undo()
    run("--quiet", "run", "--out", str(out), "--resume")  # no other flag: its own config
    rows = json.loads((out / "leaderboard.json").read_text())
    assert {r["protocol"] for r in rows} == {"random-0.2"}


def test_an_interruption_before_any_method_finished_removes_the_folder(
        tmp_path, ml_dir, monkeypatch):
    monkeypatch.setattr(PopularityModel, "fit", lambda *a, **k: (_ for _ in ()).throw(
        KeyboardInterrupt))
    with pytest.raises(RunInterrupted, match="was removed"):
        run_all(_config(ml_dir), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_second_writer_gets_a_clear_error(tmp_path, ml_dir):
    out = tmp_path / "run"
    holder = claim(out, "run")
    try:
        proc = run("run", "--dataset", "ml-100k", "--data-dir", str(ml_dir), "--methods",
                   "cleora", "--baselines", "pop", "--out", str(out), "--force", ok=False)
        assert proc.returncode == 2 and "another embedlens process" in proc.stderr
    finally:
        holder.release()
    assert [p.name for p in out.iterdir()] == [MARKER]


def test_a_report_that_cannot_be_written_is_an_error(tmp_path, ml_dir, monkeypatch):
    import embedlens.app.report

    def broken(*args, **kwargs):
        raise ValueError("no canvas")

    monkeypatch.setattr(embedlens.app.report, "write_report", broken)
    out = tmp_path / "run"
    with pytest.raises(EmbedlensError, match="report.html could not be written.*--resume"):
        run_all(_config(ml_dir), out)
    assert json.loads((out / MANIFEST).read_text())["state"] == "report failed"
    monkeypatch.undo()
    run_all(_config(ml_dir), out, resume=True)
    assert (out / "report.html").is_file()


def test_force_never_deletes_a_users_folder(tmp_path):
    app = tmp_path / "webapp"
    (app / ".git").mkdir(parents=True)
    (app / "src").mkdir()
    (app / "manifest.json").write_text("{}")
    proc = run("run", "--out", str(app), "--force", ok=False)
    assert proc.returncode == 2 and "was not created by embedlens" in proc.stderr
    assert sorted(p.name for p in app.iterdir()) == [".git", "manifest.json", "src"]
    (tmp_path / "link").symlink_to(app)
    proc = run("run", "--out", str(tmp_path / "link"), "--force", ok=False)
    assert proc.returncode == 2 and "symbolic link" in proc.stderr


def test_a_custom_log_gets_a_report_and_its_column_mapping_is_kept(tmp_path, ml_dir):
    """A log with its own column names and no titles or genres: the report is written,
    and evaluate/recommend reload the log through the recorded mapping and absolute path."""
    lines = (ml_dir / "ml-100k" / "u.data").read_text().splitlines()[:20000]
    log = tmp_path / "clicks.csv"
    log.write_text("uid,sku,stars,ts\n" + "\n".join(line.replace("\t", ",")
                                                   for line in lines) + "\n")
    out = tmp_path / "run"
    run("--quiet", "run", "--dataset", str(log), "--columns",
        "user=uid,item=sku,rating=stars,timestamp=ts", "--methods", "cleora,node2vec",
        "--baselines", "pop", "--out", str(out))
    page = (out / "report.html").read_text()
    assert "<h2>Movie maps" in page and "no genres" in page
    info = json.loads((out / "cleora" / "run.json").read_text())
    assert info["dataset"] == str(log) and info["columns"]["user"] == "uid"
    other = tmp_path / "elsewhere"
    other.mkdir()
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", "from embedlens.app.cli import main; main()",
                           "recommend", str(out), "--user", "1", "--method", "cleora"],
                          capture_output=True, text=True, cwd=other)
    assert proc.returncode == 0 and "Top 10 for user 1" in proc.stdout, proc.stderr
    # an implicit log: no rating column at all
    proc = run("--quiet", "train", "pop", "--dataset", str(log), "--columns",
               "user=uid,item=sku,rating=,timestamp=ts", "--out", str(tmp_path / "pop"))
    assert json.loads((tmp_path / "pop" / "run.json").read_text())["columns"]["rating"] is None
    # every test row of an implicit log is relevant (no rating >= 4 threshold to apply)
    report = json.loads(run("evaluate", str(tmp_path / "pop")).stdout and (
        tmp_path / "pop" / "evaluation-user-time-0.2.json").read_text())
    assert report["n_users"] > 0


def test_a_default_baseline_that_refuses_the_catalogue_is_left_out_a_named_one_fails(tmp_path):
    """EASE above its max_items: left out of the default baselines with a note and a line in
    the manifest (the run ends without a failure, and its config file, which names the
    baselines that ran, repeats it); named by the user, it runs and fails with its message."""
    from dataclasses import replace

    from embedlens.testing.planted import planted_log

    log = planted_log()
    params = {"ease": {"max_items": 10}, "cleora": {"dim": 8}}
    cfg = RunConfig(dataset="planted", protocol="random-0.2", methods=["cleora"],
                    params=params)
    assert cfg.baselines == ["random", "pop", "ease"] and cfg.baselines_by_default
    assert replace(cfg, seed=3).baselines_by_default  # the command line's copy keeps it
    result = run_all(cfg, tmp_path / "a", dataset=log)
    assert result.failed == [] and "ease" not in result.models
    manifest = json.loads((tmp_path / "a" / MANIFEST).read_text())
    assert "refusing above 10 items" in manifest["left_out"]["ease"]
    assert set(manifest["methods"]) == {"random", "pop", "cleora"}
    assert "Left out of the default baselines: ease (EASE needs" in (
        tmp_path / "a" / "leaderboard.md").read_text()
    assert "Left out of the default baselines: <b>ease</b>" in (
        tmp_path / "a" / "report.html").read_text()
    again = RunConfig.from_toml(tmp_path / "a" / "config.toml")
    assert again.baselines == ["random", "pop"] and not again.baselines_by_default

    named = RunConfig(dataset="planted", protocol="random-0.2", methods=["cleora"],
                      baselines=["random", "pop", "ease"], params=params)
    assert not named.baselines_by_default
    result = run_all(named, tmp_path / "b", dataset=log)
    assert result.failed == ["ease"]
    assert "left_out" not in json.loads((tmp_path / "b" / MANIFEST).read_text())
