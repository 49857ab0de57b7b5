"""EGES training: skip-gram with negative sampling over the walks, by plain SGD with
word2vec's linearly decaying step, in one numba kernel.

For each walk position the centre's vector is built once from its fields (id, genres, tags,
year; softmax-weighted), trained against every context within ``window`` (positives) and
``negatives`` draws from unigram^0.75 shared by those contexts (each weighing once per
context: nearly the expected loss of per-context draws), and the summed update is then handed back
to the fields and their weights. Single-threaded, so the same seed gives the same tables: at
the ML-25M shape (64M pairs an epoch) this costs a fraction of a µs per pair, where a
mini-batch step in torch cost 3-4 µs (docs/benchmarks.md).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from embedlens.core.distributed import all_reduce_sum, count_work, world
from embedlens.core.errors import DataError
from embedlens.core.progress import bar
from embedlens.core.rng import next_below, stream
from embedlens.methods.eges.net import EGESTables

#: Entries of the negative-sampling table (word2vec's unigram table, smaller): a draw is
#: one lookup.
NEGATIVE_TABLE = 10_000_000
#: The step decays linearly from ``lr`` towards 0 over all epochs, never below this
#: fraction of ``lr`` (word2vec's ``min_alpha``).
FINAL_STEP = 1e-4
#: Random-stream keys of the negative draws start here (one stream per epoch), far from the
#: walk streams (keyed by walk number) so that the two never coincide.
NEGATIVE_STREAMS = 1 << 48
#: Under torchrun each rank's negative draws in each sync round have their own stream,
#: this far apart (far more than the epochs).
RANK_STREAMS = 1 << 32
#: Under torchrun the ranks average their tables this many times an epoch.
SYNC_ROUNDS = 16


def negative_table(freq: np.ndarray, size: int = NEGATIVE_TABLE) -> np.ndarray:
    """``size`` item positions, each in proportion to ``freq**0.75``."""
    weights = np.asarray(freq, dtype=np.float64) ** 0.75
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]
    size = int(min(size, max(100_000, 100 * freq.size)))
    return np.minimum(np.searchsorted(cdf, (np.arange(size) + 0.5) / size),
                      freq.size - 1).astype(np.int32)


@njit(inline="always", fastmath=True, cache=True)
def _update(h, ctx_w, target, label, weight, alpha, neu1e):  # pragma: no cover - numba
    """One (centre, target) term: SGD on ``weight * log sigma(+-h . ctx[target])``, the
    context row in place, the centre's share added to ``neu1e``; returns the term's loss
    (unweighted)."""
    score = np.float32(0.0)
    for d in range(h.size):
        score += h[d] * ctx_w[target, d]
    score = min(max(score, np.float32(-20.0)), np.float32(20.0))
    sig = np.float32(1.0 / (1.0 + math.exp(-score)))
    g = weight * (label - sig) * alpha
    for d in range(h.size):
        neu1e[d] += g * ctx_w[target, d]
        ctx_w[target, d] += g * h[d]
    return -math.log(max(sig if label > 0 else 1.0 - sig, 1e-7))


# nogil: another fit may run beside it. error_model "numpy": a division by zero (a softmax
# over overflowed logits) gives inf or NaN, which train_eges reports as divergence, instead
# of a ZeroDivisionError from inside the kernel
@njit(fastmath=True, cache=True, nogil=True, error_model="numpy")
def _epoch(walks, order, window, negatives, table, id_w, ctx_w, side_w, slots, slot_field,
           logits, per_item, n_fields, lr, done, total, seed,
           stream_key):  # pragma: no cover - numba
    """One pass over the walks in ``order``; returns (summed loss, pairs trained)."""
    dim = id_w.shape[1]
    length = walks.shape[1]
    parts = np.zeros((n_fields + 1, dim), dtype=np.float32)
    count = np.zeros(n_fields + 1, dtype=np.int64)
    weight = np.zeros(n_fields + 1, dtype=np.float32)
    grad_part = np.zeros(n_fields + 1, dtype=np.float32)
    h = np.zeros(dim, dtype=np.float32)
    neu1e = np.zeros(dim, dtype=np.float32)
    state = np.empty(1, dtype=np.uint64)
    state[0] = stream(seed, stream_key)
    loss = 0.0
    pairs = 0
    for w in order:
        for i in range(length):
            c = walks[w, i]
            if c < 0:
                break
            alpha = np.float32(lr * max(FINAL_STEP, 1.0 - done / total))
            done += 1
            # the centre's fields: id, then each side field's mean over its slots
            for d in range(dim):
                parts[0, d] = id_w[c, d]
            count[0] = 1
            for f in range(1, n_fields + 1):
                count[f] = 0
                for d in range(dim):
                    parts[f, d] = 0.0
            for j in range(slots.shape[1]):
                r = slots[c, j]
                if r >= 0:
                    f = slot_field[j]
                    count[f] += 1
                    for d in range(dim):
                        parts[f, d] += side_w[r, d]
            row = c if per_item else 0
            top = -np.inf
            for f in range(n_fields + 1):
                if count[f] > 0:
                    top = max(top, logits[row, f])
            norm = np.float32(0.0)
            for f in range(n_fields + 1):
                weight[f] = math.exp(logits[row, f] - top) if count[f] > 0 else 0.0
                norm += weight[f]
            for d in range(dim):
                h[d] = 0.0
                neu1e[d] = 0.0
            for f in range(n_fields + 1):
                weight[f] /= norm
                if count[f] > 1:
                    inv = np.float32(1.0 / count[f])
                    for d in range(dim):
                        parts[f, d] *= inv
                if count[f] > 0:
                    for d in range(dim):
                        h[d] += weight[f] * parts[f, d]
            # every context in the window is a positive; `negatives` draws are shared by
            # them, each weighing as many times as there are contexts: nearly the expected
            # loss of drawing per context (a draw equal to any context of the window is
            # skipped for all), at a sixth of the dot products for window 3
            m = 0
            for k in range(max(0, i - window), min(length, i + window + 1)):
                x = walks[w, k]
                if k == i or x < 0:
                    continue
                m += 1
                loss += _update(h, ctx_w, x, np.float32(1.0), np.float32(1.0), alpha, neu1e)
            if m > 0:
                for _ in range(negatives):
                    target = table[next_below(state, table.size)]
                    clash = False
                    for k in range(max(0, i - window), min(length, i + window + 1)):
                        if k != i and walks[w, k] == target:
                            clash = True
                    if clash:
                        continue
                    loss += m * _update(h, ctx_w, target, np.float32(0.0), np.float32(m),
                                        alpha, neu1e)
                pairs += m
            # hand the update back: each field by its weight, each weight by softmax's rule
            mean = np.float32(0.0)
            for f in range(n_fields + 1):
                grad_part[f] = 0.0
                if count[f] > 0:
                    for d in range(dim):
                        grad_part[f] += neu1e[d] * parts[f, d]
                    mean += weight[f] * grad_part[f]
            for f in range(n_fields + 1):
                if count[f] > 0:
                    logits[row, f] += weight[f] * (grad_part[f] - mean)
            for d in range(dim):
                id_w[c, d] += weight[0] * neu1e[d]
            for j in range(slots.shape[1]):
                r = slots[c, j]
                if r >= 0:
                    f = slot_field[j]
                    step = weight[f] / count[f]
                    for d in range(dim):
                        side_w[r, d] += step * neu1e[d]
    return loss, pairs


def train_eges(tables: EGESTables, walks: np.ndarray, window: int, negatives: int,
               epochs: int, lr: float, freq: np.ndarray, seed: int) -> dict[str, list[float]]:
    """Train ``tables`` in place for ``epochs`` passes over ``walks`` (walk order shuffled
    each epoch); returns the history (mean loss per trained pair, per epoch)."""
    fields = tables.fields
    offsets = np.cumsum([0] + [len(tables.side[f]) for f in fields])
    dim = tables.item_id.shape[1]
    side_w = (np.concatenate([tables.side[f] for f in fields]) if fields
              else np.zeros((1, dim), np.float32))
    slot_cols, slot_field = [], []
    for k, f in enumerate(fields):
        s = tables.slots[f]
        pad = len(tables.side[f]) - 1
        slot_cols.append(np.where(s == pad, -1, s + offsets[k]))
        slot_field += [k + 1] * s.shape[1]
    slots = (np.ascontiguousarray(np.concatenate(slot_cols, axis=1)) if fields
             else np.full((len(tables.item_id), 0), -1, np.int64))
    table = negative_table(freq)
    walks = np.ascontiguousarray(walks, dtype=np.int32)
    positions = (walks >= 0).sum(axis=1)
    total = max(1, int(positions.sum()) * epochs)
    done = 0
    history: dict[str, list[float]] = {"loss": []}
    w = world()
    # one process: each epoch in one pass. Under torchrun each rank trains on its own walks
    # and the ranks average their tables SYNC_ROUNDS times an epoch (local SGD, as
    # distributed word2vec does): SGD steps cannot be shared out exactly.
    rounds = 1 if w.size == 1 else SYNC_ROUNDS
    tables_ = [tables.item_id, tables.ctx, side_w, tables.logits]
    with bar("eges", total=epochs, unit="epoch") as pb:
        for epoch in range(epochs):
            order = np.random.default_rng([seed, epoch]).permutation(walks.shape[0])
            loss, pairs = 0.0, 0
            for r, part in enumerate(np.array_split(order, rounds)):
                key = NEGATIVE_STREAMS + epoch if w.size == 1 else \
                    NEGATIVE_STREAMS + epoch + (1 + r * w.size + w.rank) * RANK_STREAMS
                part_loss, part_pairs = _epoch(
                    walks, part, window, negatives, table, tables.item_id, tables.ctx, side_w,
                    slots, np.asarray(slot_field, np.int64), tables.logits,
                    tables.logits.shape[0] > 1, len(fields), float(lr), float(done),
                    float(total), seed, key)
                done += int(positions[part].sum())
                loss, pairs = loss + part_loss, pairs + part_pairs
                if w.size > 1:
                    for t in tables_:
                        all_reduce_sum(t)
                        t /= w.size
                    count_work("steps")
            if w.size > 1:
                loss, pairs = all_reduce_sum(np.array([loss, float(pairs)]))
            if not all(np.isfinite(t).all() for t in tables_):
                raise DataError(
                    f"EGES diverged in epoch {epoch + 1} of {epochs}: its vectors overflowed "
                    f"at lr {lr:g}. Lower lr (the default is 0.025).")
            history["loss"].append(float(loss) / max(1, pairs))
            pb.update(1)
    for k, f in enumerate(fields):
        tables.side[f] = side_w[offsets[k]: offsets[k + 1]].copy()
    return history
