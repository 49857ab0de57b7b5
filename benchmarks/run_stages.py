"""Where a whole ``embedlens run`` spends its time and memory, stage by stage.

Runs ``embedlens run ARGS`` in this process and samples its resident memory (``VmRSS``)
every quarter second; each progress line that announces work ("[3/13] cleora …", "cold
start: … …") starts a stage, and the writing of the outputs (leaderboard, report) is the
last one. Prints each stage's seconds and peak resident memory, then the whole run's exact
peak (the kernel's high-water mark, ``VmHWM``, as ``_common.peak_rss_mb`` reads it). A
quarter-second sampler can miss a spike shorter than that: the stage peaks are a lower
bound, the last line is exact.

Usage: python benchmarks/run_stages.py --dataset ml-25m --data-dir DIR --out DIR [any
       other option of `embedlens run`]
"""

from __future__ import annotations

import sys
import threading
import time

from _common import peak_rss_mb, print_table


def _rss_gb() -> float:
    """This process's resident memory now (``VmRSS``), in GB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 2**20
    return float("nan")


def main() -> None:
    import embedlens.app.pipeline as pipeline
    from embedlens.app.cli import main as cli

    stages: list[dict] = []

    def begin(name: str) -> None:
        stages.append({"stage": name, "start": time.perf_counter(),
                       "peak": _rss_gb()})

    def sample() -> None:
        while True:
            if stages:
                stages[-1]["peak"] = max(stages[-1]["peak"], _rss_gb())
            time.sleep(0.25)

    begin("start: load and split")
    threading.Thread(target=sample, daemon=True).start()
    note, write = pipeline.note, pipeline._write_outputs

    def noted(msg: str, *args, **kwargs):
        if msg.rstrip().endswith("…"):  # "[3/13] cleora …", "cold start: … …"
            begin(msg.split(" …")[0].split(":")[0][:40])
        return note(msg, *args, **kwargs)

    def writing(*args, **kwargs):
        begin("write outputs and report")
        return write(*args, **kwargs)

    pipeline.note, pipeline._write_outputs = noted, writing
    sys.argv = ["embedlens", "run", *sys.argv[1:]]
    code = 0
    try:
        cli()
    except SystemExit as exc:  # the CLI exits; the table still prints
        code = int(exc.code or 0)
    end = time.perf_counter()
    rows = []
    for i, s in enumerate(stages):
        stop = stages[i + 1]["start"] if i + 1 < len(stages) else end
        rows.append({"stage": s["stage"], "seconds": round(stop - s["start"], 1),
                     "peak RSS GB": round(s["peak"], 2)})
    rows.append({"stage": f"whole run (exit code {code})",
                 "seconds": round(end - stages[0]["start"], 1),
                 "peak RSS GB": round(peak_rss_mb() / 1024, 2)})
    print_table(rows, "embedlens run, stage by stage")


if __name__ == "__main__":
    main()
