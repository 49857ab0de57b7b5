"""Skip-gram with negative sampling over a walk corpus (gensim's Word2Vec).

The corpus is the int32 walk matrix of :mod:`embedlens.walks` (-1 pads stuck walks). Rows
go to gensim as lists of Python ints: gensim keys its vocabulary by any hashable, so no
token is ever turned into a string.
"""

from __future__ import annotations

import numpy as np

from embedlens.errors import DataError
from embedlens.progress import bar


def walk_sentences(walks: np.ndarray) -> list[list[int]]:
    """Rows of the walk matrix without their -1 padding, as lists of ints."""
    if walks.ndim != 2:
        raise DataError(f"Walks must be a 2-D matrix, got shape {walks.shape}.")
    if (walks >= 0).all():
        return walks.tolist()
    lengths = (walks >= 0).sum(axis=1)
    return [row[:n] for row, n in zip(walks.tolist(), lengths.tolist(), strict=True)]


def train_skipgram(
    walks: np.ndarray,
    n_nodes: int,
    dim: int = 64,
    window: int = 5,
    negative: int = 5,
    epochs: int = 5,
    seed: int = 42,
    workers: int = 1,
    history: dict[str, list[float]] | None = None,
    sample: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Node vectors (``n_nodes x dim``) and the mask of nodes that occur in the walks.

    ``workers=1`` (default) is bitwise reproducible with ``seed``; more workers train faster
    but interleave updates nondeterministically (gensim's own caveat). ``sample`` down-samples
    very frequent nodes (word2vec's ``sample``; hubs otherwise pull towards everything). The
    loss of each epoch is appended to ``history["loss"]``.
    """
    from gensim.models import Word2Vec
    from gensim.models.callbacks import CallbackAny2Vec

    sentences = walk_sentences(walks)
    losses: list[float] = []

    class _Epochs(CallbackAny2Vec):
        def __init__(self) -> None:
            self.previous = 0.0
            self.pb = bar("skip-gram", total=epochs, unit="epoch")

        def on_epoch_end(self, model: Word2Vec) -> None:
            total = model.get_latest_training_loss()
            losses.append(total - self.previous)  # gensim reports a running total
            self.previous = total
            self.pb.update(1)

        def on_train_end(self, model: Word2Vec) -> None:
            self.pb.close()

    model = Word2Vec(
        sentences, vector_size=dim, window=window, negative=negative, epochs=epochs, sg=1,
        min_count=1, workers=workers, seed=seed, compute_loss=True, callbacks=[_Epochs()],
        sample=sample,
    )
    if history is not None:
        history.setdefault("loss", []).extend(losses)
    vectors = np.zeros((n_nodes, dim), dtype=np.float32)
    keys = np.fromiter(model.wv.index_to_key, dtype=np.int64, count=len(model.wv))
    vectors[keys] = model.wv.vectors
    found = np.zeros(n_nodes, dtype=bool)
    found[keys] = True
    return vectors, found
