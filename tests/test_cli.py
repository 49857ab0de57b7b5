"""The command line, run as a user runs it (a subprocess of the installed entry point)."""

import subprocess
import sys


def run(*args, ok=True):
    proc = subprocess.run(
        [sys.executable, "-c", "from embedlens.app.cli import main; main()", *args],
        capture_output=True, text=True, timeout=300,
    )
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_datasets_lists_variants_with_state(ml_dir):
    out = run("datasets", "--data-dir", str(ml_dir)).stdout
    lines = {line.split()[1]: line for line in out.splitlines() if line.startswith("│ ml-")}
    assert set(lines) == {"ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m", "ml-32m",
                          "ml-latest-small", "ml-latest"}
    assert "local" in lines["ml-100k"] and "not downloaded" in lines["ml-25m"]


def test_datasets_info_prints_counts(ml_dir):
    out = run("datasets", "info", "ml-100k", "--data-dir", str(ml_dir)).stdout
    assert "100,000" in out and "943" in out and "1,682" in out


def test_unknown_variant_is_one_clear_line(ml_dir):
    proc = run("datasets", "info", "ml-3m", "--data-dir", str(ml_dir), ok=False)
    assert proc.returncode == 2
    assert "Unknown MovieLens variant" in proc.stderr and "Traceback" not in proc.stderr


def test_train_evaluate_pop_writes_json(ml_dir, tmp_path):
    import json

    run_dir = tmp_path / "pop"
    run("train", "pop", "--dataset", "ml-100k", "--data-dir", str(ml_dir),
        "--protocol", "global-time-0.2", "--out", str(run_dir))
    out = run("evaluate", str(run_dir)).stdout
    assert "ndcg@10" in out and "0.1389" in out
    report = json.loads((run_dir / "evaluation-global-time-0.2.json").read_text())
    for key in ("method", "protocol", "k", "n_users", "ndcg@10", "hitrate@10", "mrr@10",
                "precision@10", "recall@10", "map@10", "coverage@10", "ndcg@10_ci95"):
        assert key in report
    assert report["method"] == "pop" and report["n_users"] == 95
    info = json.loads((run_dir / "run.json").read_text())
    assert info["protocol"] == "global-time-0.2" and info["versions"]["embedlens"]


def test_als_run_similar_and_cleora_file(ml_dir, tmp_path):
    import json

    run_dir = tmp_path / "als"
    run("train", "als", "--dataset", "ml-100k", "--data-dir", str(ml_dir), "--out",
        str(run_dir), "--param", "factors=16", "--param", "iterations=3")
    out = run("similar", str(run_dir), "star wars", "--k", "5").stdout
    assert "Star Wars (1977)" in out and out.count("│ ") >= 5
    # the same item vectors as a Cleora .out file evaluate like the run (mean-of-items users)
    from embedlens.core.embeddings import Embeddings
    from embedlens.io.formats import to_cleora

    out_file = to_cleora(Embeddings.load(run_dir / "items.parquet"), tmp_path / "als.out")
    proc = run("evaluate", str(out_file), "--dataset", "ml-100k", "--data-dir", str(ml_dir),
               ok=False)
    assert proc.returncode == 2 and "--trained-on user-time-0.2" in proc.stderr
    run("evaluate", str(out_file), "--dataset", "ml-100k", "--data-dir", str(ml_dir),
        "--trained-on", "user-time-0.2")
    report = json.loads((tmp_path / "als.evaluation-user-time-0.2.json").read_text())
    assert report["n_users"] > 800 and 0 < report["ndcg@10"] < 1


def test_clear_errors(ml_dir, tmp_path):
    proc = run("train", "pop", "--dataset", "ml-100k", "--data-dir", str(ml_dir),
               "--protocol", "random-02", "--out", str(tmp_path / "x"), ok=False)
    assert proc.returncode == 2 and "Unknown protocol" in proc.stderr
    proc = run("evaluate", str(tmp_path), ok=False)
    assert "not a run directory" in proc.stderr
    proc = run("train", "pop", "--dataset", "ml-100k", "--data-dir", str(ml_dir),
               "--out", str(tmp_path / "p"))
    proc = run("similar", str(tmp_path / "p"), "Star Wars", ok=False)
    assert "no item embeddings" in proc.stderr


