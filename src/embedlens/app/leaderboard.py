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


#: The status of a method fitted but not ranked for warm users (``Model.warm_ranked``
#: False: text), judged on the cold-start board.
COLD_START = "cold-start"


@dataclass(frozen=True)
class Row:
    """One method's line: its result when it ran (``status`` "ok"), its error ("failed"),
    or, for a method judged on the cold-start board alone (:data:`COLD_START`), its fit
    time and the judgement of its nearest movies."""

    method: str
    role: str
    status: str
    result: EvalResult | None = None
    error: str | None = None
    tuning: dict[str, Any] | None = None  # trials, budget, searched, params, validation score
    seeds: dict[str, Any] | None = None  # the metric over several seeds: values, mean, ci95
    fit_seconds: float | None = None  # a cold-start row's (an "ok" row's is in its result)
    similarity: dict[str, Any] | None = None  # a cold-start row's neighbour judgement

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.result is not None

    @property
    def neighbours(self) -> dict[str, Any] | None:
        """The judgement of the method's nearest movies, when they were judged."""
        return self.result.similarity if self.result is not None else self.similarity

    def to_dict(self) -> dict[str, Any]:
        head: dict[str, Any] = {"method": self.method, "role": self.role,
                                "status": self.status}
        if self.tuning is not None:
            head["tuning"] = self.tuning
        if self.seeds is not None:
            head["seeds"] = self.seeds
        if self.ok:
            return {**head, **self.result.to_dict(), "method": self.method}  # type: ignore[union-attr]
        if self.status == COLD_START:
            return {**head, **{key: value for key, value in (
                ("fit_seconds", self.fit_seconds), ("similarity", self.similarity))
                if value is not None}}
        return {**head, "error": self.error or ""}

    @classmethod
    def from_dict(cls, record: Any, where: str) -> Row:
        if not (isinstance(record, dict) and isinstance(record.get("method"), str)
                and record.get("status") in ("ok", "failed", COLD_START)):
            raise DataError(f"{where} is not a valid leaderboard (rows need method and status "
                            f"ok/failed/{COLD_START}).")
        role = str(record.get("role", "method"))
        tuning = record.get("tuning") if isinstance(record.get("tuning"), dict) else None
        seeds = record.get("seeds") if isinstance(record.get("seeds"), dict) else None
        if record["status"] == COLD_START:
            fit = record.get("fit_seconds")
            return cls(record["method"], role, COLD_START,
                       fit_seconds=float(fit) if isinstance(fit, int | float) else None,
                       similarity=record.get("similarity")
                       if isinstance(record.get("similarity"), dict) else None)
        if record["status"] != "ok":
            return cls(record["method"], role, "failed", error=str(record.get("error", "")),
                       tuning=tuning)
        return cls(record["method"], role, "ok",
                   EvalResult.from_dict(record, f"{where}, row {record['method']!r}"),
                   tuning=tuning, seeds=seeds)


