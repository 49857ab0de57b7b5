"""``embedlens run``: config files, the leaderboard, the report and queries over a full run."""

import json

import numpy as np
import pytest

from embedlens.app.config import RunConfig, parse_methods
from embedlens.app.layout import pca_2d
from embedlens.app.leaderboard import Leaderboard, Row
from embedlens.app.queries import method_dir
from embedlens.app.report import main_genres
from embedlens.core.errors import DataError, UnknownNameError
from embedlens.methods.registry import all_methods
from test_cli import run

ALL_METHODS = all_methods()

# Fast settings for the slice (the walk methods are fast with their PMI-SVD default). The
# slice is not ML-100k, so the preset tuned on the full set is left out.
SLICE_CONFIG = """
dataset = "ml-100k"
protocol = "random-0.2"
methods = "all"
preset = false

[params.cleora]
dim = 64

[params.eges]
epochs = 1

[params.two-tower]
epochs = 5
"""


# -- config ----------------------------------------------------------------------------------
def test_config_round_trips_through_toml(tmp_path):
    cfg = RunConfig(dataset="ml-1m", protocol="random-0.2", methods=["cleora", "two-tower"],
                    seed=7, k=20, params={"two-tower": {"epochs": 3, "lr": 0.01},
                                          "text": {"model2vec_path": None}})
    back = RunConfig.from_toml(cfg.to_toml(tmp_path / "c.toml"))
    assert back.methods == ["cleora", "two-tower"] and back.seed == 7 and back.k == 20
    assert back.params["two-tower"] == {"epochs": 3, "lr": 0.01}
    assert back.params["text"] == {}  # None is TOML-less and means "the default" anyway
    assert back.data_dir is None and back.baselines == ["random", "pop", "ease"]


def test_config_seed_reaches_every_seeded_method_unless_it_sets_its_own():
    cfg = RunConfig(methods=["cleora", "two-tower"], seed=5, params={"cleora": {"seed": 1}})
    assert cfg.method_params("two-tower")["seed"] == 5
    assert cfg.method_params("cleora")["seed"] == 1
    assert "seed" not in cfg.method_params("pop")  # pop has no randomness


def test_methods_all_expands_and_mixing_is_refused():
    assert parse_methods("all") == list(ALL_METHODS)
    assert parse_methods(" cleora, text ") == ["cleora", "text"]
    with pytest.raises(DataError, match="'all' cannot be combined"):
        parse_methods("all,pop")


