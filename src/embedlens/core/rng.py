"""Counter-based random numbers for numba kernels.

Parallel kernels must give the same result whatever the number of threads, so each unit of
work (a user, a walk) derives its own stream from ``(seed, id)`` with SplitMix64 instead of
sharing one generator whose draw order would depend on scheduling.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_INV53 = 1.0 / 9007199254740992.0  # 2**-53


@njit(inline="always", cache=True)
def mix64(z: np.uint64) -> np.uint64:
    """SplitMix64's finaliser: a bijective hash of a 64-bit integer."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(inline="always", cache=True)
def stream(seed: int, key: int) -> np.uint64:
    """Initial state of the stream for ``key`` (a user, node or walk id) under ``seed``."""
    return mix64(np.uint64(seed) * _GOLDEN + mix64(np.uint64(key) + _GOLDEN))


@njit(inline="always", cache=True)
def next_u64(state: np.ndarray) -> np.uint64:
    """Advance ``state[0]`` and return 64 random bits."""
    state[0] += _GOLDEN
    return mix64(state[0])


@njit(inline="always", cache=True)
def next_float(state: np.ndarray) -> float:
    """A uniform float in [0, 1)."""
    return float(next_u64(state) >> _S11) * _INV53


@njit(inline="always", cache=True)
def float_at(start: np.uint64, i: int) -> float:
    """The ``i``-th (from 0) :func:`next_float` of the stream that begins at ``start``,
    without drawing the ones before it."""
    return float(mix64(start + np.uint64(i + 1) * _GOLDEN) >> _S11) * _INV53


@njit(inline="always", cache=True)
def next_below(state: np.ndarray, n: int) -> int:
    """A uniform integer in [0, n)."""
    return int(next_float(state) * n)