@dataclass
class Leaderboard:
    """Rows in run order; :meth:`ranked` orders the successful ones."""

    rows: list[Row]

    @property
    def k(self) -> int:
        return next((r.result.k for r in self.rows if r.result is not None), 10)

    def score(self, row: Row) -> float:
        """What ranks a row: NDCG@k, its mean over seeds when several ran."""
        if row.seeds is not None and isinstance(row.seeds.get("mean"), float):
            return float(row.seeds["mean"])
        assert row.result is not None
        return row.result.metrics[f"ndcg@{self.k}"]

    def ranked(self) -> list[Row]:
        """Successful rows best first by :meth:`score` (ties by name, so the order is
        stable)."""
        return sorted((r for r in self.rows if r.ok), key=lambda r: (-self.score(r), r.method))

    @property
    def failed(self) -> list[Row]:
        return [r for r in self.rows if r.status == "failed"]

    @property
    def cold_start_only(self) -> list[Row]:
        """Rows fitted but judged on the cold-start board alone (:data:`COLD_START`)."""
        return [r for r in self.rows if r.status == COLD_START]

    def fitted(self) -> list[Row]:
        """The rows whose model the run holds: :meth:`ranked`, then the cold-start-only ones
        in run order (what queries, the server and the report may use)."""
        return self.ranked() + self.cold_start_only

    def neighbours_ranked(self) -> list[Row]:
        """Rows whose nearest movies were judged, best first by ``sim_ndcg@k``."""
        key = f"sim_ndcg@{self.k}"
        judged = [r for r in self.rows if r.status != "failed" and r.neighbours
                  and key in r.neighbours]
        return sorted(judged, key=lambda r: (-r.neighbours[key], r.method))  # type: ignore[index]

    def neighbour_cells(self, row: Row) -> list[str]:
        """sim_ndcg ± CI, genre agreement, neighbour popularity (the one formatter)."""
        k = self.k
        sim = row.neighbours
        assert sim is not None
        genre = sim.get(f"genre_agreement@{k}")
        return [f"{sim[f'sim_ndcg@{k}']:.4f} ± {sim[f'sim_ndcg@{k}_ci95']:.4f}",
                "" if genre is None else f"{genre:.3f}",
                f"{sim[f'neighbour_popularity@{k}']:.3f}",
                f"{sim['sim_queries_embedded']:,} / {sim['sim_queries']:,}"
                + _sampled_from(sim)]

    def neighbour_header(self) -> list[str]:
        k = self.k
        return [f"sim_ndcg@{k}", f"genre_agreement@{k}", f"neighbour_popularity@{k}",
                "queries embedded"]

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
    def header(self, metrics: tuple[str, ...] = CI_METRICS, compact: bool = False
               ) -> list[str]:
        """Metric column names of :meth:`cells`."""
        k = self.k
        if compact:  # short names: the terminal table must fit 80 columns
            short = {"hitrate": "HR", "recall": "recall", "mrr": "MRR"}
            return [f"ndcg@{k}", "± 95% CI",
                    *(f"{short.get(m, m)}@{k}" for m in metrics[1:])]
        return [*(f"{m}@{k}" for m in metrics), f"coverage@{k}"]

    def cells(self, row: Row, metrics: tuple[str, ...] = CI_METRICS, compact: bool = False
              ) -> list[str]:
        """A row's metrics as text (the one formatter): mean ± 95% CI each, then coverage;
        ``compact`` (the terminal): NDCG and its CI apart, the others as means."""
        res = row.result
        assert res is not None
        mean = {m: f"{res.metrics[f'{m}@{res.k}']:.4f}" for m in metrics}
        ci = {m: f"{res.ci95[f'{m}@{res.k}']:.4f}" for m in metrics}
        if compact:
            return [mean[metrics[0]], ci[metrics[0]], *(mean[m] for m in metrics[1:])]
        return [*(f"{mean[m]} ± {ci[m]}" for m in metrics), f"{res.coverage:.4f}"]

    @staticmethod
    def seeds_cell(row: Row) -> str:
        if row.seeds is None:
            return ""
        return f"{row.seeds['mean']:.4f} ± {row.seeds['ci95']:.4f}"

    @staticmethod
    def fit_cell(row: Row) -> str:
        res = row.result
        return f"{res.fit_seconds:.1f}" if res is not None and res.fit_seconds is not None \
            else ""

    def markdown(self) -> str:
        """A Markdown table (mean ± 95% CI), failures and rating errors listed below it."""
        many = any(r.seeds for r in self.rows)
        head = ["#", "method", "role", *([f"ndcg@{self.k} over seeds"] if many else []),
                *self.header(), "fit s"]
        lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
        for rank, r in enumerate(self.ranked(), 1):
            over = [self.seeds_cell(r)] if many else []
            cells = [str(rank), r.method, r.role, *over, *self.cells(r), self.fit_cell(r)]
            lines.append("| " + " | ".join(cells) + " |")
        if many:
            n = max(r.seeds["n"] for r in self.rows if r.seeds)
            lines += ["", f"Ranked by NDCG@{self.k} averaged over {n} seeds (± the 95% CI "
                      "over seeds, Student's t); the other columns are the first seed's, "
                      "± the 95% CI over test users. Methods without a seed ran once."]
        if self.failed:
            lines += ["", "Failed:", ""] + [f"- {r.method}: {r.error}" for r in self.failed]
        if self.cold_start_only:
            lines += ["", self.cold_start_note()]
        judged = self.neighbours_ranked()
        if judged:
            head = ["#", "method", *self.neighbour_header()]
            lines += ["", "Nearest movies (`similar`), judged against held-out companions "
                      "(movies test users went on to like more often than popularity "
                      "predicts):", "", "| " + " | ".join(head) + " |",
                      "|" + " --- |" * len(head)]
            lines += ["| " + " | ".join([str(n), r.method, *self.neighbour_cells(r)]) + " |"
                      for n, r in enumerate(judged, 1)]
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

    def cold_start_note(self) -> str:
        """The line naming the methods judged on the cold-start board alone."""
        names = ", ".join(r.method + ("" if r.fit_seconds is None else
                                      f" (fit {r.fit_seconds:.1f} s)")
                          for r in self.cold_start_only)
        return (f"Not ranked for warm users: {names}. Made to place movies nobody has rated, "
                "judged on the cold-start board.")

    def score_ci(self, row: Row) -> float:
        """The 95% half-width of :meth:`score`: over seeds when several ran, else over test
        users."""
        if row.seeds is not None and isinstance(row.seeds.get("mean"), float):
            return float(row.seeds["ci95"])
        assert row.result is not None
        return row.result.ci95[f"ndcg@{self.k}"]

    def ties_with(self, row: Row, best: Row) -> bool:
        """Whether ``row``'s 95% CI overlaps ``best``'s: the data cannot rank them."""
        return (self.score(row) + self.score_ci(row)
                >= self.score(best) - self.score_ci(best))

    def html(self) -> str:
        """An HTML table, sortable by any column in the report (cells carry their number in
        ``data-v``). The best row is starred (``class=best``), rows whose CI overlaps the
        best's carry ``tie``, baselines ``baseline``."""
        e = html.escape
        many = any(r.seeds for r in self.rows)
        k = self.k
        head = ["#", "method", *([f"ndcg@{k} over seeds"] if many else []), *self.header(),
                "RMSE", "fit s"]
        out = ["<table class=sortable><tr>" + "".join(f"<th>{e(h)}</th>" for h in head)
               + "</tr>"]
        ranked = self.ranked()
        for rank, r in enumerate(ranked, 1):
            res = r.result
            assert res is not None
            rmse = f"{res.rmse:.4f}" if res.rmse is not None else ""
            texts = [str(rank), e(r.method) + (" ★" if rank == 1 else ""),
                     *([self.seeds_cell(r)] if many else []), *self.cells(r), rmse,
                     self.fit_cell(r)]
            values: list[float | None] = [
                rank, None, *([r.seeds["mean"] if r.seeds else None] if many else []),
                *(res.metrics[f"{m}@{k}"] for m in CI_METRICS), res.coverage, res.rmse,
                res.fit_seconds]
            marks = [r.role] + (["best"] if rank == 1 else
                                ["tie"] if self.ties_with(r, ranked[0]) else [])
            out.append(f"<tr class='{' '.join(marks)}'>" + "".join(
                f"<td>{t}</td>" if v is None else f"<td class=num data-v={v:.6g}>{t}</td>"
                for t, v in zip(texts, values, strict=True)) + "</tr>")
        return "".join(out) + "</table>"

    def neighbours_html(self) -> str:
        """The neighbour judgement as an HTML table, best first."""
        e = html.escape
        head = ["#", "method", *self.neighbour_header()]
        out = ["<table class=sortable><tr>" + "".join(f"<th>{e(h)}</th>" for h in head)
               + "</tr>"]
        k = self.k
        for n, r in enumerate(self.neighbours_ranked(), 1):
            sim = r.neighbours
            assert sim is not None
            values = [n, None, sim[f"sim_ndcg@{k}"], sim.get(f"genre_agreement@{k}"),
                      sim[f"neighbour_popularity@{k}"], sim["sim_queries_embedded"]]
            cells = [str(n), e(r.method), *self.neighbour_cells(r)]
            out.append("<tr>" + "".join(
                f"<td>{c}</td>" if v is None else f"<td class=num data-v={v:.6g}>{c}</td>"
                for c, v in zip(cells, values, strict=True)) + "</tr>")
        return "".join(out) + "</table>"

    def terminal(self, title: str) -> Any:
        """A rich table (fewer columns), baselines dimmed; cells are text, never markup."""
        from rich import box
        from rich.table import Table
        from rich.text import Text

        table = Table(title=Text(title), box=box.SIMPLE_HEAD)
        for col in ("#", "method", *self.header(TERMINAL_METRICS, compact=True), "fit s"):
            table.add_column(col, justify="left" if col == "method" else "right")
        for rank, r in enumerate(self.ranked(), 1):
            table.add_row(str(rank), Text(r.method),
                          *self.cells(r, TERMINAL_METRICS, compact=True), self.fit_cell(r),
                          style="dim" if r.role == "baseline" else None)
        return table


