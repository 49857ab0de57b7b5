"""EGES's tables in NumPy: the item id and context tables, one table per side-information
field (its last row the padding row), the field weights' logits, and each item's slots in
every field. Training (:mod:`embedlens.methods.eges.sgd`) updates them in place; the vectors,
field weights and cold-start vectors are read from them here. Saved under the names the
earlier torch module used, so older runs load."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from embedlens.core.errors import DataError


def _softmax(logits: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Row-wise softmax over the ``present`` entries (others weigh 0)."""
    z = np.where(present, logits, -np.inf)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


@dataclass
class EGESTables:
    """Item id (``item_id``) and context (``ctx``) vectors, side-information tables
    (``side[field]``, pad row last), softmax logits per item or one row for all
    (``logits``: rows x (1 + fields)) and ``slots[field]`` (items x slots, pad = table
    size - 1)."""

    item_id: np.ndarray
    ctx: np.ndarray
    side: dict[str, np.ndarray]
    slots: dict[str, np.ndarray]
    logits: np.ndarray

    @property
    def fields(self) -> list[str]:
        """The side-information fields the tables hold, in training order."""
        return list(self.side)

    @classmethod
    def initial(cls, n_items: int, dim: int, field_sizes: dict[str, int],
                slots: dict[str, np.ndarray], per_item: bool, seed: int) -> EGESTables:
        """word2vec's start: input vectors uniform in +-0.5/dim, context vectors zero, pad
        rows zero, equal field weights."""
        rng = np.random.default_rng(seed)

        def uniform(rows: int) -> np.ndarray:
            return rng.uniform(-0.5 / dim, 0.5 / dim, (rows, dim)).astype(np.float32)

        side = {}
        for f, size in field_sizes.items():
            side[f] = np.vstack([uniform(size), np.zeros((1, dim), np.float32)])
        return cls(uniform(n_items), np.zeros((n_items, dim), np.float32), side,
                   {f: np.ascontiguousarray(slots[f], dtype=np.int64) for f in field_sizes},
                   np.zeros((n_items if per_item else 1, 1 + len(field_sizes)), np.float32))

    def _pooled(self, f: str, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each row's mean vector over its slots in field ``f``, and whether it has any."""
        table = self.side[f]
        pad = table.shape[0] - 1
        total = np.zeros((slots.shape[0], table.shape[1]), np.float32)
        for j in range(slots.shape[1]):
            total += table[slots[:, j]]  # the pad row is zero
        count = (slots != pad).sum(axis=1)
        return total / np.maximum(count, 1)[:, None], count > 0

    def export(self) -> np.ndarray:
        """H_v = sum_j softmax(a_v)_j W_j(v) over the fields each item has."""
        parts, present = [self.item_id], [np.ones(len(self.item_id), bool)]
        for f in self.fields:
            pooled, has = self._pooled(f, self.slots[f])
            parts.append(pooled)
            present.append(has)
        logits = np.broadcast_to(self.logits, (len(self.item_id), self.logits.shape[1]))
        weights = _softmax(logits, np.stack(present, 1))
        out = np.zeros_like(self.item_id)
        for j, part in enumerate(parts):
            out += weights[:, j, None] * part
        return out.astype(np.float32)

    def field_weights(self) -> dict[str, float]:
        """The average softmax weight of each field (id and side information)."""
        w = _softmax(self.logits, np.ones(self.logits.shape, bool)).mean(0)
        return dict(zip(["id", *self.fields], map(float, w), strict=True))

    def coldstart(self, ids: dict[str, list[int]]) -> np.ndarray:
        """Side-information fields only, weighted by the average learned field weights."""
        mean_logits = self.logits.mean(0)
        parts, logits = [], []
        for k, f in enumerate(self.fields, start=1):
            if ids.get(f):
                parts.append(self.side[f][np.asarray(ids[f])].mean(0))
                logits.append(mean_logits[k])
        weights = _softmax(np.asarray(logits)[None, :], np.ones((1, len(logits)), bool))[0]
        return (weights[:, None] * np.stack(parts)).sum(0).astype(np.float32)

    def arrays(self) -> dict[str, np.ndarray]:
        """Every table by its saved name."""
        out = {"item_id.weight": self.item_id, "ctx.weight": self.ctx, "logits": self.logits}
        for f in self.fields:
            out[f"side.{f}.weight"] = self.side[f]
            out[f"slots_{f}"] = self.slots[f]
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, Any], sizes: dict[str, int], n_items: int,
                    dim: int, per_item: bool, path: Path) -> EGESTables:
        """The tables :meth:`arrays` saved, checked against the run's model (``sizes``: each
        field's vocabulary size)."""
        fields = list(sizes)
        try:
            tables = cls(arrays["item_id.weight"], arrays["ctx.weight"],
                         {f: arrays[f"side.{f}.weight"] for f in fields},
                         {f: arrays[f"slots_{f}"] for f in fields}, arrays["logits"])
        except KeyError as exc:
            raise DataError(f"{path} does not match the run's model (no {exc}).") from None
        expected = {"item_id.weight": (n_items, dim), "ctx.weight": (n_items, dim),
                    "logits": (n_items if per_item else 1, 1 + len(fields))}
        for name, shape in expected.items():
            if arrays[name].shape != shape:
                raise DataError(f"{path} does not match the run's model ({name} has shape "
                                f"{arrays[name].shape}, expected {shape}).")
        for f in fields:
            side, slots = tables.side[f], tables.slots[f]
            if side.shape != (sizes[f] + 1, dim) or slots.shape[0] != n_items or (
                    slots.size and (slots.min() < 0 or slots.max() > sizes[f])):
                raise DataError(f"{path} does not match the run's model (field {f}).")
        return tables
