"""The cold-start protocol: held-out movies never reach train; EGES places them better than
chance."""

import numpy as np
import polars as pl

from embedlens.evaluation.coldstart import ColdSplit, evaluate_coldstart
from embedlens.methods.registry import get_method


def test_coldstart_protocol_on_ml100k(ml100k):
    split = ColdSplit.prepare(ml100k, fraction=0.1, seed=1)
    assert len(split.cold_items) == 168
    assert not np.isin(split.cold_items, split.train.items.ids).any()
    assert split.test[("item_id")].is_in(pl.Series(split.cold_items).implode()).all()
    model = get_method("eges")(epochs=2, num_walks=5).fit(
        split.train, split.train_dataset)
    out = evaluate_coldstart(model, split)
    ours = out["model, held-out only"]
    chance = out["no side info (random), held-out only"]
    assert ours["ndcg@10"] > chance["ndcg@10"] + chance["ndcg@10_ci95"]
    assert out["genre popularity, held-out only"]["cold_share@10"] == 1.0
    assert 0.0 <= out["model, full catalogue"]["cold_share@10"] <= 1.0


def test_eges_without_side_information_is_never_scored_as_placing_nothing(ml100k):
    """A model that cannot place any unseen movie is an error, not a row of zeros."""
    import pytest

    from embedlens.core.errors import DataError

    split = ColdSplit.prepare(ml100k, fraction=0.1, seed=1)
    bare = get_method("eges")(side_info=False, epochs=1, num_walks=2).fit(
        split.train, split.train_dataset)
    assert not bare.places_unseen
    with pytest.raises(DataError, match="side_info"):
        bare.coldstart(["Comedy"])
    with pytest.raises(DataError, match="cannot place unseen movies"):
        evaluate_coldstart(bare, split)


def test_the_cold_start_board_switches_side_information_on(ml_dir, tmp_path):
    """A run whose EGES ranks without side information (a tuned preset may choose that)
    still puts EGES from side information on the cold-start board."""
    import json

    from embedlens.app.config import RunConfig
    from embedlens.app.pipeline import run_all

    config = RunConfig(dataset="ml-100k", data_dir=str(ml_dir), protocol="user-time-0.2",
                       methods=["eges"], baselines=["pop"], preset=False,
                       params={"eges": {"side_info": False}})
    run_all(config, tmp_path / "run")
    record = json.loads((tmp_path / "run" / "coldstart.json").read_text())
    assert "error" not in record
    rows = {r["ranking"]: r["held_out"]["ndcg@10"] for r in record["rows"]}
    assert rows["eges"] > rows["no side information (random order)"] > 0


def test_the_cold_start_refit_beside_the_warm_one_gives_the_same_board(ml_dir, tmp_path,
                                                                        monkeypatch, capsys):
    """EGES's cold-start refit runs in a background thread beside its warm fit (one core
    each), silently: the board, and the warm leaderboard, are the ones the run made when it
    refitted at the end."""
    import json

    import embedlens.app.pipeline as pipeline
    from embedlens.app.config import RunConfig
    from embedlens.core.progress import set_quiet

    def board(out, beside: bool):
        monkeypatch.setattr(pipeline, "_kernels_launch_from_two_threads", lambda: beside)
        config = RunConfig(dataset="ml-100k", data_dir=str(ml_dir), protocol="user-time-0.2",
                           methods=["eges"], baselines=["pop"], preset=False,
                           params={"eges": {"epochs": 2}})
        pipeline.run_all(config, out)
        warm = json.loads((out / "leaderboard.json").read_text())
        record = json.loads((out / "coldstart.json").read_text())
        record["warm"] = [(r["method"], r["ndcg@10"]) for r in warm]
        return record

    set_quiet(False)
    try:
        capsys.readouterr()
        together = board(tmp_path / "beside", True)
        err = capsys.readouterr().err
    finally:
        set_quiet(True)
    after = board(tmp_path / "after", False)
    assert together.pop("fitted_beside") == "eges" and "fitted_beside" not in after
    assert together == after and "error" not in after
    assert "eges refitted in the background, beside eges" in err


