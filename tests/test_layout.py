"""2-D layouts of movie vectors (embedlens.app.layout): UMAP keeps planted clusters apart,
is the same for the same seed, and is cached beside the run keyed by the vectors."""

from __future__ import annotations

import numpy as np
import pytest

from embedlens.app.layout import cached_layout, layout_2d, resolve_layout, umap_available
from embedlens.core.errors import DataError

needs_umap = pytest.mark.skipif(not umap_available(), reason="umap-learn is not installed")


def _clusters(n: int = 400, groups: int = 4, dim: int = 24, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((groups, dim)) * 2.0
    labels = rng.integers(0, groups, n)
    return (centres[labels] + rng.standard_normal((n, dim)) * 0.6).astype(np.float32), labels


def _neighbour_purity(xy: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    d = ((xy[:, None, :] - xy[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    near = np.argsort(d, axis=1)[:, :k]
    return float((labels[near] == labels[:, None]).mean())


@needs_umap
def test_umap_keeps_planted_clusters_apart_and_is_seeded():
    vectors, labels = _clusters()
    xy, kind = layout_2d(vectors, "umap", seed=3)
    assert kind == "umap" and xy.shape == (400, 2)
    assert _neighbour_purity(xy, labels) > 0.95
    again, _ = layout_2d(vectors, "umap", seed=3)
    np.testing.assert_array_equal(xy, again)


def test_a_broken_umap_install_is_one_clear_error(monkeypatch):
    import sys

    from embedlens.app import layout

    monkeypatch.setattr(layout, "umap_available", lambda: True)  # found on disk,
    monkeypatch.setitem(sys.modules, "umap", None)  # but its import fails
    vectors, _ = _clusters()
    with pytest.raises(DataError, match="umap-learn is installed but cannot be imported"):
        layout_2d(vectors, "umap")


def test_pca_is_the_fallback_and_names_are_checked():
    vectors, _ = _clusters()
    xy, kind = layout_2d(vectors, "pca")
    assert kind == "pca" and xy.shape == (400, 2)
    assert resolve_layout("auto") == ("umap" if umap_available() else "pca")
    with pytest.raises(DataError, match="choose from: auto, umap, pca"):
        resolve_layout("tsne")


def test_a_layout_is_cached_per_vectors(tmp_path):
    vectors, _ = _clusters(n=120)
    xy, kind = cached_layout(tmp_path, vectors, "pca")
    path = tmp_path / f"map-{kind}.npz"
    stamp = path.stat().st_mtime_ns
    again, _ = cached_layout(tmp_path, vectors, "pca")
    np.testing.assert_array_equal(xy, again)
    assert path.stat().st_mtime_ns == stamp  # read back, not recomputed
    # other vectors (a re-trained method) are never given the old picture
    other = vectors[::-1].copy()
    moved, _ = cached_layout(tmp_path, other, "pca")
    np.testing.assert_array_equal(moved, layout_2d(other, "pca")[0])
    assert path.stat().st_mtime_ns != stamp
    path.write_bytes(b"not an npz")  # a damaged cache is recomputed
    np.testing.assert_array_equal(cached_layout(tmp_path, other, "pca")[0], moved)


def test_a_read_only_folder_only_costs_the_cache(tmp_path):
    vectors, _ = _clusters(n=60)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    folder = blocker / "run"  # cannot be made (tests run as root: permissions would not do)
    xy, _ = cached_layout(folder, vectors, "pca")
    assert xy.shape == (60, 2) and blocker.read_text() == ""
