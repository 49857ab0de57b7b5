"""Helpers shared by the benchmark scripts: timing, peak memory, table printing."""

from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
ML_DIR = Path(os.environ.get("EMBEDLENS_TEST_DATA", REPO.parent / "shared" / "movielens"))


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """Run ``fn`` once; return its result and wall seconds."""
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (macOS reports bytes, Linux KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def print_table(rows: list[dict[str, Any]], title: str) -> None:
    """A Markdown table, ready to paste into docs/benchmarks.md."""
    if not rows:
        return
    cols = list(rows[0])
    print(f"\n### {title}\n")
    print("| " + " | ".join(cols) + " |")
    print("|" + "|".join(" --- " for _ in cols) + "|")
    for row in rows:
        cells = [f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.values()]
        print("| " + " | ".join(cells) + " |")
    sys.stdout.flush()


class PeakMemory:
    """Context manager: the process's peak resident size inside the block, ``peak_mb``
    (total) and ``extra_mb`` (above the resident size at entry), in MiB.

    Read from the kernel's high-water mark (``VmHWM``, reset on entry through
    ``/proc/self/clear_refs``), so it is exact and sees code that holds the GIL. A sampling
    thread does not: it misses everything a compiled extension allocates and frees inside
    one call (pycleora's graph build peaks at 1.8 GB where a 5 ms sampler saw 0.4 GB).
    Without that file (not Linux), ``peak_mb`` is the process's lifetime peak
    (``ru_maxrss``) and ``extra_mb`` is measured from the lifetime peak at entry.
    """

    @staticmethod
    def _status_mb(key: str) -> float:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
        raise KeyError(key)

    def __enter__(self) -> PeakMemory:
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")  # reset the high-water mark to the current resident size
            self._exact = True
            self.start_mb = self._status_mb("VmRSS")
        except OSError:
            self._exact = False
            self.start_mb = peak_rss_mb()
        return self

    def __exit__(self, *exc: object) -> None:
        self.peak_mb = self._status_mb("VmHWM") if self._exact else peak_rss_mb()

    @property
    def extra_mb(self) -> float:
        return self.peak_mb - self.start_mb
