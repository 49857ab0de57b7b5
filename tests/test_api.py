"""The public API agrees with the command line: one default seed, titles that can be
attached, a clear word for a movie a method did not embed, and queries that need no data."""

from __future__ import annotations

import shutil

import pytest

import embedlens
from embedlens.core.errors import DataError, UnknownNameError
from embedlens.methods.registry import get_method, method_names
from test_cli import run


def test_the_public_api_is_importable_from_the_top_level():
    for name in embedlens.__all__:
        assert getattr(embedlens, name) is not None, name
    assert embedlens.get_method("ease") is get_method("ease")


def test_python_and_cli_share_one_default_seed():
    seed = embedlens.RunConfig().seed
    for name in method_names():
        params = get_method(name).Params
        if params.has("seed"):
            assert get_method(name)().p.seed == seed, name


def test_titles_attach_and_unembedded_movies_are_named(ml100k):
    data = embedlens.EvalSplit.prepare(ml100k, "user-time-0.2")
    bare = get_method("node2vec")().fit(data.train)  # no dataset: no titles
    with pytest.raises(DataError, match="with_metadata"):
        bare.item_vectors().most_similar("star wars")
    titled = bare.item_vectors().with_metadata(ml100k)
    assert "Return of the Jedi (1983)" in titled.most_similar("star wars", 5)["title"].to_list()
    # node2vec embeds only movies on its PMI graph; a rare one is "not embedded", not unknown
    model = get_method("node2vec")().fit(data.train, data.train_dataset(ml100k))
    emb = model.item_vectors()
    missing = ml100k.items.filter(~ml100k.items["item_id"].is_in(emb.ids.tolist()))
    title, item = missing["title"][0], missing["item_id"][0]
    for key in (title, item, str(item)):
        with pytest.raises(UnknownNameError, match=f"not embedded by node2vec: it embeds "
                           f"{len(emb):,} of the 1,682 movies"):
            emb.most_similar(key)


def test_not_embedded_survives_save_and_load_and_the_cli_says_so(ml_dir, tmp_path, ml100k):
    out = tmp_path / "n2v"
    run("--quiet", "train", "node2vec", "--dataset", "ml-100k", "--data-dir", str(ml_dir),
        "--out", str(out))
    back = get_method("node2vec").load(out)
    emb = back.item_vectors()
    missing = ml100k.items.filter(~ml100k.items["item_id"].is_in(emb.ids.tolist()))
    proc = run("similar", str(out), missing["title"][0], ok=False)
    assert proc.returncode == 2 and "is not embedded by node2vec" in proc.stderr


def test_recommend_reads_the_runs_train_matrix_not_the_data(ml_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(ml_dir / "ml-100k", data / "ml-100k")
    out = tmp_path / "ease"
    run("--quiet", "train", "ease", "--dataset", "ml-100k", "--data-dir", str(data), "--out",
        str(out))
    before = run("recommend", str(out), "--user", "42", "--k", "5").stdout
    shutil.rmtree(data)  # the query needs neither the dataset nor a new split
    after = run("recommend", str(out), "--user", "42", "--k", "5").stdout
    assert before == after and "Top 5 for user 42" in after
    assert "Star Wars" in after or "(19" in after  # titles come from the saved train file
