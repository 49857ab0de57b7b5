"""The leaderboard of a run: one row per method (its :class:`EvalResult`, or why it failed),
ranked by NDCG@k, and rendered from one cell formatter as Markdown, HTML and a terminal
table. ``leaderboard.json`` is the list of rows' flat records."""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embedlens.core.errors import DataError
from embedlens.core.files import read_json, write_json
from embedlens.evaluation.evaluate import EvalResult

LEADERBOARD = "leaderboard.json"
#: The ranking metrics a leaderboard shows with their CI, in column order.
CI_METRICS = ("ndcg", "hitrate", "mrr", "recall", "precision", "map")
#: The terminal shows fewer columns; Markdown and HTML show them all.
TERMINAL_METRICS = ("ndcg", "hitrate", "mrr", "recall")


@dataclass(frozen=True)
class Row:
    """One method's line: its result when it ran (``status`` "ok"), else its error."""

    method: str
    role: str
    status: str
    result: EvalResult | None = None
    error: str | None = None
    tuning: dict[str, Any] | None = None  # trials, budget, searched, params, validation score

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.result is not None

    def to_dict(self) -> dict[str, Any]:
        head: dict[str, Any] = {"method": self.method, "role": self.role,
                                "status": self.status}
        if self.tuning is not None:
            head["tuning"] = self.tuning
        if self.ok:
            return {**head, **self.result.to_dict(), "method": self.method}  # type: ignore[union-attr]
        return {**head, "error": self.error or ""}

    @classmethod
    def from_dict(cls, record: Any, where: str) -> Row:
        if not (isinstance(record, dict) and isinstance(record.get("method"), str)
                and record.get("status") in ("ok", "failed")):
            raise DataError(f"{where} is not a valid leaderboard (rows need method and status "
                            "ok/failed).")
        role = str(record.get("role", "method"))
        tuning = record.get("tuning") if isinstance(record.get("tuning"), dict) else None
        if record["status"] != "ok":
            return cls(record["method"], role, "failed", error=str(record.get("error", "")),
                       tuning=tuning)
        return cls(record["method"], role, "ok",
                   EvalResult.from_dict(record, f"{where}, row {record['method']!r}"),
                   tuning=tuning)


@dataclass
class Leaderboard:
    """Rows in run order; :meth:`ranked` orders the successful ones."""

    rows: list[Row]

    @property
    def k(self) -> int:
        return next((r.result.k for r in self.rows if r.result is not None), 10)

    def ranked(self) -> list[Row]:
        """Successful rows best first by NDCG@k (ties by name, so the order is stable)."""
        key = f"ndcg@{self.k}"
        return sorted((r for r in self.rows if r.ok),
                      key=lambda r: (-r.result.metrics[key], r.method))  # type: ignore[union-attr]

    @property
    def failed(self) -> list[Row]:
        return [r for r in self.rows if not r.ok]

    # -- files ----------------------------------------------------------------------------
    def save(self, path: Path) -> Path:
        return write_json(path, [r.to_dict() for r in self.rows])

    @classmethod
    def load(cls, path: Path) -> Leaderboard:
        records = read_json(path, "leaderboard")
        if not isinstance(records, list):
            raise DataError(f"{path} is not a valid leaderboard (a list of rows).")
        return cls([Row.from_dict(r, str(path)) for r in records])

    # -- rendering ------------------------------------------------------------------------
    def header(self, metrics: tuple[str, ...] = CI_METRICS) -> list[str]:
        """Metric column names of :meth:`cells`."""
        k = self.k
        return [*(f"{m}@{k}" for m in metrics), f"coverage@{k}"]

    def cells(self, row: Row, metrics: tuple[str, ...] = CI_METRICS) -> list[str]:
        """A row's metrics as text: mean ± 95% CI, then coverage (the one formatter)."""
        res = row.result
        assert res is not None
        out = [f"{res.metrics[f'{m}@{res.k}']:.4f} ± {res.ci95[f'{m}@{res.k}']:.4f}"
               for m in metrics]
        return [*out, f"{res.coverage:.4f}"]

    @staticmethod
    def fit_cell(row: Row) -> str:
        res = row.result
        return f"{res.fit_seconds:.1f}" if res is not None and res.fit_seconds is not None \
            else ""

    def markdown(self) -> str:
        """A Markdown table (mean ± 95% CI), failures and rating errors listed below it."""
        head = ["#", "method", "role", *self.header(), "fit s"]
        lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
        for rank, r in enumerate(self.ranked(), 1):
            cells = [str(rank), r.method, r.role, *self.cells(r), self.fit_cell(r)]
            lines.append("| " + " | ".join(cells) + " |")
        if self.failed:
            lines += ["", "Failed:", ""] + [f"- {r.method}: {r.error}" for r in self.failed]
        tuned = [r for r in self.ranked() if r.tuning]
        if tuned:
            budget = tuned[0].tuning.get("budget", "") if tuned[0].tuning else ""
            lines += ["", f"Tuned on a validation split cut from train ({budget}; validation "
                      f"NDCG@{self.k}, then the parameters found):", ""]
            for r in tuned:
                t = r.tuning or {}
                found = ", ".join(f"{k}={v}" for k, v in t.get("params", {}).items())
                value = t.get("value")
                lines.append(f"- {r.method}: {t.get('trials', 0)} trials, "
                             + (f"{value:.4f}; " if isinstance(value, float) else "")
                             + (found or "nothing to tune"))
        rated = [r for r in self.ranked() if r.result and r.result.rmse is not None]
        if rated:
            lines += ["", "Rating prediction (every test rating with a known user and movie):",
                      ""]
            lines += [f"- {r.method}: RMSE {r.result.rmse:.4f}, MAE {r.result.mae:.4f}"
                      for r in rated if r.result]
        return "\n".join(lines) + "\n"

    def html(self) -> str:
        """An HTML table; baseline rows carry ``class=baseline``."""
        e = html.escape
        head = ["#", "method", *self.header(), "RMSE", "fit s"]
        out = ["<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>"]
        for rank, r in enumerate(self.ranked(), 1):
            rmse = f"{r.result.rmse:.4f}" if r.result and r.result.rmse is not None else ""
            cells = [str(rank), e(r.method), *self.cells(r), rmse, self.fit_cell(r)]
            out.append(f"<tr class={e(r.role)}>" + "".join(
                f"<td class=num>{c}</td>" if i != 1 else f"<td>{c}</td>"
                for i, c in enumerate(cells)) + "</tr>")
        return "".join(out) + "</table>"

    def terminal(self, title: str) -> Any:
        """A rich table (fewer columns), baselines dimmed; cells are text, never markup."""
        from rich import box
        from rich.table import Table
        from rich.text import Text

        table = Table(title=Text(title), box=box.SIMPLE_HEAD)
        for col in ("#", "method", *self.header(TERMINAL_METRICS), "fit s"):
            table.add_column(col, justify="left" if col == "method" else "right")
        for rank, r in enumerate(self.ranked(), 1):
            table.add_row(str(rank), Text(r.method), *self.cells(r, TERMINAL_METRICS),
                          self.fit_cell(r), style="dim" if r.role == "baseline" else None)
        return table
