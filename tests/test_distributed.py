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


#: Methods whose vectors two ranks must give as one process: the default node2vec and
#: DeepWalk with a wider window (each pair count sent to the rank owning its row, the SVD
#: run on the two ranks' rows: to float rounding), and iALS (rows solved by share: to the
#: bit), and ease-lowrank's randomized solver (each rank's users in every Gram product, the
#: products summed: to float rounding).
WALKS = {"node2vec": {"dim": 32}, "deepwalk": {"dim": 32, "window": 2},
         "ials": {"dim": 32, "epochs": 4},
         "ease-lowrank": {"dim": 32, "solver": "randomized"}}


#: Torch methods whose loss draws nothing at random: each rank takes its share of every
#: batch and the gradients are summed, so two ranks give one process's vectors (to float
#: rounding).
SUMMED = {"rating-mf": {"dim": 16, "epochs": 3}, "elsa": {"dim": 32, "epochs": 3}}
#: Methods whose ranks draw differently: two-tower's negatives (each rank its own), EGES's
#: local SGD on each rank's walks (tables averaged 16 times an epoch). The ranks must hold
#: the same vectors, as good as one process's.
DRAWN = {"two-tower": {"dim": 32, "epochs": 10}, "eges": {"dim": 32}}


def _worker(rank: int, size: int, port: int, ml_dir: str, model_dir: str, out: str) -> None:
    """One rank: fit every method above, and evaluate both its own Cleora and the
    single-process one."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(size), EMBEDLENS_QUIET="1")
    from embedlens.core.distributed import init_from_env, rank_report, work_done
    from embedlens.data import load_movielens
    from embedlens.evaluation.evaluate import evaluate_model
    from embedlens.evaluation.splits import EvalSplit
    from embedlens.io.runs import load_run
    from embedlens.methods.registry import get_method

    w = init_from_env()
    assert (w.rank, w.size, w.backend) == (rank, size, "gloo")
    # Cleora's lean route: this rank reads the Parquet log but keeps only its users
    before_lean = work_done()
    lean = get_method("cleora")(dim=64).fit_parquet(Path(out) / "log.parquet")
    held = work_done().get("hyperedges", 0) - before_lean.get("hyperedges", 0)
    np.save(Path(out) / f"lean-rank{rank}.npy", lean.item_vectors().vectors)
    (Path(out) / f"lean-rank{rank}.json").write_text(json.dumps(held))
    ds = load_movielens("ml-100k", data_dir=ml_dir)
    data = EvalSplit.prepare(ds, "user-time-0.2")
    model = get_method("cleora")(dim=64).fit(data.train)
    single = load_run(Path(model_dir))[1]
    before = work_done()
    theirs = evaluate_model(single, data, 10)
    ranks = rank_report(1.5, since=before)
    walked = {name: get_method(name)(**params).fit(data.train, data.train_dataset(ds))
              for name, params in {**WALKS, **SUMMED, **DRAWN}.items()}
    for name in DRAWN:
        np.save(Path(out) / f"{name}-rank{rank}.npy", walked[name].item_vectors().vectors)
        (Path(out) / f"{name}-rank{rank}.json").write_text(json.dumps(
            evaluate_model(walked[name], data, 10).metrics["ndcg@10"]))
    if w.main:
        (Path(out) / "ranks.json").write_text(json.dumps(ranks))
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

    ds = load_movielens("ml-100k", data_dir=ml_dir)
    data = EvalSplit.prepare(ds, "user-time-0.2")
    model = get_method("cleora")(dim=64).fit(data.train)
    model.save(tmp_path / "single")
    (tmp_path / "single" / "run.json").write_text(json.dumps(
        {"method": "cleora", "dataset": "ml-100k", "protocol": "user-time-0.2"}))
    mine = evaluate_model(model, data, 10).to_dict()
    ds.interactions.write_parquet(tmp_path / "log.parquet", row_group_size=5000)
    lean = get_method("cleora")(dim=64).fit_parquet(tmp_path / "log.parquet")
    mp.spawn(_worker, args=(2, _free_port(), str(ml_dir), str(tmp_path / "single"),
                            str(tmp_path)), nprocs=2, join=True)
    ours = np.load(tmp_path / "vectors.npy")
    theirs = model.item_vectors().vectors
    cosine = (ours * theirs).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs,
                                                                                    axis=1)
    assert cosine.min() > 1 - 1e-6
    assert not np.array_equal(ours, np.zeros_like(ours))
    # the lean route with each rank holding only its users (id modulo 2): one process's
    # vectors on both ranks, and each rank propagated through its own users alone
    alone = lean.item_vectors().vectors
    for r in range(2):
        ranked = np.load(tmp_path / f"lean-rank{r}.npy")
        cosine = (ranked * alone).sum(1) / np.linalg.norm(ranked, axis=1) / np.linalg.norm(
            alone, axis=1)
        assert cosine.min() > 1 - 1e-6, r
        users = ds.interactions["user_id"].unique().to_numpy()
        assert json.loads((tmp_path / f"lean-rank{r}.json").read_text()) == int(
            (users % 2 == r).sum())
    for name, params in WALKS.items():
        alone = get_method(name)(**params).fit(data.train).item_vectors().vectors
        ranked = np.load(tmp_path / f"{name}.npy")
        if name == "ials":  # rows solved by share: the same vectors to the bit
            np.testing.assert_array_equal(ranked, alone, err_msg=name)
        elif name == "ease-lowrank":  # float32 products summed in two parts, then QR
            scale = np.abs(alone).max()
            np.testing.assert_allclose(ranked, alone, rtol=1e-3, atol=1e-4 * scale,
                                       err_msg=name)
        else:  # the same pair counts to the bit; ARPACK's products summed in two parts
            np.testing.assert_allclose(ranked, alone, rtol=1e-4, atol=1e-5, err_msg=name)
    # torch methods with a deterministic loss: each rank's share of every batch, gradients
    # summed: one process's vectors to float rounding
    for name, params in SUMMED.items():
        alone = get_method(name)(**params).fit(data.train).item_vectors().vectors
        np.testing.assert_allclose(np.load(tmp_path / f"{name}.npy"), alone, atol=1e-4,
                                   err_msg=name)
    # ranks that draw their own negatives or run local SGD: the same vectors on both ranks,
    # and as good as one process (NDCG@10 within a tenth of it)
    for name, params in DRAWN.items():
        np.testing.assert_array_equal(np.load(tmp_path / f"{name}-rank0.npy"),
                                      np.load(tmp_path / f"{name}-rank1.npy"), err_msg=name)
        alone = get_method(name)(**params).fit(data.train, data.train_dataset(ds))
        one = evaluate_model(alone, data, 10).metrics["ndcg@10"]
        two = json.loads((tmp_path / f"{name}-rank0.json").read_text())
        assert two == pytest.approx(one, rel=0.1), (name, one, two)
    # each rank's share of the scoring is recorded: half the test users each
    ranks = json.loads((tmp_path / "ranks.json").read_text())
    assert [r["rank"] for r in ranks] == [0, 1]
    # ...and what it sent: its top-10 lists (int32 or int64), and the row counts
    sent = [r["work"].pop("bytes exchanged") for r in ranks]
    assert all(480 * 10 * 4 <= b <= 480 * 10 * 8 + 1024 for b in sent), sent
    assert [r["work"] for r in ranks] == [{"test users": n} for n in (
        (data.users.size + 1) // 2, data.users.size // 2)]
    assert all(r["seconds"] == 1.5 and r["peak_rss_mb"] > 0 for r in ranks)
    # the same model scored by two ranks: every metric and CI to the bit
    shared = json.loads((tmp_path / "theirs.json").read_text())
    shared.pop("eval_seconds")
    mine.pop("eval_seconds")
    assert shared == mine


def _lean_edges_worker(rank: int, size: int, port: int, out: str) -> None:
    """One rank of the lean route on two edge logs: one where every user falls to rank 0
    (rank 1's share is empty), and one with no rows at all. Writes what each gave."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(size), EMBEDLENS_QUIET="1")
    from embedlens.core.distributed import init_from_env
    from embedlens.core.errors import DataError
    from embedlens.methods.registry import get_method

    init_from_env()
    fitted = get_method("cleora")(dim=8).fit_parquet(Path(out) / "even.parquet")
    np.save(Path(out) / f"even-rank{rank}.npy", fitted.item_vectors().vectors)
    try:
        get_method("cleora")(dim=8).fit_parquet(Path(out) / "empty.parquet")
        message = "no error"
    except DataError as exc:
        message = str(exc)
    (Path(out) / f"empty-rank{rank}.txt").write_text(message)
    import torch.distributed as dist

    dist.destroy_process_group()


def test_lean_route_with_an_empty_share_and_an_empty_log(tmp_path):
    """A rank whose share of the users is empty still takes part in every exchange (one
    process's vectors on both ranks), and a log with no rows is one clear error on every
    rank, not a hang in a collective."""
    import polars as pl
    import torch.multiprocessing as mp

    from embedlens.methods.registry import get_method

    even = pl.DataFrame({"user_id": [0, 0, 2, 2, 4, 4, 4], "item_id": [1, 2, 2, 3, 1, 3, 5]})
    even.write_parquet(tmp_path / "even.parquet")
    even.clear().write_parquet(tmp_path / "empty.parquet")
    alone = get_method("cleora")(dim=8).fit_parquet(tmp_path / "even.parquet")
    mp.spawn(_lean_edges_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    for r in range(2):
        np.testing.assert_allclose(np.load(tmp_path / f"even-rank{r}.npy"),
                                   alone.item_vectors().vectors, atol=1e-6, err_msg=str(r))
        message = (tmp_path / f"empty-rank{r}.txt").read_text()
        assert message.startswith("Cannot build an incidence matrix from an empty log"), r
        assert "empty.parquet" in message, r


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
    ranks = info["distributed"].pop("ranks")
    assert info["distributed"] == {"backend": "gloo", "world_size": 2}
    # each rank's share of the hyperedges (users), its fit time and memory
    shares = [r["work"]["hyperedges"] for r in ranks]
    assert abs(shares[0] - shares[1]) <= 4 and all(r["seconds"] > 0 for r in ranks)
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
    """`embedlens run` on 2 ranks, of a log file each rank reads half of: rank 0 writes the
    run (its manifest names the world), the other rank leaves nothing behind, and the
    leaderboard is one process's."""
    import tempfile

    from embedlens.data import load_movielens

    torchrun = Path(sys.executable).with_name("torchrun")
    embedlens = Path(sys.executable).with_name("embedlens")
    if not (torchrun.is_file() and embedlens.is_file()):
        pytest.skip("torchrun or the embedlens script is not installed beside this Python")
    before = set(Path(tempfile.gettempdir()).glob("embedlens-rank*"))
    log = load_movielens("ml-100k", data_dir=ml_dir).interactions.sample(
        fraction=1.0, shuffle=True, seed=1)
    log.write_parquet(tmp_path / "ml100k.parquet", row_group_size=10_000)
    args = ["run", "--dataset", str(tmp_path / "ml100k.parquet"), "--methods", "cleora",
            "--baselines", "pop", "--no-preset"]
    two = tmp_path / "two"
    proc = subprocess.run(
        [str(torchrun), "--standalone", "--nproc-per-node", "2", str(embedlens), *args,
         "--out", str(two)], capture_output=True, text=True,
        env={**os.environ, "EMBEDLENS_QUIET": "1"}, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    manifest = json.loads((two / "manifest.json").read_text())
    assert manifest["state"] == "done"
    ranks = manifest["distributed"].pop("ranks")
    assert manifest["distributed"] == {"backend": "gloo", "world_size": 2}
    assert [sorted(r["work"]) for r in ranks] == [
        ["bytes exchanged", "hyperedges", "log rows read", "steps", "test users"]] * 2
    assert [r["work"]["log rows read"] for r in ranks] == [50_000, 50_000]
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
    # tuned: the validation split cut from the train part held in shares, one trial each
    tuned = [*args, "--tune", "1"]
    proc = subprocess.run(
        [str(torchrun), "--standalone", "--nproc-per-node", "2", str(embedlens), *tuned,
         "--out", str(tmp_path / "tuned2")], capture_output=True, text=True,
        env={**os.environ, "EMBEDLENS_QUIET": "1"}, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    cli(*tuned, "--out", str(tmp_path / "tuned1"))
    two, one = ({r["method"]: r for r in json.loads((tmp_path / d / "leaderboard.json")
                                                   .read_text())} for d in ("tuned2", "tuned1"))
    assert two["cleora"]["tuning"]["params"] == one["cleora"]["tuning"]["params"]
    assert two["cleora"]["ndcg@10"] == pytest.approx(one["cleora"]["ndcg@10"], abs=2e-3)
    proc = subprocess.run(  # a tuning clock: each rank would stop after its own trials
        [str(torchrun), "--standalone", "--nproc-per-node", "2", str(embedlens), *args,
         "--tune-timeout", "5", "--out", str(tmp_path / "clock")], capture_output=True,
        text=True, env={**os.environ, "EMBEDLENS_QUIET": "1"}, timeout=600)
    assert proc.returncode != 0 and "--tune-timeout is not supported" in proc.stderr
    assert not (tmp_path / "clock").exists()
    proc = subprocess.run(  # a one-process command: refused, before it writes anything
        [str(torchrun), "--standalone", "--nproc-per-node", "2", str(embedlens), "tune",
         "cleora", "--dataset", str(tmp_path / "ml100k.parquet"), "--trials", "1", "--out",
         str(tmp_path / "tune")], capture_output=True, text=True,
        env={**os.environ, "EMBEDLENS_QUIET": "1"}, timeout=600)
    assert proc.returncode != 0 and "embedlens tune runs in one process" in proc.stderr
    assert not (tmp_path / "tune").exists()


#: A log read in shares, split on two ranks, against one process: every protocol, with
#: integer ids (Parquet) and text ids (CSV).
SHARED_LOGS = {"log.parquet": ("global-time-0.2", "random-0.2", "user-time-0.2"),
               "log.csv": ("random-0.2", "user-time-0.2")}


class _MeanRating:
    """A stand-in that predicts a rating from the movie id alone (for the RMSE's
    put-together errors)."""

    def predict_ratings(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return np.array([3.5 + 0.25 * (len(str(i)) % 2) for i in items])


def _split_record(data) -> dict[str, np.ndarray]:
    return {"user_ids": data.train.users.ids.astype(str),
            "item_ids": data.train.items.ids.astype(str),
            "indptr": data.train.ratings.indptr, "indices": data.train.ratings.indices,
            "ratings": data.train.ratings.data, "times": data.train.timestamps.data,
            "users": data.users, "truth_indptr": data.truth.indptr,
            "truth_indices": data.truth.indices,
            "excluded": np.array([data.excluded_relevant])}


def _cold_record(split) -> dict[str, np.ndarray]:
    test = split.test.sort("user_id", "item_id")
    return {"cold": split.cold_items, "train_indptr": split.train.ratings.indptr,
            "train_indices": split.train.ratings.indices,
            "train_users": split.train.users.ids, "test_users": test["user_id"].to_numpy(),
            "test_items": test["item_id"].to_numpy(), "test_ratings": test["rating"].to_numpy()}


def _shares_worker(rank: int, size: int, port: int, out: str, ml_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(size), EMBEDLENS_QUIET="1")
    from embedlens.app.tune import validation_split
    from embedlens.core.distributed import init_from_env, work_done
    from embedlens.core.errors import DataError
    from embedlens.data import load_dataset
    from embedlens.evaluation.evaluate import rating_report
    from embedlens.evaluation.splits import EvalSplit

    init_from_env()
    for log, protocols in SHARED_LOGS.items():
        ds = load_dataset(str(Path(out) / log), shared=True)
        assert ds.is_share
        held = {"rows": ds.interactions.height, "n_interactions": ds.n_interactions,
                "n_users": ds.n_users, "n_items": ds.n_items,
                "users": ds.interactions["user_id"].unique().sort().to_list(),
                "merged": ds.meta["duplicates_merged"]}
        (Path(out) / f"{log}-rank{rank}.json").write_text(json.dumps(held))
        for protocol in protocols:
            data = EvalSplit.prepare(ds, protocol)
            np.savez(Path(out) / f"{log}-{protocol}-rank{rank}.npz", **_split_record(data))
            (Path(out) / f"{log}-{protocol}-rmse-rank{rank}.json").write_text(
                json.dumps(rating_report(_MeanRating(), data)))
            part, val = validation_split(ds, protocol)  # the tuner's split of the train part
            np.savez(Path(out) / f"{log}-{protocol}-val-rank{rank}.npz", **_split_record(val),
                     counts=np.array([part.n_interactions, part.n_users, part.n_items]))
    (Path(out) / f"read-rank{rank}.json").write_text(
        json.dumps(work_done().get("log rows read")))
    # rank 1's one user rated only after the global cut: on global-time it holds no train
    # and no test row, yet takes part in every exchange and ends with the split
    for protocol in ("user-time-0.2", "global-time-0.2"):
        data = EvalSplit.prepare(load_dataset(str(Path(out) / "late.parquet"), shared=True),
                                 protocol)
        np.savez(Path(out) / f"late-{protocol}-rank{rank}.npz", **_split_record(data),
                 rows=np.array([data.split.train.height, data.split.test.height]))
    # a MovieLens variant with a ratings.csv: the same, and the cold-start split too
    from embedlens.evaluation.coldstart import ColdSplit

    ml = load_dataset("ml-latest-small", data_dir=ml_dir, shared=True)
    assert ml.is_share and ml.items is not None
    np.savez(Path(out) / f"ml-rank{rank}.npz",
             **_split_record(EvalSplit.prepare(ml, "user-time-0.2")),
             **_cold_record(ColdSplit.prepare(ml, 0.1, 7)))
    # an older format (ml-100k's u.data), parsed whole: each rank keeps its users' share
    old = load_dataset("ml-100k", data_dir=ml_dir, shared=True)
    assert old.is_share
    np.savez(Path(out) / f"ml100k-rank{rank}.npz",
             **_split_record(EvalSplit.prepare(old, "random-0.2")))
    try:  # a log with no rows: one clear line on both ranks, not a hang
        load_dataset(str(Path(out) / "empty.parquet"), shared=True)
        message = "no error"
    except DataError as exc:
        message = str(exc)
    (Path(out) / f"empty-rank{rank}.txt").write_text(message)
    try:  # a bad value in one rank's share only: the same one line on both ranks
        load_dataset(str(Path(out) / "bad.csv"), shared=True)
        message = "no error"
    except DataError as exc:
        message = str(exc)
    (Path(out) / f"bad-rank{rank}.txt").write_text(message)
    import torch.distributed as dist

    dist.destroy_process_group()


def test_a_log_read_in_shares_splits_as_one_process(ml_dir, tmp_path):
    """Two ranks each read half the rows of a log (shuffled, so every user's rows are spread
    over both halves, with repeated pairs to merge); each ends with its own users' rows, and
    the split put together (train matrix, test users, ground truth, RMSE) is one process's,
    to the bit, for every protocol and for integer and text ids; and a MovieLens variant with
    a ratings.csv (ml-latest-small), its cold-start split included."""
    import polars as pl
    import torch.multiprocessing as mp

    from embedlens.app.tune import validation_split
    from embedlens.data import load_dataset, load_movielens
    from embedlens.evaluation.evaluate import rating_report
    from embedlens.evaluation.splits import EvalSplit

    rows = load_movielens("ml-100k", data_dir=ml_dir).interactions
    rows = rows.sample(fraction=1.0, shuffle=True, seed=3)
    again = rows.head(300).with_columns(pl.col("timestamp") + 7, pl.col("rating") + 0.5)
    ties = rows.slice(300, 200)  # the same time: the later row of the log wins
    log = pl.concat([rows, again.head(150), ties, again.tail(150)])
    log.write_parquet(tmp_path / "log.parquet", row_group_size=10_000)
    log.with_columns(pl.format("u{}", "user_id").alias("user_id"),
                     pl.format("m{}", "item_id").alias("item_id")).write_csv(tmp_path / "log.csv")
    bad = log.head(2000).with_columns(pl.col("rating").cast(pl.Utf8))
    bad[1990, "rating"] = "five"
    bad.write_csv(tmp_path / "bad.csv")
    log.clear().write_parquet(tmp_path / "empty.parquet")
    pl.DataFrame({"user_id": [1] * 6 + [2] * 6 + [3] * 2,
                  "item_id": [1, 2, 3, 4, 5, 6, 1, 2, 3, 6, 7, 8, 1, 2], "rating": [4.0] * 14,
                  "timestamp": [1, 2, 3, 4, 5, 200, 6, 7, 8, 9, 10, 11, 300, 301]}
                 ).write_parquet(tmp_path / "late.parquet")
    mp.spawn(_shares_worker, args=(2, _free_port(), str(tmp_path), str(ml_dir)), nprocs=2,
             join=True)
    for protocol in ("user-time-0.2", "global-time-0.2"):
        mine = _split_record(EvalSplit.prepare(load_dataset(str(tmp_path / "late.parquet")),
                                               protocol))
        for r in (0, 1):
            theirs = np.load(tmp_path / f"late-{protocol}-rank{r}.npz")
            for key, value in mine.items():
                np.testing.assert_array_equal(theirs[key], value, err_msg=f"late {key}")
    held = np.load(tmp_path / "late-global-time-0.2-rank1.npz")["rows"]
    assert held.tolist() == [0, 0]  # the empty share: nothing in train or test
    from embedlens.evaluation.coldstart import ColdSplit

    ml = load_dataset("ml-latest-small", data_dir=str(ml_dir))
    mine = {**_split_record(EvalSplit.prepare(ml, "user-time-0.2")),
            **_cold_record(ColdSplit.prepare(ml, 0.1, 7))}
    for r in (0, 1):
        theirs = np.load(tmp_path / f"ml-rank{r}.npz")
        assert sorted(theirs.files) == sorted(mine)
        for key, value in mine.items():
            np.testing.assert_array_equal(theirs[key], value, err_msg=f"ml-latest-small {key}")
    mine = _split_record(EvalSplit.prepare(load_dataset("ml-100k", data_dir=str(ml_dir)),
                                           "random-0.2"))
    for r in (0, 1):
        theirs = np.load(tmp_path / f"ml100k-rank{r}.npz")
        for key, value in mine.items():
            np.testing.assert_array_equal(theirs[key], value, err_msg=f"ml-100k {key}")

    for log_name, protocols in SHARED_LOGS.items():
        whole = load_dataset(str(tmp_path / log_name))
        held = [json.loads((tmp_path / f"{log_name}-rank{r}.json").read_text()) for r in (0, 1)]
        # each rank holds its own users' rows, all of them, merged: together the whole log
        assert held[0]["rows"] + held[1]["rows"] == whole.n_interactions == 100_000
        assert not set(held[0]["users"]) & set(held[1]["users"])
        assert len(held[0]["users"]) + len(held[1]["users"]) == whole.n_users
        assert held[0]["users"][-1] < held[1]["users"][0]  # dealt out in sorted order
        for h in held:
            assert (h["n_interactions"], h["n_users"], h["n_items"], h["merged"]) == (
                whole.n_interactions, whole.n_users, whole.n_items, 500)
        for protocol in protocols:
            data = EvalSplit.prepare(whole, protocol)
            mine = _split_record(data)
            for r in (0, 1):
                theirs = np.load(tmp_path / f"{log_name}-{protocol}-rank{r}.npz")
                for key, value in mine.items():
                    np.testing.assert_array_equal(theirs[key], value,
                                                  err_msg=f"{log_name} {protocol} {key}")
                shared = json.loads(
                    (tmp_path / f"{log_name}-{protocol}-rmse-rank{r}.json").read_text())
                single = rating_report(_MeanRating(), data)
                assert shared["n_ratings"] == single["n_ratings"]
                assert shared["rmse"] == pytest.approx(single["rmse"], rel=1e-12)
            # the tuner's validation split, cut from the train part held in shares
            part, val = validation_split(whole, protocol)
            mine = {**_split_record(val), "counts": np.array(
                [part.n_interactions, part.n_users, part.n_items])}
            for r in (0, 1):
                theirs = np.load(tmp_path / f"{log_name}-{protocol}-val-rank{r}.npz")
                for key, value in mine.items():
                    np.testing.assert_array_equal(theirs[key], value,
                                                  err_msg=f"{log_name} {protocol} val {key}")
    # each rank read half the rows of each log
    read = [json.loads((tmp_path / f"read-rank{r}.json").read_text()) for r in (0, 1)]
    assert read == [log.height, log.height]
    for r in (0, 1):
        assert (tmp_path / f"empty-rank{r}.txt").read_text() == \
            "Log empty.parquet has no rows."
        message = (tmp_path / f"bad-rank{r}.txt").read_text()
        assert message == "Log bad.csv: column 'rating' has 1 value(s) that are not numbers " \
            "(first: 'five').", message
