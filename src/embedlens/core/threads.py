"""How embedlens sizes and parks its thread pools (torch, numba and BLAS each have one).

The pools run one after another, never together, so each may use every core. What hurts is
how an idle pool waits: OpenMP's default ("active") spins for a while after every parallel
region, and a torch training step is thousands of tiny parallel regions. On a machine that is
busy with other work, spinning threads take the cores the working ones need: five two-tower
epochs on ML-100k took 26.1 s under a two-process background load on two cores with active
waits against 10.6 s with passive ones (7.0 s and 5.0 s quiet; ``benchmarks/busy_machine.py``,
docs/benchmarks.md "A busy machine"). So embedlens sets
``OMP_WAIT_POLICY=PASSIVE`` before torch or numba load (unless the user chose a policy), and
``EMBEDLENS_THREADS`` caps every pool at once.
"""

from __future__ import annotations

import os

from embedlens.core.errors import DataError

#: Environment variable that caps torch, numba and BLAS threads (default: usable cores).
THREADS_ENV = "EMBEDLENS_THREADS"
#: Set at package import when a library reads its thread count only when it loads.
_POOL_ENVS = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
              "MKL_NUM_THREADS")


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask, which a container or
    ``taskset`` narrows), else the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def thread_budget() -> int:
    """Threads each pool may use: ``EMBEDLENS_THREADS`` when set, else the usable cores
    (divided among the ranks torchrun started on this machine, ``LOCAL_WORLD_SIZE``). A
    value that is not a positive whole number is one clear error."""
    raw = os.environ.get(THREADS_ENV)
    if raw is None or raw.strip() == "":
        try:
            local_ranks = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
        except ValueError:
            local_ranks = 1
        return max(1, usable_cores() // local_ranks)
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise DataError(f"{THREADS_ENV}={raw!r} is not a positive whole number of threads; "
                        f"set it to 1..{usable_cores()} or unset it.")
    return value


def configure_pools() -> None:
    """Called once when embedlens is imported, before torch, numba or a BLAS can load:
    idle OpenMP threads wait passively, and ``EMBEDLENS_THREADS`` (when valid) sizes the
    pools that read their size from the environment. What the user set stays."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        budget = thread_budget() if os.environ.get(THREADS_ENV) else None
    except DataError:
        return  # reported when a method asks for its budget, not at import
    if budget is not None:
        for name in _POOL_ENVS:
            os.environ.setdefault(name, str(budget))