def test_cleora_train_evaluate_similar(ml_dir, tmp_path):
    import json

    run_dir = tmp_path / "cleora"
    run("train", "cleora", "--dataset", "ml-100k", "--data-dir", str(ml_dir),
        "--protocol", "random-0.2", "--out", str(run_dir))
    run("evaluate", str(run_dir))
    report = json.loads((run_dir / "evaluation-random-0.2.json").read_text())
    assert report["method"] == "cleora" and report["ndcg@10"] > 0.3
    out = run("similar", str(run_dir), "Star Wars (1977)", "--k", "5").stdout
    assert "Return of the Jedi (1983)" in out


def test_node2vec_tutorial_neighbours(ml_dir, tmp_path):
    """The node2vec tutorial's query on ml-latest-small: The Matrix's neighbours are other
    popular modern classics (deterministic: one gensim worker, seeded walks)."""
    run_dir = tmp_path / "n2v"
    run("train", "node2vec", "--dataset", "ml-latest-small", "--data-dir", str(ml_dir),
        "--protocol", "random-0.2", "--out", str(run_dir), "-p", "walk_length=20")
    out = run("similar", str(run_dir), "matrix", "--k", "10").stdout
    assert "Nearest to Matrix, The (1999)" in out
    classics = ["Fight Club (1999)", "Pulp Fiction (1994)", "Lord of the Rings", "Blade Runner",
                "Star Wars", "Terminator", "Memento (2000)"]
    assert sum(title in out for title in classics) >= 2


def test_learned_models_write_curves_and_rmse(ml_dir, tmp_path):
    import json

    tt = tmp_path / "tt"
    run("train", "two-tower", "--dataset", "ml-100k", "--data-dir", str(ml_dir), "--out",
        str(tt), "-p", "epochs=3", "-p", "device=cpu")
    assert (tt / "loss.png").stat().st_size > 1000
    rm = tmp_path / "rm"
    run("train", "rating-mf", "--dataset", "ml-100k", "--data-dir", str(ml_dir), "--protocol",
        "random-0.2", "--out", str(rm), "-p", "device=cpu")
    out = run("evaluate", str(rm)).stdout
    report = json.loads((rm / "evaluation-random-0.2.json").read_text())
    assert report["rmse"] < 0.96 and "rmse" in out


def test_eges_coldstart_command(ml_dir, tmp_path):
    run_dir = tmp_path / "eges"
    run("train", "eges", "--dataset", "ml-latest-small", "--data-dir", str(ml_dir),
        "--protocol", "random-0.2", "--out", str(run_dir), "-p", "epochs=1", "-p",
        "num_walks=2")
    out = run("coldstart", str(run_dir), "--genres", "Action|Adventure|Sci-Fi", "--tags",
              "marvel,superhero", "--k", "5").stdout
    assert out.count("│ ") >= 5 and "Nearest to an unseen movie" in out
    proc = run("coldstart", str(run_dir), "--genres", "Nope", ok=False)
    assert proc.returncode == 2 and "None of the side information" in proc.stderr


def test_recommend_and_export(ml_dir, tmp_path):
    run_dir = tmp_path / "tt"
    run("train", "two-tower", "--dataset", "ml-100k", "--data-dir", str(ml_dir), "--out",
        str(run_dir), "-p", "epochs=2", "-p", "device=cpu")
    out = run("recommend", str(run_dir), "--user", "42", "--k", "5").stdout
    assert "Top 5 for user 42" in out and out.count("│ ") >= 5
    proc = run("recommend", str(run_dir), "--user", "999999", ok=False)
    assert proc.returncode == 2 and "Unknown user" in proc.stderr
    files = run("export", str(run_dir), "--format", "projector").stdout
    assert "items" in files and (run_dir / "export" / "items" / "metadata.tsv").is_file()
    assert (run_dir / "export" / "users" / "embeddings.tsv").is_file()
    proc = run("export", str(run_dir), "--format", "xml", ok=False)
    assert proc.returncode == 2 and "Unknown export format" in proc.stderr
