"""Atomic writes, checked reads, and the folders embedlens owns and locks."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from embedlens.core.errors import DataError
from embedlens.core.files import (
    atomic_path,
    file_lock,
    load_arrays,
    read_json,
    read_json_object,
    read_parquet,
    save_arrays,
    write_json,
    write_text,
)
from embedlens.io.folders import MARKER, claim, is_owned


def test_atomic_write_replaces_in_one_step_and_leaves_no_temp(tmp_path):
    path = tmp_path / "a.json"
    write_json(path, {"x": 1})
    write_json(path, {"x": 2})
    assert read_json(path) == {"x": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_a_failing_writer_keeps_the_old_file(tmp_path):
    path = tmp_path / "a.txt"
    write_text(path, "old")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("writer died")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_temp_file_keeps_the_suffix_so_format_by_suffix_works(tmp_path):
    with atomic_path(tmp_path / "x.npz") as tmp:
        assert tmp.suffix == ".npz" and tmp.parent == tmp_path
        tmp.write_bytes(b"")


@pytest.mark.parametrize(("content", "message"), [
    (b'{"a": 1', "truncated or not JSON"),
    (b"\xff\xfe garbage", "truncated or not JSON"),
    (b"[1, 2]", "expected a JSON object"),
    (b'{"b": 1}', "missing a"),
])
def test_read_json_object_names_the_file_and_problem(tmp_path, content, message):
    path = tmp_path / "model.json"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as err:
        read_json_object(path, "model file", ("a",))
    assert str(path) in str(err.value)


def test_damaged_parquet_and_npz_are_clear_errors(tmp_path):
    (tmp_path / "x.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match="x.parquet is not a readable"):
        read_parquet(tmp_path / "x.parquet")
    save_arrays(tmp_path / "a.npz", ids=[1, 2])
    data = (tmp_path / "a.npz").read_bytes()
    (tmp_path / "a.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="a.npz is not a readable"):
        load_arrays(tmp_path / "a.npz")
    save_arrays(tmp_path / "b.npz", ids=[1, 2])
    with pytest.raises(DataError, match="missing weights"):
        load_arrays(tmp_path / "b.npz", ("ids", "weights"))


# -- owned folders ------------------------------------------------------------------------------
def test_claim_creates_and_marks_a_new_folder(tmp_path):
    with claim(tmp_path / "run", "run") as folder:
        assert folder.created and is_owned(folder.path)


def test_claim_refuses_a_users_folder_and_touches_nothing(tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "manifest.json").write_text("{}")  # looks like a run, is not ours
    (tmp_path / "app" / "src").mkdir()
    for force in (False, True):
        with pytest.raises(DataError, match="not created by embedlens"):
            claim(tmp_path / "app", "run", force=force)
    assert sorted(p.name for p in (tmp_path / "app").iterdir()) == ["manifest.json", "src"]


def test_claim_refuses_symlinks_and_files(tmp_path):
    real = tmp_path / "real"
    with claim(real, "run"):
        pass
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(DataError, match="symbolic link"):
        claim(tmp_path / "link", "run", force=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="not a folder"):
        claim(tmp_path / "file", "run")


def test_force_empties_only_an_owned_folder_and_never_follows_links(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    run = tmp_path / "run"
    with claim(run, "run") as folder:
        (folder.path / "old.json").write_text("{}")
        (folder.path / "sub").mkdir()
        (folder.path / "sub" / "link").symlink_to(outside)
        (folder.path / "escape").symlink_to(outside)
    with pytest.raises(DataError, match="already holds"):
        claim(run, "run")
    with claim(run, "run", force=True):
        assert [p.name for p in run.iterdir()] == [MARKER]
    assert (outside / "keep.txt").read_text() == "mine"


def test_a_second_writer_is_refused_while_the_first_holds_the_folder(tmp_path):
    run = tmp_path / "run"
    first = claim(run, "run")
    with pytest.raises(DataError, match="another embedlens process"):
        claim(run, "run", resume=True)
    code = (f"from embedlens.io.folders import claim\n"
            f"claim({str(run)!r}, 'run', force=True)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode != 0 and "another embedlens process" in proc.stderr
    first.release()
    claim(run, "run", resume=True).release()  # free again once released


def test_discard_removes_a_created_folder_and_restores_an_empty_one(tmp_path):
    claim(tmp_path / "new", "train").discard()
    assert not (tmp_path / "new").exists()
    (tmp_path / "empty").mkdir()
    folder = claim(tmp_path / "empty", "train")
    (folder.path / "items.parquet").write_text("x")
    folder.discard()
    assert (tmp_path / "empty").is_dir() and not any((tmp_path / "empty").iterdir())


def test_file_lock_serialises_holders(tmp_path):
    lock = tmp_path / ".x.lock"
    waited = []
    with file_lock(lock):
        code = (f"from embedlens.core.files import file_lock\n"
                f"with file_lock({str(lock)!r}, lambda: print('waiting', flush=True)):\n"
                f"    print('got it')\n")
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                                text=True)
        waited.append(proc.stdout.readline().strip())
    out, _ = proc.communicate(timeout=60)
    assert waited == ["waiting"] and "got it" in out
    assert os.path.exists(lock)
