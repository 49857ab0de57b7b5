"""The command line, run as a user runs it (a subprocess of the installed entry point)."""

import subprocess
import sys


def run(*args, ok=True):
    proc = subprocess.run(
        [sys.executable, "-c", "from embedlens.cli import main; main()", *args],
        capture_output=True, text=True, timeout=300,
    )
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_datasets_lists_variants_with_state(ml_dir):
    out = run("datasets", "--data-dir", str(ml_dir)).stdout
    lines = {line.split()[1]: line for line in out.splitlines() if line.startswith("│ ml-")}
    assert set(lines) == {"ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m", "ml-32m",
                          "ml-latest-small", "ml-latest"}
    assert "local" in lines["ml-100k"] and "not downloaded" in lines["ml-25m"]


def test_datasets_info_prints_counts(ml_dir):
    out = run("datasets", "info", "ml-100k", "--data-dir", str(ml_dir)).stdout
    assert "100,000" in out and "943" in out and "1,682" in out


def test_unknown_variant_is_one_clear_line(ml_dir):
    proc = run("datasets", "info", "ml-3m", "--data-dir", str(ml_dir), ok=False)
    assert proc.returncode == 2
    assert "Unknown MovieLens variant" in proc.stderr and "Traceback" not in proc.stderr
