"""Every bad input ends in one clear line and exit code 2, run as a user runs the CLI."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from embedlens.core.embeddings import Embeddings
from test_cli import run


@pytest.fixture(scope="module")
def runs(ml_dir, tmp_path_factory):
    """A small trained cleora run and a pop run to damage copies of."""
    root = tmp_path_factory.mktemp("runs")
    run("--quiet", "train", "cleora", "--dataset", "ml-100k", "--data-dir", str(ml_dir),
        "--out", str(root / "cleora"), "-p", "dim=8")
    run("--quiet", "train", "pop", "--dataset", "ml-100k", "--data-dir", str(ml_dir),
        "--out", str(root / "pop"))
    return root


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def _bad_crc_zip(folder: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("ml-1m/ratings.dat", b"1::10::5::978300760\n" * 20)
        zf.writestr("ml-1m/movies.dat", b"10::Heat (1995)::Action\n")
    data = bytearray(buf.getvalue())
    info = zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo("ml-1m/ratings.dat")
    data[info.header_offset + 30 + len(info.filename) + len(info.extra) + 3] ^= 1
    (folder / "ml-1m.zip").write_bytes(bytes(data))


def _log(tmp: Path, body: bytes, name: str = "log.csv") -> str:
    path = tmp / name
    path.write_bytes(b"user_id,item_id,rating,timestamp\n" + body)
    return str(path)


def _config(tmp: Path, text: bytes | str) -> str:
    path = tmp / "bad.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(path)


def _edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _setup_model_json(value: dict):
    def setup(tmp, runs, ml_dir):
        d = _copy(runs / "cleora", tmp / "c")
        _edit_json(d / "model.json", lambda m: m["params"].update(value))
        return ["similar", str(d), "star wars"]
    return setup


def _setup_damaged(name: str, content: bytes):
    def setup(tmp, runs, ml_dir):
        d = _copy(runs / "cleora", tmp / "c")
        (d / name).write_bytes(content)
        return ["similar", str(d), "star wars"]
    return setup


def _setup_full_run(tmp, runs, ml_dir):
    full = tmp / "full"
    full.mkdir()
    (full / "leaderboard.json").write_text('[{"method": "cleora", "status": "ok", "ndc')
    return ["similar", str(full), "star wars"]


def _setup_nan_items(tmp, runs, ml_dir):
    d = _copy(runs / "cleora", tmp / "c")
    df = pl.read_parquet(d / "items.parquet")
    vec = df["vector"].to_numpy().copy()
    vec[:] = np.nan
    df.with_columns(pl.Series("vector", vec, dtype=df.schema["vector"])).write_parquet(
        d / "items.parquet")
    return ["similar", str(d), "star wars"]


def _setup_toml(text):
    def setup(tmp, runs, ml_dir):
        return ["run", "--config", _config(tmp, text), "--data-dir", str(ml_dir), "--out",
                str(tmp / "out")]
    return setup


CASES = {
    "zip member with a bad CRC": (
        lambda tmp, runs, ml_dir: (_bad_crc_zip(tmp), ["datasets", "info", "ml-1m",
                                                       "--data-dir", str(tmp)])[1],
        r"ratings\.dat is damaged"),
    "CSV with non-UTF-8 bytes": (
        lambda tmp, runs, ml_dir: ["datasets", "info", _log(tmp, b"1,caf\xe9,4,1\n")],
        r"log\.csv is not UTF-8"),
    "text in the rating column": (
        lambda tmp, runs, ml_dir: ["datasets", "info", _log(tmp, b"1,2,four,1\n")],
        r"column 'rating' has 1 value\(s\) that are not numbers \(first: 'four'\)"),
    "text in the timestamp column": (
        lambda tmp, runs, ml_dir: ["datasets", "info", _log(tmp, b"1,2,4,noon\n")],
        r"column 'timestamp' holds text"),
    "NaN rating": (
        lambda tmp, runs, ml_dir: ["datasets", "info", _log(tmp, b"1,2,nan,1\n")],
        r"column 'rating' has 1 row\(s\) that are missing, not finite"),
    "truncated items.parquet": (_setup_damaged("items.parquet", b"PAR1\x00\x01"),
                                r"items\.parquet is not a readable embeddings file"),
    "garbage model.json": (_setup_damaged("model.json", b"{\"name\": \"cle"),
                           r"model\.json is not a readable model file"),
    "garbage run.json": (_setup_damaged("run.json", b"\x00\x01\x02"),
                         r"run\.json is not a readable run record"),
    "garbage leaderboard.json": (_setup_full_run, r"leaderboard\.json is not a readable"),
    "model.json center as text": (_setup_model_json({"center": "no"}),
                                  r"center must be true or false, got 'no'"),
    "model.json unknown similarity": (_setup_model_json({"similarity": "manhattan"}),
                                      r"similarity must be one of 'dot', 'cosine'"),
    "model.json dim as text": (_setup_model_json({"dim": "8"}), r"dim must be an integer"),
    "all-NaN embedding": (_setup_nan_items, r"NaN or infinite"),
    "config k as text": (_setup_toml('k = "10"'), r"k must be an integer, got '10'"),
    "config methods as a number": (_setup_toml("methods = 5"), r"methods must be"),
    "config data_dir as a number": (_setup_toml("data_dir = 5"),
                                    r"data_dir must be a folder path"),
    "config of binary bytes": (_setup_toml(b"\x89PNG\r\n\x1a\n\x00\xff"),
                               r"is not a text file"),
    "config with a value a method cannot take": (
        _setup_toml('methods = ["cleora", "two-tower"]\n[params.two-tower]\nloss = "fooo"\n'),
        r"two-tower parameter loss must be one of 'bce', 'softmax', got 'fooo'"),
    "config params of an unused method": (
        _setup_toml('methods = ["cleora"]\n[params.eges]\nepochs = -1\n'),
        r"eges parameter epochs must be >= 1"),
    "-p value a method cannot take": (
        lambda tmp, runs, ml_dir: ["train", "cleora", "--dataset", "ml-100k", "--data-dir",
                                   str(ml_dir), "--out", str(tmp / "out"), "-p",
                                   "expansion=stars"],
        r"cleora parameter expansion must be one of 'clique', 'star', got 'stars'"),
    "--columns naming a missing column": (
        lambda tmp, runs, ml_dir: ["datasets", "info", _log(tmp, b"1,2,4,1\n"),
                                   "--columns", "user=uid"],
        r"missing column\(s\) uid"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_clear_line(case, runs, ml_dir, tmp_path):
    setup, message = CASES[case]
    args = setup(tmp_path, runs, ml_dir)
    proc = run(*args, ok=False)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("Error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    import re

    assert re.search(message, lines[0]), lines[0]
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_negative_timestamps_print_dates(tmp_path):
    out = run("datasets", "info", _log(tmp_path, b"1,2,4,-86400\n2,2,3,100\n")).stdout
    assert "1969-12-31" in out and "1970-01-01" in out


def test_titles_with_console_markup_print_as_written(tmp_path):
    from embedlens.io.runs import RunInfo
    from embedlens.methods.base import ImportedModel

    meta = pl.DataFrame({"item_id": [1, 2, 3], "title": ["Weird [/] Movie", "[bold]Two[/]",
                                                         "Three"],
                         "genres": [["Drama"], ["[red]"], []]})
    vectors = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    model = ImportedModel.from_embeddings(Embeddings([1, 2, 3], vectors, "item", meta))
    model.save(tmp_path / "r")
    RunInfo("imported", "ml-100k", "random-0.2").save(tmp_path / "r")
    out = run("similar", str(tmp_path / "r"), "Weird [/] Movie", "--k", "2").stdout
    assert "Nearest to Weird [/] Movie" in out and "[bold]Two[/]" in out and "[red]" in out


def test_a_user_with_nothing_left_to_recommend_gets_a_clear_line(tmp_path):
    rows = "".join(f"{u},{i},4,{u * 10 + i}\n" for u in range(1, 13) for i in range(1, 6))
    path = _log(tmp_path, rows.encode())
    run("--quiet", "train", "pop", "--dataset", path, "--protocol", "random-0.2",
        "--out", str(tmp_path / "pop"))
    from embedlens.data import load_log
    from embedlens.evaluation.splits import EvalSplit

    train = EvalSplit.prepare(load_log(path), "random-0.2").train
    counts = np.diff(train.ratings.indptr)
    full, some = np.flatnonzero(counts == train.shape[1]), np.flatnonzero(counts < 5)
    assert full.size and some.size, "the split should leave users of both kinds"
    ok = run("recommend", str(tmp_path / "pop"), "--user", str(train.users.ids[some[0]]))
    assert "Top 10 for user" in ok.stdout
    proc = run("recommend", str(tmp_path / "pop"), "--user", str(train.users.ids[full[0]]),
               ok=False)
    assert proc.returncode == 2 and "Nothing to recommend to user" in proc.stderr


def _main_raising(error: BaseException, command: str, monkeypatch, capsys) -> tuple[int, str]:
    """``embedlens COMMAND`` whose command raises ``error``: the exit status and stderr."""
    import sys

    from embedlens.app import cli

    def raising():
        raise error

    monkeypatch.setattr(cli, "app", raising)
    monkeypatch.setattr(sys, "argv", ["embedlens", command])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    return exit_.value.code, capsys.readouterr().err


def test_an_unexpected_error_is_one_line_with_how_to_see_the_traceback(monkeypatch, capsys):
    code, err = _main_raising(RuntimeError("kaboom [/]"), "datasets", monkeypatch, capsys)
    assert code == 1
    assert err.count("\n") == 1 and "RuntimeError: kaboom [/]" in err and "--debug" in err


def test_an_interrupted_run_says_so_once_and_exits_130(monkeypatch, capsys):
    """Ctrl-C during a run: the pipeline's one line (what was kept, how to resume), not
    "Interrupted: Interrupted: ...", and exit status 130."""
    from embedlens.app.pipeline import RunInterrupted

    error = RunInterrupted("Interrupted: runs/x keeps 1 of 2 finished methods. [/]")
    code, err = _main_raising(error, "run", monkeypatch, capsys)
    assert code == 130
    assert err == "Interrupted: runs/x keeps 1 of 2 finished methods. [/]\n"


def test_embedlens_quiet_works_from_the_command_line(ml_dir, tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "EMBEDLENS_QUIET": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", "from embedlens.app.cli import main; main()", "run", "--dataset",
         "ml-100k", "--data-dir", str(ml_dir), "--methods", "cleora", "--baselines", "pop",
         "--out", str(tmp_path / "q")], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == ""  # no progress lines or bars
