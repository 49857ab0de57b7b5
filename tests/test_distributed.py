"""torch.distributed: two local ranks (gloo, 127.0.0.1) give what one process gives.

Cleora's propagation shares the hyperedges out and all-reduces each step's sums (the same
vectors to float rounding); evaluation shares the test users out and gathers their top-k
lists (the same metrics to the bit); ``embedlens train``/``evaluate`` under torchrun write
one run, from rank 0, recording the backend and world size.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from embedlens.core.distributed import World, share
from test_cli import run as cli


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_shares_cover_every_item_once_in_rank_order():
    for n in (0, 1, 7, 10, 1001):
        for size in (1, 2, 3, 4):
            parts = [share(n, World(r, size)) for r in range(size)]
            assert parts[0][0] == 0 and parts[-1][1] == n
            assert all(a[1] == b[0] for a, b in itertools.pairwise(parts))
            sizes = [hi - lo for lo, hi in parts]
            assert max(sizes) - min(sizes) <= 1


#: Methods whose vectors two ranks must give to the bit: the default node2vec, DeepWalk
#: with a wider window (pairs gathered block by block), and iALS (rows solved by share).
WALKS = {"node2vec": {"dim": 32}, "deepwalk": {"dim": 32, "window": 2},
         "ials": {"dim": 32, "epochs": 4}}


def _worker(rank: int, size: int, port: int, ml_dir: str, model_dir: str, out: str) -> None:
    """One rank: fit Cleora and evaluate both its own model and the single-process one."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(size), EMBEDLENS_QUIET="1")
    from embedlens.core.distributed import init_from_env
    from embedlens.data import load_movielens
    from embedlens.evaluation.evaluate import evaluate_model
    from embedlens.evaluation.splits import EvalSplit
    from embedlens.io.runs import load_run
    from embedlens.methods.registry import get_method

    w = init_from_env()
    assert (w.rank, w.size, w.backend) == (rank, size, "gloo")
    data = EvalSplit.prepare(load_movielens("ml-100k", data_dir=ml_dir), "user-time-0.2")
    model = get_method("cleora")(dim=64).fit(data.train)
    single = load_run(Path(model_dir))[1]
    theirs = evaluate_model(single, data, 10)
    walked = {name: get_method(name)(**params).fit(data.train)
              for name, params in WALKS.items()}
    if w.main:
        np.save(Path(out) / "vectors.npy", model.item_vectors().vectors)
        (Path(out) / "theirs.json").write_text(json.dumps(theirs.to_dict()))
        for name, fitted in walked.items():
            np.save(Path(out) / f"{name}.npy", fitted.item_vectors().vectors)
    import torch.distributed as dist

    dist.destroy_process_group()


def test_two_ranks_give_one_process_results(ml_dir, tmp_path):
    import torch.multiprocessing as mp

    from embedlens.data import load_movielens
    from embedlens.evaluation.evaluate import evaluate_model
    from embedlens.evaluation.splits import EvalSplit
    from embedlens.methods.registry import get_method

    data = EvalSplit.prepare(load_movielens("ml-100k", data_dir=ml_dir), "user-time-0.2")
    model = get_method("cleora")(dim=64).fit(data.train)
    model.save(tmp_path / "single")
    (tmp_path / "single" / "run.json").write_text(json.dumps(
        {"method": "cleora", "dataset": "ml-100k", "protocol": "user-time-0.2"}))
    mine = evaluate_model(model, data, 10).to_dict()
    mp.spawn(_worker, args=(2, _free_port(), str(ml_dir), str(tmp_path / "single"),
                            str(tmp_path)), nprocs=2, join=True)
    ours = np.load(tmp_path / "vectors.npy")
    theirs = model.item_vectors().vectors
    cosine = (ours * theirs).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs,
                                                                                    axis=1)
    assert cosine.min() > 1 - 1e-6
    assert not np.array_equal(ours, np.zeros_like(ours))
    # walks shared out by start with their pairs gathered in order, iALS rows solved by
    # share: the same vectors to the bit
    for name, params in WALKS.items():
        alone = get_method(name)(**params).fit(data.train).item_vectors().vectors
        np.testing.assert_array_equal(np.load(tmp_path / f"{name}.npy"), alone, err_msg=name)
    # the same model scored by two ranks: every metric and CI to the bit
    shared = json.loads((tmp_path / "theirs.json").read_text())
    shared.pop("eval_seconds")
    mine.pop("eval_seconds")
    assert shared == mine


