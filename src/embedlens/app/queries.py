"""Queries over run folders: which single-method run answers a question, by default the
best one on a full run's leaderboard that can."""

from __future__ import annotations

from pathlib import Path

from embedlens.app.leaderboard import LEADERBOARD, Leaderboard
from embedlens.core.errors import DataError
from embedlens.core.files import read_json, read_json_object
from embedlens.io.folders import MARKER
from embedlens.io.runs import RUN_FILE
from embedlens.methods.base import can
from embedlens.methods.registry import get_method

MANIFEST = "manifest.json"
COLDSTART = "coldstart.json"


def method_dir(run: str | Path, method: str | None = None, need: str = "any") -> Path:
    """The single-method run directory a query should read.

    ``run`` is either one method's run (``embedlens train``) or a whole ``embedlens run``;
    for the latter ``method`` picks the sub-run, by default the best one on the leaderboard
    that can answer the query (``need``: "any", "items", "similar" (items, best at
    neighbours first) or "coldstart" (best on the cold-start leaderboard first)).
    """
    run = Path(run)
    if (run / RUN_FILE).is_file():
        if method is not None:
            own = read_json_object(run / RUN_FILE, "run record", ("method",))["method"]
            if own != method:
                raise DataError(f"{run} holds a {own} run, not {method}.")
        return run
    able = able_methods(run, need)
    if method is None:
        return run / able[0]
    if method not in able:
        raise DataError(
            f"{method} is not a successful method of {run} that can answer this; "
            f"choose from: {', '.join(able)}."
        )
    return run / method


def embedding_runs(run: str | Path, method: str | None = None) -> list[Path]:
    """``method``'s run directory, or, for a full run without one, every successful embedding
    method's (best first)."""
    run = Path(run)
    if method is not None or (run / RUN_FILE).is_file():
        return [method_dir(run, method, "items")]
    return [run / name for name in able_methods(run, "items")]


def read_leaderboard(run: Path) -> Leaderboard:
    """A full run's leaderboard, checked; an unfinished or damaged run is one clear error."""
    if not (run / LEADERBOARD).is_file():
        if (run / MANIFEST).is_file() or (run / MARKER).is_file():
            raise DataError(f"{run} is an unfinished run (no {LEADERBOARD} yet); `embedlens "
                            f"run --out {run} --resume` finishes it.")
        raise DataError(f"{run} is not a run directory (no {RUN_FILE} or {LEADERBOARD}).")
    return Leaderboard.load(run / LEADERBOARD)


def able_methods(run: Path, need: str) -> list[str]:
    """The successful methods of a full run that can answer ``need``, best first: for
    "similar", best at neighbours where they were judged, else best at ranking."""
    board = read_leaderboard(run)
    coldstart = None
    if need == "coldstart" and (run / COLDSTART).is_file():
        coldstart = read_json(run / COLDSTART, "cold-start record")
    able = ranked_for(board, need, coldstart)
    if not able:
        raise DataError(f"No method of {run} can answer this ({need} needed).")
    return able


def ranked_for(board: Leaderboard, need: str, coldstart: object = None) -> list[str]:
    """:func:`able_methods` from a leaderboard (and the cold-start record, for
    "coldstart") already read."""
    order = board.fitted()
    judged: list[str] = []
    if need == "similar":
        judged = [r.method for r in board.neighbours_ranked()]
        need = "items"
    elif need == "coldstart":
        rows = coldstart.get("rows", []) if isinstance(coldstart, dict) else []
        judged = [r["ranking"] for r in rows if isinstance(r, dict) and "ranking" in r]
    if judged:  # best at the task first, then the rest in leaderboard order
        order = sorted(order, key=lambda r: judged.index(r.method) if r.method in judged
                       else len(judged))
    return [r.method for r in order if can_answer(r.method, need)]


def can_answer(method: str, need: str) -> bool:
    """Whether ``method`` can answer ``need``: "any", "similar" (item vectors), or a
    capability name of :func:`~embedlens.methods.base.can`."""
    need = "items" if need == "similar" else need
    return need == "any" or can(get_method(method), need)