def coldstart_cells(row: dict[str, Any], k: int) -> list[str]:
    """A cold-start row as text: held-out NDCG@k ± CI, HitRate, full-catalogue NDCG."""
    held, full = row["held_out"], row.get("full")
    return [f"{held[f'ndcg@{k}']:.4f} ± {held[f'ndcg@{k}_ci95']:.4f}",
            f"{held[f'hitrate@{k}']:.4f}",
            "" if not full else f"{full[f'ndcg@{k}']:.4f} ± {full[f'ndcg@{k}_ci95']:.4f}",
            "" if not full else f"{full[f'cold_share@{k}']:.2f}"]


def coldstart_header(k: int) -> list[str]:
    return [f"held-out ndcg@{k}", f"held-out hitrate@{k}", f"full-catalogue ndcg@{k}",
            "cold share of top-k"]


def coldstart_markdown(record: dict[str, Any], k: int) -> str:
    """The cold-start leaderboard as Markdown (``record``: what coldstart.json holds)."""
    if record.get("error"):
        return f"Cold start could not be measured: {record['error']}\n"
    head = ["#", "ranking", *coldstart_header(k)]
    lines = [f"{record['held_out_movies']:,} movies held out entirely ({record['fraction']:.0%}"
             f"), {record['test_users']:,} users who rated them:", "",
             "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    lines += ["| " + " | ".join([str(n), r["ranking"], *coldstart_cells(r, k)]) + " |"
              for n, r in enumerate(record["rows"], 1)]
    return "\n".join(lines) + "\n"


def coldstart_html(record: dict[str, Any], k: int) -> str:
    e = html.escape
    if record.get("error"):
        return f"<p class=failed>Cold start could not be measured: {e(record['error'])}</p>"
    head = ["#", "ranking", *coldstart_header(k)]
    out = ["<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>"]
    for n, r in enumerate(record["rows"], 1):
        cells = [str(n), e(r["ranking"]), *coldstart_cells(r, k)]
        out.append(f"<tr class={e(r['role'])}>" + "".join(f"<td>{c}</td>" for c in cells)
                   + "</tr>")
    return "".join(out) + "</table>"


def _sampled_from(sim: dict[str, Any]) -> str:
    """" (a sample of N)" when the judged movies were a sample (runs made before samples
    judged every movie)."""
    population = sim.get("sim_sampled_from", 0)
    return f" (a sample of {population:,})" if population else ""
