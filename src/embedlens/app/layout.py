"""2-D layouts of a method's movies, for the report's maps and the explorer's.

UMAP (umap-learn, installed with ``embedlens[umap]``) keeps each movie's neighbourhood, so
the clusters ``similar`` finds show as clusters; PCA keeps only the two widest directions,
but is exact, instant and needs nothing else. ``auto`` takes UMAP when it is installed. A
layout is cached in the method's run folder, keyed by a digest of the vectors it was made
from, since UMAP at 59k movies takes minutes.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import numpy as np

from embedlens.core.embeddings import l2_normalize
from embedlens.core.errors import DataError
from embedlens.core.files import array_digest, load_arrays, save_arrays

#: The layouts a user may ask for.
LAYOUTS = ("auto", "umap", "pca")


def umap_available() -> bool:
    """Whether umap-learn is installed. Found, not imported: importing it (and with it
    scikit-learn and numba's compilations) took 2-3 s of a server's 5 s start-up budget, for
    a layout that is computed once, if ever."""
    from importlib.util import find_spec

    return find_spec("umap") is not None


def resolve_layout(kind: str) -> str:
    """``kind`` checked, and ``auto`` made ``umap`` or ``pca``; one clear error for an
    unknown name or for ``umap`` without umap-learn."""
    if kind not in LAYOUTS:
        raise DataError(f"Unknown layout {kind!r}; choose from: {', '.join(LAYOUTS)}.")
    if kind == "auto":
        return "umap" if umap_available() else "pca"
    if kind == "umap" and not umap_available():
        raise DataError("The umap layout needs umap-learn: pip install 'embedlens[umap]' "
                        "(or choose --layout pca).")
    return kind


def pca_2d(vectors: np.ndarray) -> np.ndarray:
    """The rows' coordinates on the first two principal components of the unit-length rows
    (the cosine geometry ``similar`` ranks by), each axis's sign fixed so its largest
    loading is positive: the same vectors always give the same picture. Fewer than two rows
    or dimensions give zeros where there is no component."""
    x = l2_normalize(np.asarray(vectors, dtype=np.float64))
    x -= x.mean(axis=0) if len(x) else 0.0
    out = np.zeros((x.shape[0], 2))
    if x.shape[0] < 2:
        return out
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    axes = vt[:2]
    signs = np.sign(axes[np.arange(axes.shape[0]), np.abs(axes).argmax(axis=1)])
    out[:, : axes.shape[0]] = x @ (axes * signs[:, None]).T
    return out


def umap_2d(vectors: np.ndarray, seed: int = 0) -> np.ndarray:
    """UMAP of the rows under cosine distance (15 neighbours), seeded: the same vectors
    give the same picture. Fewer than 16 rows fall back to PCA (UMAP needs more rows than
    neighbours)."""
    x = np.asarray(vectors, dtype=np.float32)
    if x.shape[0] <= 16:
        return pca_2d(x)
    try:
        import umap
    except Exception as exc:  # installed (found) but broken, e.g. against this numba
        raise DataError(f"umap-learn is installed but cannot be imported ({exc}); repair "
                        "it or choose the pca layout.") from None

    with warnings.catch_warnings():  # "n_jobs overridden to 1 by setting random_state"
        warnings.simplefilter("ignore", UserWarning)
        reducer = umap.UMAP(n_neighbors=15, min_dist=0.1, metric="cosine",
                            random_state=seed, init="spectral")
        out = reducer.fit_transform(x)
    return np.asarray(out, dtype=np.float64)


def layout_2d(vectors: np.ndarray, kind: str = "auto", seed: int = 0) -> tuple[np.ndarray, str]:
    """The rows' 2-D layout and the layout used (``umap`` or ``pca``)."""
    kind = resolve_layout(kind)
    return (umap_2d(vectors, seed) if kind == "umap" else pca_2d(vectors)), kind


def cached_layout(folder: Path, vectors: np.ndarray, kind: str = "auto",
                  seed: int = 0) -> tuple[np.ndarray, str]:
    """:func:`layout_2d`, read from ``folder/map-<layout>.npz`` when that was made from the
    same vectors, else computed and written there (atomically). A folder that cannot be
    written (a read-only copy of a run) only costs the cache."""
    kind = resolve_layout(kind)
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    digest = f"{array_digest(x)}-{seed}"
    path = Path(folder) / f"map-{kind}.npz"
    if path.is_file():
        try:
            z = load_arrays(path, ("xy", "digest"), "map file")
            if str(z["digest"]) == digest and z["xy"].shape == (x.shape[0], 2):
                return np.asarray(z["xy"], dtype=np.float64), kind
        except DataError:
            pass  # a damaged cache is recomputed and replaced
    xy, kind = layout_2d(x, kind, seed)
    with contextlib.suppress(OSError):  # a read-only folder: only the cache is lost
        save_arrays(path, xy=xy, digest=np.asarray(digest))
    return xy, kind
