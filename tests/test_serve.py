"""``embedlens serve``: the HTTP API over a real ML-100k run, through an in-process client."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from fastapi.testclient import TestClient

from embedlens.app.config import RunConfig
from embedlens.app.layout import pca_2d
from embedlens.app.pipeline import run_all
from embedlens.app.serve import RunService, create_app
from embedlens.core.errors import EmbedlensError
from embedlens.data import load_movielens
from embedlens.evaluation.splits import EvalSplit
from embedlens.io.runs import load_run
from test_cli import run as cli


@pytest.fixture(scope="module")
def served(ml_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("serve") / "run"
    config = RunConfig(dataset="ml-100k", data_dir=str(ml_dir), protocol="user-time-0.2",
                       methods=["cleora", "eges"], baselines=["pop"], preset=False)
    run_all(config, out)
    return out, TestClient(create_app(RunService(out, ml_dir, layout="pca")))


def test_methods_follow_the_leaderboard_and_name_the_defaults(served):
    _, client = served
    body = client.get("/api/methods").json()
    names = [m["method"] for m in body["methods"]]
    assert sorted(names) == ["cleora", "eges", "pop"]
    ndcg = [m["leaderboard"]["ndcg@10"] for m in body["methods"]]
    assert ndcg == sorted(ndcg, reverse=True)
    assert [m["rank"] for m in body["methods"]] == [1, 2, 3]
    pop = next(m for m in body["methods"] if m["method"] == "pop")
    assert not pop["items"] and not pop["coldstart"]
    assert body["defaults"]["coldstart"] == "eges"
    assert body["defaults"]["similar"] in ("cleora", "eges")
    assert body["parameters"] == "every method at its defaults"  # preset=False


def test_search_puts_titles_that_start_with_the_query_first(served):
    _, client = served
    movies = client.get("/api/search", params={"q": "star wars"}).json()["movies"]
    assert movies[0]["title"] == "Star Wars (1977)"
    found = client.get("/api/search", params={"q": "jedi"}).json()["movies"]
    assert [m["title"] for m in found] == ["Return of the Jedi (1983)"]


def test_similar_is_what_the_model_says_and_finds_the_sequel(served):
    run, client = served
    body = client.get("/api/similar", params={"item": "star wars", "method": "cleora",
                                              "k": 10}).json()
    assert body["item"]["title"] == "Star Wars (1977)"
    titles = [n["title"] for n in body["neighbours"]]
    assert len(titles) == 10 and "Star Wars (1977)" not in titles
    assert "Return of the Jedi (1983)" in titles
    _, model = load_run(run / "cleora")
    expected = model.item_vectors().most_similar(50, 10, metric="cosine")
    assert [n["id"] for n in body["neighbours"]] == expected["id"].to_list()
    np.testing.assert_allclose([n["score"] for n in body["neighbours"]],
                               expected["score"].to_numpy(), rtol=1e-6)


def test_recommend_leaves_out_the_history_and_marks_the_test_hits(served, ml_dir):
    _, client = served
    history = {m["id"] for m in client.get("/api/users/1").json()["history"]}
    split = EvalSplit.prepare(load_movielens("ml-100k", data_dir=ml_dir), "user-time-0.2")
    train_items = set(split.split.train.filter(user_id=1)["item_id"].to_list())
    test_items = set(split.split.test.filter(user_id=1)["item_id"].to_list())
    assert history == train_items
    for method in ("cleora", "eges", "pop"):
        recs = client.get("/api/recommend", params={"user": "1", "method": method,
                                                    "k": 50}).json()["recommendations"]
        ids = [r["id"] for r in recs]
        assert len(ids) == 50 and not history & set(ids)
        assert {r["id"] for r in recs if r["held_out"]} == test_items & set(ids)
    # pop over 50 movies must hit at least one of user 1's test movies
    assert any(r["held_out"] for r in recs)


def test_coldstart_is_the_models_placement(served):
    run, client = served
    body = client.post("/api/coldstart", json={"genres": ["Sci-Fi", "Action"],
                                               "year": 1980, "k": 5}).json()
    assert body["method"] == "eges"
    _, model = load_run(run / "eges")
    expected = model.item_vectors().similar_by_vector(
        model.coldstart(["Sci-Fi", "Action"], [], 1980), 5)
    assert [n["id"] for n in body["neighbours"]] == expected["id"].to_list()


def test_map_is_the_first_two_principal_components(served):
    run, client = served
    body = client.get("/api/map", params={"method": "cleora"}).json()
    assert body["layout"] == "pca"
    _, model = load_run(run / "cleora")
    items = model.item_vectors()
    assert body["id"] == items.ids.tolist() and len(body["x"]) == len(items)
    x, y = np.asarray(body["x"]), np.asarray(body["y"])
    assert x.var() >= y.var() * (1 - 1e-4) and y.var() > 0  # coordinates are rounded
    assert abs(np.corrcoef(x, y)[0, 1]) < 1e-3  # principal components are uncorrelated
    # the main genre is the rarest (as in the report): Star Wars is Action|Adventure|
    # Romance|Sci-Fi|War, and War is the rarest of those in ML-100k
    assert body["genre"][body["title"].index("Star Wars (1977)")] == "War"
    assert client.get("/api/map", params={"method": "cleora"}).json() == body


def test_the_map_is_the_reports_layout_with_fixed_signs():
    """pca_2d: the unit rows projected on their covariance's top two eigenvectors (an
    independent computation), each sign fixed, so flipping every vector's sign pattern in
    the input leaves the picture unchanged."""
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((300, 6)) * [4.0, 2.0, 1.0, 0.5, 0.5, 0.5] + 1.0
    xy = pca_2d(vectors)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    centred = unit - unit.mean(axis=0)
    values, vecs = np.linalg.eigh(np.cov(centred.T))
    top = vecs[:, np.argsort(values)[::-1][:2]]
    for axis in range(2):
        expected = centred @ top[:, axis]
        assert abs(np.corrcoef(xy[:, axis], expected)[0, 1]) > 0.9999
        loading = top[:, axis] * np.sign(np.corrcoef(xy[:, axis], expected)[0, 1])
        assert loading[np.abs(loading).argmax()] > 0
    assert np.allclose(pca_2d(vectors), xy)
    assert pca_2d(vectors[:1]).tolist() == [[0.0, 0.0]]


@pytest.mark.parametrize(("path", "params", "status", "says"), [
    ("/api/similar", {"item": "No Such Movie Ever"}, 404, "Unknown movie title"),
    ("/api/similar", {"item": "star wars", "method": "bogus"}, 400, "bogus"),
    ("/api/similar", {"item": "star wars", "method": "pop"}, 400, "pop"),
    ("/api/similar", {"item": "star wars", "k": 0}, 422, "k"),
    ("/api/similar", {"item": "star wars", "k": 1000}, 422, "k"),
    ("/api/search", {"q": "x" * 500}, 422, "q"),
    ("/api/search", {"q": "   "}, 400, "q is empty"),
    ("/api/recommend", {"user": "999999"}, 404, "Unknown user"),
    ("/api/users/abc", {}, 404, "Unknown user"),
    ("/api/map", {"method": "../../etc"}, 400, "../../etc"),
])
def test_bad_input_is_a_clear_4xx(served, path, params, status, says):
    _, client = served
    response = client.get(path, params=params)
    assert response.status_code == status
    assert says in response.text


def test_bad_coldstart_bodies_are_4xx(served):
    _, client = served
    assert client.post("/api/coldstart", json={}).status_code == 400
    assert "year" in client.post("/api/coldstart", json={"year": 3000}).json()["error"]
    assert client.post("/api/coldstart", json={"genres": ["x"] * 50}).status_code == 422


def test_the_page_and_the_api_docs_are_served(served):
    _, client = served
    page = client.get("/")
    assert page.status_code == 200 and "embedlens explorer" in page.text
    assert "<script src" not in page.text and "https://" not in page.text  # works offline
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/methods", "/api/search", "/api/similar", "/api/recommend", "/api/coldstart",
            "/api/map", "/api/users/{user}"} <= set(paths)


def test_serve_refuses_bad_arguments_in_one_line(tmp_path):
    proc = cli("serve", str(tmp_path / "nothing"), ok=False)
    assert proc.returncode == 2 and "not a run directory" in proc.stderr
    proc = cli("serve", str(tmp_path), "--port", "70000", ok=False)
    assert proc.returncode == 2 and "--port" in proc.stderr
    proc = cli("serve", str(tmp_path), "--threads", "0", ok=False)
    assert proc.returncode == 2 and "--threads must be 1..256, got 0" in proc.stderr
    proc = cli("serve", str(tmp_path), "--workers", "0", ok=False)
    assert proc.returncode == 2 and "--workers must be 1..64, got 0" in proc.stderr
    for option, value in (("--layout", "tsne"), ("--index", "faiss")):
        proc = cli("serve", str(tmp_path), option, value, ok=False)
        assert proc.returncode == 2 and value in proc.stderr and "choose from" in proc.stderr


def test_held_out_marks_come_from_the_run_without_the_data(served, tmp_path):
    """The run keeps each test user's held-out movies (heldout.npz): a server that cannot
    load the dataset (it moved) still marks them, as the metrics count them."""
    import shutil

    run, client = served
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    moved = TestClient(create_app(RunService(copy, tmp_path / "no-data-here", layout="pca")))
    for user in ("1", "13", "92"):
        ours = moved.get("/api/recommend", params={"user": user, "k": 100}).json()
        theirs = client.get("/api/recommend", params={"user": user, "k": 100}).json()
        assert ours == theirs
    marks = [r["held_out"] for r in ours["recommendations"]]
    assert all(isinstance(m, bool) for m in marks) and any(marks)


def test_the_parameters_note_names_the_preset_and_its_budget(served, tmp_path):
    import json
    import shutil

    run, _ = served
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["preset"] = {"dataset": "ml-100k", "protocol": "user-time-0.2", "trials": 20,
                          "timeout_seconds": 240.0, "made": "2026-12-01", "command": "x"}
    (copy / "manifest.json").write_text(json.dumps(manifest))
    note = RunService(copy, layout="pca").parameters_note
    assert note.startswith("Parameters: the tuned preset for ml-100k, user-time-0.2")
    assert "20 trials" in note and "240" in note
    assert "own parameters" in RunService(copy / "cleora", layout="pca").parameters_note


def test_hnsw_index_finds_the_exact_neighbours_and_is_cached(served, tmp_path):
    """--index hnsw: the neighbours of a sample of movies agree with exact search (recall
    measured and reported), the scores are the exact cosines, and a second server reads the
    index its first one saved instead of building it again."""
    import shutil

    run, exact = served
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    service = RunService(copy, layout="pca", index="hnsw")
    client = TestClient(create_app(service))
    ids = service.train.items.ids[::40].tolist()
    found = agree = 0
    for item in ids:
        ours = client.get("/api/similar", params={"item": str(item), "method": "cleora"}).json()
        truth = exact.get("/api/similar", params={"item": str(item),
                                                  "method": "cleora"}).json()
        a = {n["id"]: n["score"] for n in ours["neighbours"]}
        b = {n["id"]: n["score"] for n in truth["neighbours"]}
        found += len(a)
        agree += len(a.keys() & b.keys())
        for key in a.keys() & b.keys():
            assert a[key] == pytest.approx(b[key], abs=1e-6)
    assert found == 10 * len(ids) and agree / found >= 0.95
    cleora = next(m for m in client.get("/api/methods").json()["methods"]
                  if m["method"] == "cleora")
    assert cleora["search"]["index"] == "hnsw" and cleora["search"]["recall@10"] >= 0.95
    saved = copy / "cleora" / "index-hnsw.bin"
    assert saved.is_file()
    stamp = saved.stat().st_mtime_ns
    again = RunService(copy, layout="pca", index="hnsw")
    again.similar("star wars", "cleora")
    assert saved.stat().st_mtime_ns == stamp  # read, not rebuilt
    assert [m["search"] for m in again.methods()] == [m["search"] for m in service.methods()]


def _same_answers(ours: list[dict], truth: list[dict], tol: float = 1e-5) -> None:
    """The same answers, up to movies whose scores tie to float rounding (the lists score
    with a matrix product, a query with a matrix-vector one): the same scores; the same
    movies above the last score; the same movie wherever its score has no near-tie.
    Cleora gives rarely rated movies with the same raters the same vector, so ties are
    common on ML-100k."""
    a = [(n["id"], n["score"]) for n in ours]
    b = [(n["id"], n["score"]) for n in truth]
    assert len(a) == len(b)
    np.testing.assert_allclose([x for _, x in a], [x for _, x in b], atol=tol)
    last = b[-1][1]
    assert {i for i, x in a if x > last + tol} == {i for i, x in b if x > last + tol}
    for pos, (item, score) in enumerate(b):  # (at the last score, a movie past the list
        # may tie too)
        if score > last + tol and all(abs(b[t][1] - score) > tol for t in (pos - 1, pos + 1)
                                      if 0 <= t < len(b)):
            assert a[pos][0] == item, (pos, a, b)


def test_precomputed_answers_are_the_exact_ones_and_are_cached(served, tmp_path):
    """--precompute: every movie's and user's top 100 (the most a query may ask) come from
    lookups that give what the exact query gives (same movies, same cosines); a second
    server reads the saved lists instead of computing them."""
    import shutil

    from embedlens.app.answers import PRECOMPUTED_K

    run, exact = served
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    service = RunService(copy, layout="pca", precompute=True)
    service.warm()  # loads every method, then precomputes
    client = TestClient(create_app(service))
    listed = {m["method"]: m["precomputed"] for m in client.get("/api/methods").json()["methods"]}
    assert listed == {"cleora": ["recommend", "similar"], "eges": ["recommend", "similar"],
                      "pop": ["recommend"]}
    ids = service.train.items.ids[::60].tolist()
    for method in ("cleora", "eges"):
        for item in ids:
            ask = {"item": str(item), "method": method, "k": 20}
            ours, truth = (c.get("/api/similar", params=ask).json()["neighbours"]
                           for c in (client, exact))
            _same_answers(ours, truth)
    for method in ("cleora", "eges", "pop"):
        for user in ("1", "7", "500", "943"):
            ask = {"user": user, "method": method, "k": 30}
            ours, truth = (c.get("/api/recommend", params=ask).json()["recommendations"]
                           for c in (client, exact))
            _same_answers(ours, truth)
            marks = {r["id"]: r["held_out"] for r in truth}
            assert all(r["held_out"] == marks[r["id"]] for r in ours if r["id"] in marks)
    full = client.get("/api/recommend", params={"user": "1", "method": "pop",
                                                "k": PRECOMPUTED_K}).json()
    assert len(full["recommendations"]) == PRECOMPUTED_K  # the longest query is a lookup
    saved = [copy / m / f"answers-{kind}.npz" for m in ("cleora", "eges")
             for kind in ("similar", "recommend")] + [copy / "pop" / "answers-recommend.npz"]
    stamps = [f.stat().st_mtime_ns for f in saved]
    again = RunService(copy, layout="pca", precompute=True)
    again.warm()
    assert [f.stat().st_mtime_ns for f in saved] == stamps  # read, not computed again
    assert again.similar("star wars", "cleora") == service.similar("star wars", "cleora")


def test_servers_started_together_compute_the_lists_once(tmp_path):
    """Two servers (--workers) asking for the same uncached lists: one computes them while
    the other waits, then reads what the first saved; another key computes again."""
    import threading
    import time

    from embedlens.app.answers import TopLists, cached_lists

    builds = []

    def build() -> TopLists:
        builds.append(threading.get_ident())
        time.sleep(0.3)  # long enough for the other thread to ask meanwhile
        return TopLists(np.arange(6, dtype=np.int32).reshape(2, 3),
                        np.ones((2, 3), dtype=np.float32))

    path = tmp_path / "answers-similar.npz"
    got: list[TopLists] = []
    threads = [threading.Thread(target=lambda: got.append(cached_lists(path, "k1", build)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(builds) == 1 and len(got) == 2
    assert all(np.array_equal(g.positions, got[0].positions) for g in got)
    cached_lists(path, "k1", build)
    assert len(builds) == 1  # read from the file
    cached_lists(path, "k2", build)
    assert len(builds) == 2  # made from something else: computed again


def test_lookups_are_answered_in_front_of_fastapi_as_its_routes_answer(served, tmp_path):
    """With precomputed lists, a lookup is answered before FastAPI (LookupShortcut) with
    the route's own answer; anything else (a title, a bad or repeated value, an unknown id
    or method) is left to the route, which checks and reports it."""
    import shutil

    import orjson

    from embedlens.app.serve import lookup_answer

    run, _ = served
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    service = RunService(copy, layout="pca", precompute=True)
    service.warm()
    app = create_app(service)
    routed, shortcut = TestClient(app.app), TestClient(app)  # FastAPI alone; as served
    for path, query in [("/api/similar", "item=50&k=10"), ("/api/similar", "item=50"),
                        ("/api/similar", "item=50&k=010"), ("/api/similar", "item=%2050%20"),
                        ("/api/similar", "item=50&method=eges&k=100"),
                        ("/api/recommend", "user=1&k=7"),
                        ("/api/recommend", "user=943&method=pop")]:
        body = lookup_answer(service, path, query.encode())
        assert body is not None, query
        listed = "neighbours" if path.endswith("similar") else "recommendations"
        assert len(orjson.loads(body)[listed]) > 0
        assert routed.get(f"{path}?{query}").content == body  # the route's bytes
        assert shortcut.get(f"{path}?{query}").content == body
    for path, query, status in [
        ("/api/similar", "item=50&k=0", 422), ("/api/similar", "item=50&k=101", 422),
        ("/api/similar", "item=50&k=ten", 422), ("/api/similar", "item=" + "9" * 300, 422),
        ("/api/similar", "item=", 422), ("/api/similar", "item=star+wars", 200),
        ("/api/similar", "item=50&item=51", 200), ("/api/similar", "item=999999", 404),
        ("/api/similar", "item=50&method=bogus", 400), ("/api/similar", "item=50&method=pop",
                                                        400),
        ("/api/recommend", "user=999999", 404), ("/api/recommend", "user=1&k=-1", 422),
        ("/api/recommend", "user=1&k=" + "1" * 5000, 422),
        ("/api/recommend", "user=1&k=" + "0" * 4400 + "5", 200),
        ("/api/recommend", "user=1&k=%2B10", 200), ("/api/recommend", "user=1&method=", 400),
        ("/api/recommend", "user=%C2%B2", 404), ("/api/similar", "item=--5", 404),
    ]:
        assert lookup_answer(service, path, query.encode()) is None, query
        answer = shortcut.get(f"{path}?{query}")
        assert answer.status_code == status, (query, answer.text)
        assert answer.json() == routed.get(f"{path}?{query}").json()


def test_several_workers_need_linux(monkeypatch):
    from embedlens.app.workers import check_workers

    assert check_workers(1) == 1
    monkeypatch.setattr(sys, "platform", "darwin")
    assert check_workers(1) == 1  # one server runs anywhere
    with pytest.raises(EmbedlensError, match="--workers above 1 needs Linux"):
        check_workers(2)


def test_a_taken_port_is_one_clear_error():
    import socket

    from embedlens.app.workers import listening_socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(EmbedlensError, match=f"Cannot listen on 127.0.0.1:{port}"):
            listening_socket("127.0.0.1", port)


def test_several_worker_processes_serve_the_same_answers(served, tmp_path):
    """`embedlens serve --workers 2 --precompute`: two processes forked from the command
    share the port, each loads the methods and answers as one process does."""
    import json
    import shutil
    import time
    import urllib.request

    run, exact = served
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", "from embedlens.app.cli import main; main()", "--quiet",
         "serve", str(copy), "--port", str(port), "--layout", "pca", "--workers", "2",
         "--precompute"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def get(path: str) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
            return json.loads(r.read())

    try:
        _wait_for(f"http://127.0.0.1:{port}/api/methods", server)
        for _ in range(600):  # both workers loaded and precomputed (answers come from either)
            if all(all(m["precomputed"] for m in get("/api/methods")["methods"])
                   for _ in range(4)):
                break
            time.sleep(0.1)
        else:
            pytest.fail("the workers did not precompute their answers within 60 s")
        for _ in range(10):  # whichever worker answers, the answer is one process's
            ours = get("/api/similar?item=50&method=cleora&k=10")["neighbours"]
            truth = exact.get("/api/similar", params={"item": "50", "method": "cleora",
                                                      "k": 10}).json()["neighbours"]
            _same_answers(ours, truth)
            recs = get("/api/recommend?user=1&method=eges&k=10")["recommendations"]
            _same_answers(recs, exact.get("/api/recommend", params={
                "user": "1", "method": "eges"}).json()["recommendations"])
    finally:
        server.terminate()
        server.wait(timeout=30)
    # SIGTERM stops every worker, then the command, by that signal (as one uvicorn does)
    assert server.returncode == -signal.SIGTERM
    with pytest.raises(OSError):  # no worker is left answering
        get("/api/methods")
    assert (copy / "cleora" / "answers-similar.npz").is_file()


def test_a_worker_that_dies_stops_the_server_with_one_line(served):
    import signal
    import urllib.request
    from pathlib import Path

    run, _ = served
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", "from embedlens.app.cli import main; main()", "--quiet",
         "serve", str(run), "--port", str(port), "--layout", "pca", "--workers", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(f"http://127.0.0.1:{port}/api/methods", server)
        workers = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
        assert len(workers) == 2
        os.kill(int(workers[0]), signal.SIGKILL)
        server.wait(timeout=30)
    finally:
        server.kill()
        server.wait(timeout=30)
    assert server.returncode == 1
    said = server.stderr.read() if server.stderr else ""
    assert f"server process {workers[0]} ended by itself (signal 9)" in said
    assert "Traceback" not in said
    with pytest.raises(OSError):  # the other worker was stopped too
        urllib.request.urlopen(f"http://127.0.0.1:{port}/api/methods", timeout=5)


def test_one_methods_run_is_served_too(served):
    run, _ = served
    client = TestClient(create_app(RunService(run / "cleora")))
    body = client.get("/api/methods").json()
    assert [m["method"] for m in body["methods"]] == ["cleora"]
    assert body["defaults"] == {"similar": "cleora", "recommend": "cleora", "coldstart": None}
    assert len(client.get("/api/similar", params={"item": "star wars"}).json()["neighbours"]) == 10
    recs = client.get("/api/recommend", params={"user": "1"}).json()["recommendations"]
    # the run recorded where its data was, so held-out movies are marked without --data-dir
    assert len(recs) == 10 and all(isinstance(r["held_out"], bool) for r in recs)
    assert "eges" in client.get("/api/similar", params={"item": "star wars",
                                                        "method": "eges"}).json()["error"]
    assert client.post("/api/coldstart", json={"genres": ["Drama"]}).status_code == 400


def _chromium() -> str | None:
    import shutil

    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None and not os.environ.get("CI"),
                    reason="needs Debian's chromium (CI installs it)")
def test_the_explorer_in_a_real_browser(served, tmp_path):
    """Search "star wars", see Return of the Jedi among cleora's neighbours, click a movie
    on the map, open a user: in headless Chromium against a real `embedlens serve`."""
    from playwright.sync_api import expect, sync_playwright

    run, _ = served
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", "from embedlens.app.cli import main; main()", "--quiet",
         "serve", str(run), "--port", str(port), "--layout", "pca"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(f"http://127.0.0.1:{port}/api/methods", server)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=_chromium())
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"http://127.0.0.1:{port}/")
            expect(page.locator("#board table tr")).to_have_count(4)  # header + 3 methods
            page.fill("#q", "star wars")
            page.click("#go")
            cleora = page.locator("#neighbours .col", has_text="cleora")
            expect(cleora).to_contain_text("Return of the Jedi (1983)")
            # click the first movie on the map: its neighbours replace the ones shown
            page.wait_for_function("() => MAP !== null && MAP.x.length > 0")
            before = cleora.inner_text()
            target = page.evaluate("MAP.title[0]")
            x, y = page.evaluate("toScreen(0)")
            box = page.locator("#map").bounding_box()
            assert box is not None
            page.mouse.click(box["x"] + x * box["width"] / 900,
                             box["y"] + y * box["height"] / 560)
            expect(page.locator("#q")).to_have_value(target)
            expect(cleora).not_to_have_text(before)  # the clicked movie's neighbours now
            page.fill("#user", "1")
            page.click("#user-go")
            expect(page.locator("#recs .col")).to_have_count(3)
            expect(page.locator("#history")).to_contain_text("Train history")
            page.screenshot(path=str(tmp_path / "explorer.png"), full_page=True)
            browser.close()
        assert errors == []
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.skipif(_chromium() is None and not os.environ.get("CI"),
                    reason="needs Debian's chromium (CI installs it)")
def test_the_reports_explorer_works_from_disk(served, tmp_path):
    """report.html opened as a file, no server: search, neighbours per method, a click on
    the map, sorting the leaderboard by a column; no script error."""
    from playwright.sync_api import expect, sync_playwright

    run, _ = served
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=_chromium())
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto((run / "report.html").resolve().as_uri())
        page.fill("#q", "star wars")
        page.click("#go")
        cleora = page.locator("#neighbours .col", has_text="cleora")
        expect(cleora).to_contain_text("Return of the Jedi (1983)")
        expect(page.locator("#neighbours .col")).to_have_count(2)  # cleora and eges
        page.wait_for_function("() => MAP !== null && MAP.x.length > 0")
        before = cleora.inner_text()
        target = page.evaluate("MAP.title[0]")
        x, y = page.evaluate("toScreen(0)")
        page.locator("#map").scroll_into_view_if_needed()  # the report is a long page
        box = page.locator("#map").bounding_box()
        assert box is not None
        page.mouse.click(box["x"] + x * box["width"] / 900, box["y"] + y * box["height"] / 560)
        expect(page.locator("#q")).to_have_value(target)
        expect(cleora).not_to_have_text(before)
        board = page.locator("table.sortable").first
        names = board.locator("tr td:nth-child(2)")
        best = names.first.inner_text()
        assert best.endswith("★")
        board.locator("th", has_text="ndcg@10").first.click()  # highest first
        expect(names.first).to_have_text(best)
        board.locator("th", has_text="ndcg@10").first.click()  # then lowest first
        expect(names.last).to_have_text(best)
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        browser.close()
    assert errors == []


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(url: str, server: subprocess.Popen) -> None:
    import time
    import urllib.request

    for _ in range(300):
        if server.poll() is not None:
            raise AssertionError(f"the server stopped: {server.stderr.read()}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("the server did not answer within 30 s")