@pytest.mark.slow
def test_train_and_evaluate_under_torchrun_write_one_run(ml_dir, tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    embedlens = Path(sys.executable).with_name("embedlens")
    if not (torchrun.is_file() and embedlens.is_file()):
        pytest.skip("torchrun or the embedlens script is not installed beside this Python")
    out = tmp_path / "cleora2"
    env = {**os.environ, "EMBEDLENS_QUIET": "1"}
    launch = [str(torchrun), "--standalone", "--nproc-per-node", "2", str(embedlens)]
    proc = subprocess.run(
        [*launch, "train", "cleora", "--dataset", "ml-100k", "--data-dir", str(ml_dir),
         "--out", str(out), "--param", "dim=64"],
        capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    info = json.loads((out / "run.json").read_text())
    assert info["distributed"] == {"backend": "gloo", "world_size": 2}
    assert proc.stdout.count("Trained cleora on ml-100k") == 1  # rank 1 prints nothing
    single = tmp_path / "cleora1"
    cli("train", "cleora", "--dataset", "ml-100k", "--data-dir", str(ml_dir), "--out",
        str(single), "--param", "dim=64")
    from embedlens.io.runs import load_run

    a = load_run(out)[1].item_vectors().vectors
    b = load_run(single)[1].item_vectors().vectors
    assert ((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min() \
        > 1 - 1e-6
    proc = subprocess.run([*launch, "evaluate", str(single), "--data-dir", str(ml_dir)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    two = json.loads((single / "evaluation-user-time-0.2.json").read_text())
    cli("evaluate", str(single), "--data-dir", str(ml_dir))
    one = json.loads((single / "evaluation-user-time-0.2.json").read_text())
    for record in (one, two):
        record.pop("eval_seconds")
    assert one == two


@pytest.mark.slow
def test_a_whole_run_under_torchrun_is_written_once(ml_dir, tmp_path):
    """`embedlens run` on 2 ranks: rank 0 writes the run (its manifest names the world),
    the other rank leaves nothing behind, and the leaderboard is one process's."""
    import tempfile

    torchrun = Path(sys.executable).with_name("torchrun")
    embedlens = Path(sys.executable).with_name("embedlens")
    if not (torchrun.is_file() and embedlens.is_file()):
        pytest.skip("torchrun or the embedlens script is not installed beside this Python")
    before = set(Path(tempfile.gettempdir()).glob("embedlens-rank*"))
    args = ["run", "--dataset", "ml-100k", "--data-dir", str(ml_dir), "--methods", "cleora",
            "--baselines", "pop", "--no-preset"]
    two = tmp_path / "two"
    proc = subprocess.run(
        [str(torchrun), "--standalone", "--nproc-per-node", "2", str(embedlens), *args,
         "--out", str(two)], capture_output=True, text=True,
        env={**os.environ, "EMBEDLENS_QUIET": "1"}, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    manifest = json.loads((two / "manifest.json").read_text())
    assert manifest["state"] == "done"
    assert manifest["distributed"] == {"backend": "gloo", "world_size": 2}
    assert set(Path(tempfile.gettempdir()).glob("embedlens-rank*")) == before
    one = tmp_path / "one"
    cli(*args, "--out", str(one))
    rows = {r["method"]: r for r in json.loads((one / "leaderboard.json").read_text())}
    for r in json.loads((two / "leaderboard.json").read_text()):
        mine = rows[r["method"]]
        for key in ("ndcg@10", "ndcg@10_ci95", "hitrate@10", "coverage@10"):
            assert r[key] == pytest.approx(mine[key], abs=2e-3), (r["method"], key)
        if r["method"] == "pop":  # no float sums split across ranks: to the bit
            assert r["ndcg@10"] == mine["ndcg@10"]
    proc = subprocess.run(
        [str(torchrun), "--standalone", "--nproc-per-node", "2", str(embedlens), *args,
         "--out", str(two), "--resume"], capture_output=True, text=True,
        env={**os.environ, "EMBEDLENS_QUIET": "1"}, timeout=600)
    assert proc.returncode != 0 and "--resume is not supported under torchrun" in proc.stderr
