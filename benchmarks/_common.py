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
    """Peak resident memory of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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
    """Context manager sampling this process's RSS: ``peak_mb`` (total) and ``extra_mb``
    (peak above the RSS at entry), so a step's own memory is separated from its input's."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.peak_mb = self.start_mb = 0.0

    @staticmethod
    def _rss_mb() -> float:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    def __enter__(self) -> PeakMemory:
        import threading

        self.start_mb = self.peak_mb = self._rss_mb()
        self._stop = threading.Event()

        def sample() -> None:
            while not self._stop.is_set():
                self.peak_mb = max(self.peak_mb, self._rss_mb())
                self._stop.wait(self.interval)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, self._rss_mb())

    @property
    def extra_mb(self) -> float:
        return self.peak_mb - self.start_mb