@pytest.mark.parametrize(("text", "message"), [
    ('datset = "ml-100k"', "unknown key.*datset"),
    ('methods = ["cleora", "node2vek"]', "Unknown method 'node2vek'.*node2vec"),
    ('methods = ["cleora"]\n[params.cleora]\ndims = 3', "cleora has no parameter.*dims"),
    ('[params.cleroa]\ndim = 3', "Unknown method 'cleroa'"),
    ('protocol = "time-0.2"', "protocol"),
    ('k = 0', "k must be at least 1"),
    ('methods = [\n', "not valid TOML"),
])
def test_bad_config_is_one_clear_error(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises((DataError, UnknownNameError), match=message):
        RunConfig.from_toml(path)


# -- leaderboard and report pieces -------------------------------------------------------------
def _row(method, ndcg, role="method", status="ok"):
    if status != "ok":
        return {"method": method, "role": role, "status": status, "error": "ValueError: boom"}
    metrics = {f"{m}@10": ndcg for m in ("ndcg", "hitrate", "mrr", "recall", "precision",
                                         "map", "coverage")}
    metrics.update({f"{m}@10_ci95": 0.01 for m in ("ndcg", "hitrate", "mrr", "recall",
                                                   "precision", "map")})
    return {"method": method, "role": role, "status": status, "k": 10, "fit_seconds": 1.0,
            "protocol": "random-0.2", "n_users": 5, **metrics}


def _board(rows):
    return Leaderboard([Row.from_dict(r, "test") for r in rows])


def test_leaderboard_markdown_ranks_best_first_and_lists_failures():
    board = _board([_row("pop", 0.10, "baseline"), _row("cleora", 0.15),
                    _row("text", 0.0, "method", "failed"), _row("deepwalk", 0.15)])
    md = board.markdown()
    body = [line for line in md.splitlines() if line.startswith("| ") and "---" not in line]
    # ties on NDCG break by name, so cleora precedes deepwalk
    assert [line.split(" | ")[1] for line in body[1:]] == ["cleora", "deepwalk", "pop"]
    assert "- text: ValueError: boom" in md
    page = board.html()
    assert page.index("<td>cleora ★</td>") < page.index("<td>deepwalk</td>") < page.index(
        "<td>pop</td>") and "<tr class='baseline'>" in page
    assert [r.method for r in board.ranked()] == ["cleora", "deepwalk", "pop"]


def test_leaderboard_json_round_trips(tmp_path):
    board = _board([_row("pop", 0.10, "baseline"), _row("text", 0.0, "method", "failed")])
    board.save(tmp_path / "lb.json")
    back = Leaderboard.load(tmp_path / "lb.json")
    assert [r.to_dict() for r in back.rows] == [r.to_dict() for r in board.rows]
    (tmp_path / "bad.json").write_text('[{"method": "pop", "status": "ok", "k": 10}]')
    with pytest.raises(DataError, match="not a valid evaluation record"):
        Leaderboard.load(tmp_path / "bad.json")


def test_a_cold_start_only_row_is_fitted_judged_for_neighbours_and_never_ranked(tmp_path):
    sim = {"sim_ndcg@10": 0.3, "sim_ndcg@10_ci95": 0.02, "neighbour_popularity@10": 0.5,
           "sim_queries": 40, "sim_queries_embedded": 40}
    text = {"method": "text", "role": "method", "status": "cold-start", "fit_seconds": 2.5,
            "similarity": sim}
    board = _board([_row("pop", 0.10, "baseline"), _row("cleora", 0.15), text,
                    _row("eges", 0.0, status="failed")])
    board.save(tmp_path / "lb.json")
    back = Leaderboard.load(tmp_path / "lb.json")
    assert [r.to_dict() for r in back.rows] == [r.to_dict() for r in board.rows]
    assert back.rows[2].to_dict() == text
    assert [r.method for r in back.ranked()] == ["cleora", "pop"]
    assert [r.method for r in back.failed] == ["eges"]
    assert [r.method for r in back.fitted()] == ["cleora", "pop", "text"]
    assert [r.method for r in back.neighbours_ranked()] == ["text"]
    md = back.markdown()
    assert "Not ranked for warm users: text (fit 2.5 s)." in md
    assert "| 1 | text | 0.3000 ± 0.0200 |" in md  # its neighbours are on the board
    assert "text" not in back.html()  # the warm table
    (tmp_path / "leaderboard.json").write_text(json.dumps([*(r.to_dict() for r in back.rows)]))
    assert method_dir(tmp_path, None, "similar").name == "text"  # best at neighbours
    assert method_dir(tmp_path, "text", "items").name == "text"


def test_queries_over_a_full_run_pick_the_best_able_method(tmp_path):
    rows = [_row("ease", 0.20, "baseline"), _row("two-tower", 0.12), _row("cleora", 0.15),
            _row("eges", 0.05), _row("node2vec", 0.3, status="failed")]
    (tmp_path / "leaderboard.json").write_text(json.dumps(rows))
    assert method_dir(tmp_path, None, "any").name == "ease"
    assert method_dir(tmp_path, None, "items").name == "cleora"  # ease has no vectors
    assert method_dir(tmp_path, None, "coldstart").name == "eges"
    assert method_dir(tmp_path, "two-tower", "items").name == "two-tower"
    with pytest.raises(DataError, match="node2vec is not a successful method"):
        method_dir(tmp_path, "node2vec", "items")
    with pytest.raises(DataError, match="not a run directory"):
        method_dir(tmp_path / "nowhere")


def test_main_genre_is_the_rarest_and_pca_finds_the_spread(ml100k):
    genre_of = main_genres(ml100k)
    # Toy Story is Animation|Children's|Comedy: Animation is the rarest of the three.
    assert genre_of[1] == "Animation"
    rng = np.random.default_rng(0)
    # two clusters along one axis plus small noise: the first component separates them
    pts = np.concatenate([rng.normal(0, 0.05, (50, 8)), rng.normal(0, 0.05, (50, 8))])
    pts[:50, 0] += 1.0
    pts[:, 1] += 1.0
    xy = pca_2d(pts)
    assert xy.shape == (100, 2)
    a, b = sorted([xy[:50, 0], xy[50:, 0]], key=np.mean)
    assert a.max() < b.min()


# -- end to end on a slice of ML-100k -------------------------------------------------------------
@pytest.fixture(scope="module")
def slice_dir(ml_dir, tmp_path_factory):
    """ml-100k with only its first 300 users, in the layout the loader reads."""
    root = tmp_path_factory.mktemp("slice")
    folder = root / "ml-100k"
    folder.mkdir()
    for name in ("u.item", "u.user"):
        (folder / name).write_bytes((ml_dir / "ml-100k" / name).read_bytes())
    lines = (ml_dir / "ml-100k" / "u.data").read_text().splitlines()
    (folder / "u.data").write_text(
        "\n".join(line for line in lines if int(line.split("\t")[0]) <= 300) + "\n")
    return root


@pytest.fixture(scope="module")
def full_run(slice_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "all"
    config = slice_dir / "config.toml"
    config.write_text(SLICE_CONFIG)
    proc = run("--quiet", "run", "--config", str(config), "--data-dir", str(slice_dir),
               "--out", str(out))
    return out, proc.stdout


def test_run_writes_every_file_and_a_sane_leaderboard(full_run):
    out, stdout = full_run
    rows = json.loads((out / "leaderboard.json").read_text())
    by_method = {r["method"]: r for r in rows}
    assert set(by_method) == {*ALL_METHODS, "random", "pop", "ease"}
    # text is fitted and its neighbours judged, but it is not ranked for warm users: the
    # cold-start board judges it
    text = by_method.pop("text")
    assert text["status"] == "cold-start" and "ndcg@10" not in text
    assert text["fit_seconds"] > 0 and text["similarity"]["sim_ndcg@10"] > 0
    assert not (out / "text" / "evaluation-random-0.2.json").exists()
    assert "Not ranked for warm users: text (fit" in (out / "leaderboard.md").read_text()
    assert "Not ranked for warm users: text" in stdout
    cold = json.loads((out / "coldstart.json").read_text())["rows"]
    assert any(r["ranking"] == "text" for r in cold)
    rows = list(by_method.values())
    assert all(r["status"] == "ok" for r in rows), [r.get("error") for r in rows]
    for r in rows:  # the keys of `embedlens evaluate`, plus the fit time
        for key in ("method", "protocol", "k", "n_users", "ndcg@10", "ndcg@10_ci95",
                    "hitrate@10", "mrr@10", "recall@10", "precision@10", "map@10",
                    "coverage@10", "fit_seconds"):
            assert key in r, (r["method"], key)
        assert r["protocol"] == "random-0.2" and r["n_users"] == by_method["pop"]["n_users"]
    chance = by_method["random"]["ndcg@10"]
    warm = [name for name in ALL_METHODS if name != "text"]
    for name in warm:
        assert by_method[name]["ndcg@10"] > chance, name
    assert by_method["ease"]["ndcg@10"] > by_method["pop"]["ndcg@10"]
    assert "rmse" in by_method["rating-mf"] and 0.7 < by_method["rating-mf"]["rmse"] < 1.3
    for name in ALL_METHODS:
        assert (out / name / "items.parquet").is_file(), name
    for name in warm:
        assert (out / name / "evaluation-random-0.2.json").is_file(), name
    assert (out / "two-tower" / "users.parquet").is_file()
    assert "ease" in (out / "leaderboard.md").read_text() and "ease" in stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["state"] == "done" and manifest["seed"] == 42
    assert manifest["versions"]["embedlens"] and manifest["versions"]["torch"]
    resolved = RunConfig.from_toml(out / "config.toml")
    assert resolved.params["cleora"]["dim"] == 64 and "iterations" in resolved.params["cleora"]


def _report_data(page: str) -> dict:
    start = page.index("window.EMBEDLENS_STATIC=") + len("window.EMBEDLENS_STATIC=")
    return json.loads(page[start:page.index(";</script>", start)])


def test_report_is_self_contained_with_every_section(full_run):
    out, _ = full_run
    page = (out / "report.html").read_text()
    for section in ("Leaderboard", "Nearest neighbours", "Movie maps", "Training curves",
                    "Configuration", "Similar movies", "Map of one method"):
        assert f"<h2>{section}" in page
    assert "Star Wars (1977)" in page  # the most-rated movie of the slice has a table
    for name in ALL_METHODS:
        assert f"<th>{name}</th>" in page
    assert page.count("data:image/png;base64,") >= 2  # the training curves
    # nothing is fetched: script and data inline, no address anywhere
    assert "http://" not in page and "https://" not in page and "<script src" not in page
    assert "<details><summary>config.toml" in page  # not 150 lines of TOML in the way
    assert "kept check" in page  # which network an early-stopped method kept


def test_report_carries_each_methods_own_neighbours_and_map(full_run):
    """The report's inline data answers as the models do: each method's neighbours of the
    most-rated movie are its own cosine top-10, and its map is its PCA layout."""
    from embedlens.app.layout import pca_2d
    from embedlens.io.runs import load_run

    out, _ = full_run
    data = _report_data((out / "report.html").read_text())
    movies = data["movies"]
    board = json.loads((out / "leaderboard.json").read_text())
    judged = sorted((r for r in board if r.get("similarity")),
                    key=lambda r: -r["similarity"]["sim_ndcg@10"])
    assert data["defaults"]["similar"] == judged[0]["method"]  # best at neighbours
    for name in ("cleora", "node2vec", "two-tower"):
        table = data["neighbours"][name]
        star_wars = movies["title"].index("Star Wars (1977)")
        row = table["query"].index(star_wars)
        _, model = load_run(out / name)
        expected = model.item_vectors().most_similar(50, 10, metric="cosine")
        assert [movies["id"][i] for i in table["top"][row]] == expected["id"].to_list()
        np.testing.assert_allclose(table["score"][row], expected["score"].to_numpy(),
                                   atol=1e-4)
        xy = pca_2d(model.item_vectors().vectors)
        shown = data["maps"][name]
        vectors = model.item_vectors()
        at = vectors.positions(np.asarray([movies["id"][i] for i in shown["movie"]]))
        np.testing.assert_allclose(shown["x"], xy[at, 0], atol=1e-4)
    # the most rated first among the queries: popularity never rises along them
    pops = [movies["popularity"][i] for i in data["neighbours"]["cleora"]["query"]]
    assert pops == sorted(pops, reverse=True)


def test_the_leaderboard_marks_the_best_and_the_rows_its_ci_cannot_separate():
    board = _board([_row("pop", 0.10, "baseline"), _row("cleora", 0.15),
                    _row("eges", 0.135), _row("node2vec", 0.125)])
    page = board.html()
    assert "<tr class='method best'><td class=num data-v=1>1</td><td>cleora ★</td>" in page
    # CIs are +-0.01: eges (0.135 + 0.01 >= 0.14) overlaps, node2vec and pop do not
    assert "<tr class='method tie'><td class=num data-v=2>2</td><td>eges</td>" in page
    assert "<tr class='method'><td class=num data-v=3>3</td><td>node2vec</td>" in page
    assert "<tr class='baseline'><td class=num data-v=4>4</td><td>pop</td>" in page
    assert "data-v=0.135>0.1350 ± 0.0100</td>" in page  # sorts by the mean


def test_queries_over_the_full_run(full_run, tmp_path):
    out, _ = full_run
    best = method_dir(out, None, "similar").name  # the best at neighbours answers
    similar = run("similar", str(out), "star wars").stdout
    assert "Return of the Jedi" in similar and f"({best})" in similar
    similar = run("similar", str(out), "star wars", "--method", "text").stdout
    assert "(text)" in similar
    recs = run("recommend", str(out), "--user", "42", "--k", "5").stdout
    assert "Top 5 for user 42" in recs
    cold = run("coldstart", str(out), "--genres", "Animation|Children's").stdout
    assert "Nearest to an unseen movie" in cold
    run("export", str(out), "--format", "word2vec", "--out", str(tmp_path / "exp"))
    exported = {p.parent.parent.name for p in (tmp_path / "exp").rglob("*.txt")}
    assert exported == set(ALL_METHODS)
    scored = run("evaluate", str(out), "--method", "cleora").stdout
    assert "cleora on random-0.2" in scored
    # another protocol's test rows are in this run's train part: refused, nothing saved
    proc = run("evaluate", str(out), "--method", "cleora", "--protocol", "user-time-0.2",
               ok=False)
    assert proc.returncode == 2 and "would leak" in proc.stderr
    assert not (out / "cleora" / "evaluation-user-time-0.2.json").exists()
    proc = run("similar", str(out), "star wars", "--method", "ease", ok=False)
    assert proc.returncode == 2 and "ease is not a successful method" in proc.stderr


def test_config_file_repeats_the_run(full_run, slice_dir, tmp_path):
    out, _ = full_run
    again = tmp_path / "again"
    run("--quiet", "run", "--config", str(out / "config.toml"), "--methods",
        "cleora,two-tower,rating-mf", "--baselines", "random,pop", "--out", str(again))
    first = {r["method"]: r for r in json.loads((out / "leaderboard.json").read_text())}
    for r in json.loads((again / "leaderboard.json").read_text()):
        for key in ("ndcg@10", "hitrate@10", "coverage@10"):
            assert r[key] == first[r["method"]][key], (r["method"], key)


def test_a_failing_method_is_reported_and_the_others_finish(slice_dir, tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('methods = ["cleora", "text"]\nbaselines = ["pop"]\n'
                      '[params.text]\nencoder = "/no/such/encoder"\n[params.cleora]\ndim = 32\n')
    out = tmp_path / "run"
    proc = run("--quiet", "run", "--config", str(config), "--data-dir", str(slice_dir),
               "--out", str(out), ok=False)
    assert proc.returncode == 1 and "Failed" in proc.stdout and "text" in proc.stdout
    rows = {r["method"]: r for r in json.loads((out / "leaderboard.json").read_text())}
    assert rows["text"]["status"] == "failed" and rows["text"]["error"]
    assert rows["cleora"]["status"] == "ok" and rows["pop"]["status"] == "ok"
    assert (out / "text" / "error.txt").is_file() and (out / "report.html").is_file()
    assert "Failed" in (out / "leaderboard.md").read_text()
    # the directory now holds a run: writing there again needs --force
    proc = run("run", "--config", str(config), "--data-dir", str(slice_dir), "--out", str(out),
               "--methods", "cleora", ok=False)
    assert proc.returncode == 2 and "--force" in proc.stderr
    run("--quiet", "run", "--config", str(config), "--data-dir", str(slice_dir), "--out",
        str(out), "--methods", "cleora", "--force")
    assert not (out / "text").exists()


def test_run_refuses_a_folder_that_is_not_a_run(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    proc = run("run", "--out", str(tmp_path), "--methods", "cleora", ok=False)
    assert proc.returncode == 2 and "was not created by embedlens" in proc.stderr
    assert (tmp_path / "notes.txt").read_text() == "mine"



def test_a_run_encodes_text_before_it_trains_the_other_methods():
    """``Model.fit_early`` methods (text) come first among the methods, whatever order the
    user gave; baselines still lead and nothing repeats."""
    from embedlens.app.config import RunConfig

    config = RunConfig(methods=["cleora", "two-tower", "text", "cleora"],
                       baselines=["pop", "ease"])
    assert config.all_methods == ["pop", "ease", "text", "cleora", "two-tower"]