def test_a_thread_can_be_silenced_alone():
    """``quiet_here`` silences the bars and notes of the thread that asks, not the run's."""
    import threading

    from embedlens.core.progress import bar, is_quiet, quiet_here, set_quiet

    seen = {}

    def background():
        with quiet_here():
            seen["quiet"], seen["bar_off"] = is_quiet(), bar("x", total=1).disable
        seen["after"] = is_quiet()

    set_quiet(False)
    try:
        t = threading.Thread(target=background)
        t.start()
        t.join()
        mine = bar("y", total=1)
        assert not is_quiet() and not mine.disable
        mine.close()
    finally:
        set_quiet(True)
    assert seen == {"quiet": True, "bar_off": True, "after": False}


def test_text_places_every_held_out_movie_in_one_batch(ml100k, tmp_path, monkeypatch):
    """The board asks for thousands of cold vectors: the text model encodes them in one
    call (reading its cache once) and each equals its one-movie answer; a movie with
    nothing to say about it is left unplaced."""
    from embedlens.methods.base import place_unseen
    from embedlens.methods.text.model import TextModel

    monkeypatch.setenv("EMBEDLENS_DATA_DIR", str(tmp_path))
    calls = []

    def encode(texts):
        calls.append(len(texts))
        return np.array([[len(t), t.count("a"), 1.0] for t in texts], dtype=np.float32)

    model = get_method("text")()
    model.encoder_override = ("counting", encode)
    split = ColdSplit.prepare(ml100k, fraction=0.1, seed=1)
    model.fit(split.train, split.train_dataset)
    assert isinstance(model, TextModel)
    movies = [{"genres": ["Drama"], "tags": ["slow"], "year": 1990, "title": "Ran"},
              {"genres": [], "tags": [], "year": None, "title": None},
              {"genres": ["Comedy", "War"], "tags": [], "year": None, "title": "M*A*S*H"}]
    calls.clear()
    vectors, ok = place_unseen(model, movies, 3)
    assert calls == [2] and ok.tolist() == [True, False, True]
    assert not vectors[1].any()
    for row in (0, 2):
        np.testing.assert_array_equal(vectors[row], model.coldstart(**movies[row]))
    import pytest

    from embedlens.core.errors import DataError

    with pytest.raises(DataError, match="needs a title, genres, tags or a year"):
        model.coldstart(**movies[1])
    out = evaluate_coldstart(model, split)
    assert out["model, held-out only"]["cold_share@10"] == 1.0


def test_genre_popularity_is_each_cold_movies_mean_genre_share_of_train():
    """Six movies, 5 and 6 held out. By hand, the train interactions per genre: Comedy 3 + 1
    (movie 3 counts for Comedy and for Drama), Drama 1 + 1, Horror 2; 8 in all. Movie 5
    (Comedy, Horror) scores the mean of 4/8 and 2/8; movie 6 has no genre: 0."""
    from embedlens.core.interactions import InteractionMatrix
    from embedlens.data.dataset import Dataset
    from embedlens.evaluation.coldstart import _genre_popularity

    genres = {1: ["Comedy"], 2: ["Drama"], 3: ["Comedy", "Drama"], 4: ["Horror"],
              5: ["Comedy", "Horror"], 6: []}
    users_per_movie = {1: 3, 2: 1, 3: 1, 4: 2, 5: 1, 6: 1}
    rows = [(u, m) for m, n in users_per_movie.items() for u in range(n)]
    log = pl.DataFrame({
        "user_id": [u for u, _ in rows], "item_id": [m for _, m in rows],
        "rating": pl.Series([4.0] * len(rows), dtype=pl.Float32),
        "timestamp": pl.Series(range(len(rows)), dtype=pl.Int64)})
    ds = Dataset("tiny", log, items=pl.DataFrame({
        "item_id": list(genres), "title": [f"M{m}" for m in genres],
        "year": pl.Series([2000] * 6, dtype=pl.Int32), "genres": list(genres.values())}))
    cold = pl.col("item_id").is_in([5, 6])
    train = log.filter(~cold)
    split = ColdSplit(InteractionMatrix.from_frame(train), ds.with_interactions(train),
                      np.array([5, 6]), log.filter(cold))
    np.testing.assert_allclose(_genre_popularity(split), [(4 / 8 + 2 / 8) / 2, 0.0],
                               rtol=1e-6)
