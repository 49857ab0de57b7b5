"""The method registry: lazy imports, and a third-party method added through an entry point
that runs the same contract and the same command line as a built-in one."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from embedlens.core.errors import UnknownNameError
from embedlens.methods.registry import all_methods, default_baselines, get_method, role_of

PLUGIN = '''
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from embedlens.core.params import param
from embedlens.methods.base import EmbeddingModel, EmbeddingParams, item_metadata
from embedlens.core.embeddings import Embeddings


@dataclass(frozen=True)
class CoParams(EmbeddingParams):
    owner: ClassVar[str] = "cooccur"
    dim: int = param(16, "vector dimension", ge=1)
    seed: int = param(42, "random seed", ge=0)


class CooccurrenceModel(EmbeddingModel):
    """Item vectors from a random projection of the item co-occurrence matrix."""

    name = "cooccur"
    Params = CoParams

    def fit(self, train, dataset=None):
        x = train.binary()
        co = (x.T @ x).toarray()
        proj = np.random.default_rng(self.p.seed).standard_normal((co.shape[0], self.p.dim))
        self.item_embeddings = Embeddings(train.items.ids, co @ proj, "item",
                                          item_metadata(dataset))
        return self
'''


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory):
    """A folder on sys.path holding a module and its dist-info with an entry point, as
    ``pip install`` of a plugin package would leave them."""
    root = tmp_path_factory.mktemp("plugin")
    (root / "coplugin.py").write_text(PLUGIN)
    info = root / "coplugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: coplugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[embedlens.methods]\ncooccur = coplugin:CooccurrenceModel\n")
    return root


def _env(plugin_path):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(plugin_path), env.get("PYTHONPATH", "")])
    return env


def test_defaults_and_roles_come_from_the_registry():
    assert all_methods() == ("cleora", "node2vec", "deepwalk", "eges", "two-tower",
                             "rating-mf", "text", "ials", "elsa", "ease-lowrank")
    assert default_baselines() == ("random", "pop", "ease")
    assert role_of("ease") == "baseline" and role_of("imported") == "import"
    with pytest.raises(UnknownNameError, match="Did you mean: 'cleora'"):
        get_method("clora")


def test_naming_a_baseline_does_not_import_torch():
    code = ("import sys; from embedlens.methods.registry import get_method, method_names\n"
            "[get_method(n) for n in method_names()]\n"
            "from embedlens.app.config import RunConfig; RunConfig()\n"
            "assert 'torch' not in sys.modules, 'torch imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_a_plugin_method_passes_the_contract_and_runs_from_the_cli(plugin_path, tmp_path,
                                                                   ml_dir):
    test_file = tmp_path / "test_plugin_contract.py"
    test_file.write_text(textwrap.dedent('''
        from embedlens.testing import MethodContract

        class TestCooccur(MethodContract):
            method = "cooccur"
            params = {"dim": 8}
    '''))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(test_file)], capture_output=True, text=True, env=_env(plugin_path),
                          cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "10 passed" in proc.stdout
    cli = [sys.executable, "-c", "from embedlens.app.cli import main; main()"]
    listed = subprocess.run([*cli, "methods"], capture_output=True, text=True,
                            env=_env(plugin_path))
    assert "cooccur" in listed.stdout and "coplugin" in listed.stdout
    out = tmp_path / "run"
    proc = subprocess.run([*cli, "--quiet", "run", "--data-dir", str(ml_dir), "--methods",
                           "cooccur", "--baselines", "pop", "--out", str(out)],
                          capture_output=True, text=True, env=_env(plugin_path), timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "cooccur" in (out / "leaderboard.md").read_text()
