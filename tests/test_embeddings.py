import numpy as np
import polars as pl
import pytest

from embedlens.core.embeddings import AmbiguousTitleError, Embeddings, normalize_title
from embedlens.core.errors import DataError, UnknownNameError
from embedlens.io.formats import export, from_cleora, from_word2vec

META = pl.DataFrame({
    "item_id": [1, 2, 3, 4, 5],
    "title": ["Matrix, The (1999)", "Star Wars (1977)", "Heat (1995)", "Heat (1986)",
              "Toy Story (1995)"],
    "genres": [["Sci-Fi"], ["Sci-Fi", "War"], ["Crime"], ["Action"], ["Animation"]],
})
VECS = np.array([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0, 0.8, 0.2], [0, 0, 1]], dtype=np.float32)


@pytest.fixture
def emb():
    return Embeddings(np.array([1, 2, 3, 4, 5]), VECS, "item", META)


def test_most_similar_by_id_and_title(emb):
    top = emb.most_similar(1, k=2)
    assert top["id"].to_list() == [2, 3]  # 3, 4, 5 tie at 0: lower id first
    assert top["title"][0] == "Star Wars (1977)"
    assert 1 not in top["id"].to_list()
    assert top["score"][0] == pytest.approx(0.9 / np.linalg.norm([0.9, 0.1, 0]))
    # forgiving titles: case, missing year, the moved article
    for q in ["matrix, the (1999)", "The Matrix", "the matrix", "MATRIX, THE", "matrix"]:
        assert emb.resolve(q) == 1
    assert emb.most_similar("star wars", k=1)["id"][0] == 1


def test_ambiguous_and_unknown_titles(emb):
    with pytest.raises(AmbiguousTitleError, match=r"Heat \(1995\).*Heat \(1986\)"):
        emb.resolve("heat")
    assert emb.resolve("Heat (1986)") == 4
    with pytest.raises(UnknownNameError, match="Toy Story"):
        emb.resolve("Toy Stroy")
    with pytest.raises(UnknownNameError, match=r"Did you mean: Star Wars \(1977\)"):
        emb.resolve("wars")


def test_similar_by_vector_dot_and_centering(emb):
    top = emb.similar_by_vector(np.array([0, 0, 2.0]), k=1, metric="dot")
    assert top["id"][0] == 5 and top["score"][0] == pytest.approx(2.0)
    centered = emb.centered()
    assert np.allclose(centered.vectors.mean(axis=0), 0, atol=1e-6)
    with pytest.raises(DataError, match="dimension"):
        emb.similar_by_vector(np.ones(4))


def test_normalize_title():
    assert normalize_title("Matrix, The (1999)") == normalize_title("the matrix")
    assert normalize_title("Misérables, Les (1995)") == "les misérables"


@pytest.mark.parametrize("suffix", [".parquet", ".npz"])
def test_save_load_roundtrip(emb, tmp_path, suffix):
    path = emb.save(tmp_path / f"items{suffix}")
    back = Embeddings.load(path)
    assert np.array_equal(back.ids, emb.ids) and np.array_equal(back.vectors, emb.vectors)
    assert back.kind == "item"
    if suffix == ".parquet":
        assert back.resolve("the matrix") == 1  # titles travel with the file


def test_exports_and_cleora_roundtrip(emb, tmp_path):
    vec, meta = export(emb, "projector", tmp_path / "proj")
    assert len(vec.read_text().splitlines()) == 5
    lines = meta.read_text().splitlines()
    assert lines[0] == "id\ttitle\tgenres" and lines[2] == "2\tStar Wars (1977)\tSci-Fi|War"
    emb.counts = np.array([3, 1, 4, 1, 5])
    (out,) = export(emb, "cleora", tmp_path / "c")
    assert out.read_text().splitlines()[0] == "5 3"
    assert out.read_text().splitlines()[1].split()[:3] == ["1", "3", "1"]
    back = from_cleora(out)
    assert back.ids.tolist() == [1, 2, 3, 4, 5] and back.counts.tolist() == [3, 1, 4, 1, 5]
    assert np.allclose(back.vectors, emb.vectors, atol=1e-5)
    (w2v,) = export(emb, "word2vec", tmp_path / "w")
    assert np.allclose(from_word2vec(w2v).vectors, emb.vectors, atol=1e-5)


def test_cleora_prefixed_entities_and_bad_files(tmp_path):
    path = tmp_path / "x.out"
    path.write_text("2 2\nmovie_7 3 0.1 0.2\nmovie_9 1 0.3 0.4\n")
    assert from_cleora(path, strip_prefix="movie_").ids.tolist() == [7, 9]
    assert from_cleora(path).ids.tolist() == ["movie_7", "movie_9"]
    path.write_text("3 2\n7 3 0.1 0.2\n")
    with pytest.raises(DataError, match="header says 3"):
        from_cleora(path)
    path.write_text("hello\n")
    with pytest.raises(DataError, match="N D"):
        from_cleora(path)


def test_bad_construction():
    with pytest.raises(DataError, match="one row per id"):
        Embeddings([1, 2], np.zeros((3, 2)))
    with pytest.raises(DataError, match="unique"):
        Embeddings([1, 1], np.zeros((2, 2)))
