"""``report.html``: one self-contained page per ``embedlens run`` that opens from disk and
links nowhere, so it can be mailed or read offline.

It carries the explorer of ``embedlens serve`` without a server: the movie search, each
method's neighbours side by side, and a zoomable map of each method's movies, answered by
the explorer's own script from data written into the page (the most-rated movies, up to
:data:`N_EXPLORE` with neighbours and :data:`N_MAP` on the maps). The leaderboard sorts by
any column and marks the best method and every method its confidence interval cannot tell
apart from it.
"""

from __future__ import annotations

import base64
import html
import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from embedlens.app.explorer import explorer_part, explorer_section
from embedlens.app.layout import pca_2d
from embedlens.app.queries import ranked_for
from embedlens.app.train import kept_check
from embedlens.core.embeddings import _ARTICLES, Embeddings, normalize_title
from embedlens.core.files import json_safe, write_text
from embedlens.data.dataset import Dataset
from embedlens.evaluation.splits import EvalSplit
from embedlens.kernels.topk import nearest_rows
from embedlens.methods.base import ItemVectors

if TYPE_CHECKING:
    from embedlens.app.config import RunConfig
    from embedlens.app.leaderboard import Leaderboard
    from embedlens.methods.base import Model

#: How many famous movies get a neighbours table, and how many neighbours each.
N_FAMOUS, N_NEIGHBOURS = 4, 5
#: The explorer in the report: neighbours of this many most-rated movies, and this many
#: most-rated movies on each map (all of them up to ml-latest-small's 9.7k; an ML-25M run's
#: page stays at a few MB).
N_EXPLORE, N_MAP, N_EXPLORE_NEIGHBOURS = 3000, 20000, 10
#: Genres with their own colour on the maps; the rest are grey.
N_COLOURED = 9

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;white-space:nowrap}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.baseline{color:#666;background:#f7f7f7}
tr.best{font-weight:600;background:#e3f2e1} tr.tie{background:#fff6d5}
img{max-width:100%} pre{background:#f4f4f4;padding:1em;overflow:auto;font-size:.85em}
.failed{color:#b00} dt{font-weight:600} dd{margin:0 0 .4em 1.5em}
"""

#: What each column of the leaderboard means (RePlay's definitions, @k).
METRICS_EXPLAINED = (
    ("ndcg", "Normalised discounted cumulative gain: hits near the top count more (1/log2 "
     "of rank + 1), divided by the best possible for the user's number of test movies."),
    ("hitrate", "Share of test users with at least one test movie in their top k."),
    ("mrr", "Mean reciprocal rank of the first hit (0 when none)."),
    ("recall", "Share of a user's test movies found in the top k, averaged over users."),
    ("precision", "Share of the top k that are test movies, averaged over users."),
    ("map", "Mean average precision: precision at each hit's rank, averaged."),
    ("coverage", "Share of the train catalogue that appears in anybody's top k (no CI)."),
)


def write_report(
    path: Path, board: Leaderboard, models: dict[str, Model], config: RunConfig, ds: Dataset,
    data: EvalSplit, seconds: float, coldstart: dict[str, Any] | None = None,
) -> Path:
    """Write ``report.html`` for a finished run in ``path``'s folder."""
    out = path.parent
    k = config.k
    embedded = {
        name: model.item_vectors() for name, model in models.items()
        if isinstance(model, ItemVectors)
    }
    best = board.ranked()[0].method if board.ranked() else None
    parts = [
        f"<h1>embedlens run: {_e(ds.name)}, {_e(config.protocol)}</h1>",
        f"<p>{ds.n_interactions:,} ratings; {data.train.ratings.nnz:,} in train; "
        f"{data.users.size:,} test users; {len(board.rows)} methods in {seconds:.0f} s. "
        f"Metrics @{k} (RePlay definitions) with 95% confidence half-widths; every method ranks "
        f"the full train catalogue with the user's train movies excluded.</p>",
        "<div class=error id=error></div>",
        "<h2>Leaderboard</h2>",
        board.html(),
        f"<p>Click a column's head to sort by it. ★ <b>{_e(best)}</b> ranks best by "
        f"NDCG@{k}; <span style='background:#fff6d5'>yellow rows</span>: their 95% "
        "confidence interval overlaps the best's, so this data cannot tell them apart from "
        "it; white rows are below it beyond doubt. Dimmed grey rows are baselines "
        "(reference points, not embedding methods).</p>" if best else "",
        "<details><summary>What the metrics mean</summary><dl>" + "".join(
            f"<dt>{_e(m)}@{k}</dt><dd>{_e(text)}</dd>" for m, text in METRICS_EXPLAINED)
        + "</dl></details>",
    ]
    preset = config.preset_used
    if preset is not None:
        from embedlens.app.presets import preset_note

        parts.append(f"<p>{_e(preset_note(preset))}</p>")
    for name, why in config.left_out.items():
        parts.append(f"<p>Left out of the default baselines: <b>{_e(name)}</b> ({_e(why)})</p>")
    if board.cold_start_only:
        parts.append(f"<p>{_e(board.cold_start_note())}</p>")
    if board.failed:
        parts.append("<p class=failed>Failed: " + "; ".join(
            f"<b>{_e(r.method)}</b>: {_e(r.error)}" for r in board.failed) + "</p>")
    if board.neighbours_ranked():
        parts += ["<h2>How good are the neighbours?</h2>",
                  f"<p>Each method's {k} nearest movies (cosine) to every movie at least five "
                  "test users had in train, judged against its held-out companions: movies "
                  "those users went on to like in the test part more often than popularity "
                  "predicts. Genre agreement is the mean Jaccard overlap with the query's "
                  "genres; neighbour popularity the mean popularity percentile (1: the most "
                  "popular movie).</p>", board.neighbours_html()]
    if coldstart is not None:
        from embedlens.app.leaderboard import coldstart_html

        parts += ["<h2>Cold start</h2>",
                  "<p>10% of the movies are held out entirely (every rating of them leaves "
                  "train); each method that can places them from side information alone, and "
                  "every user who rated one is ranked against the held-out movies only, then "
                  "against the whole catalogue. Genre popularity ranks them by the train "
                  "share of their genres; random order is what a method without side "
                  "information can do.</p>", coldstart_html(coldstart, k)]
    script = ""
    if embedded:
        static = explorer_data(embedded, board, data, ds)
        genres = ("; colour by main genre (the movie's rarest, i.e. most specific, genre: "
                  "grey dots are the less common genres or none), year or popularity"
                  if main_genres(ds) else " (the data has no genres, so every point is "
                  "grey when coloured by genre)")
        parts += ["<h2>Movie maps and neighbours</h2>",
                  f"<p>Search a movie to see its {N_EXPLORE_NEIGHBOURS} nearest movies under "
                  "every method (cosine), or click one on a map. This page carries the "
                  f"{len(static['neighbours'][next(iter(static['neighbours']))]['query']):,} "
                  "most-rated movies' neighbours; <code>embedlens serve</code> answers for "
                  f"all of them, and for users. Maps: PCA of each method's unit vectors"
                  f"{genres}.</p>",
                  explorer_section("neighbours"), explorer_section("map")]
        # "</" would end the script element early; JSON reads "<\/" as the same text
        data_js = json.dumps(static, separators=(",", ":"), allow_nan=False).replace(
            "</", "<\\/")
        script = (f"<script>window.EMBEDLENS_STATIC={data_js};</script>"
                  f"<script>{explorer_part('explorer.js')}</script>")
    famous = famous_movies(data, N_FAMOUS)
    if embedded:
        parts += ["<h2>Nearest neighbours (cosine)</h2>",
                  "<p>The most-rated movies of the train split, and each method's "
                  f"{N_NEIGHBOURS} nearest movies.</p>"]
        parts += [_neighbours_table(item, embedded) for item in famous]
    curves = [(name, out / name / "loss.png", models[name].history) for name in models]
    curves = [(n, p, h) for n, p, h in curves if p.is_file()]
    if curves:
        parts += ["<h2>Training curves</h2>",
                  "<p>Methods that stop early keep the network of their best validation "
                  "check (dashed line), not their last.</p>"]
        for name, png, history in curves:
            kept = kept_check(history)
            checks = len(history.get("loss", []))
            note = ("" if kept is None else
                    f" <small>(kept check {kept} of {checks}: its best validation score)"
                    "</small>")
            parts.append(f"<h3>{_e(name)}{note}</h3>{_img(png.read_bytes())}")
    toml = (out / "config.toml").read_text()
    from embedlens.io.runs import versions

    parts += ["<h2>Configuration</h2>",
              f"<details><summary>config.toml ({toml.count(chr(10))} lines: every method's "
              "parameters as run; <code>embedlens run --config</code> repeats the run)"
              f"</summary><pre>{_e(toml)}</pre></details>",
              "<details><summary>package versions</summary>"
              f"<pre>{_e(json.dumps(versions(), indent=1))}</pre></details>"]
    page = (f"<!doctype html><html><head><meta charset=utf-8><title>embedlens: "
            f"{_e(ds.name)}</title><style>{explorer_part('explorer.css')}{_CSS}</style>"
            "</head><body>" + "\n".join(parts) + script + "</body></html>")
    return write_text(path, page)


def explorer_data(embedded: dict[str, Embeddings], board: Leaderboard, data: EvalSplit,
                  ds: Dataset) -> dict[str, Any]:
    """What the explorer's script needs to answer search, similar and map without a server:
    the train movies (id, title, its searchable form, main genre, popularity), each method's
    nearest movies to the :data:`N_EXPLORE` most-rated ones, and its 2-D map of the
    :data:`N_MAP` most-rated."""
    ids = data.train.items.ids
    popularity = data.train.item_counts()
    titles: dict[object, str] = {}
    if ds.items is not None:
        titles = {i: t or "" for i, t in ds.items.select("item_id", "title").rows()}
    genre_of = main_genres(ds)
    id_list = ids.tolist()
    movies = {"id": id_list, "title": [titles.get(i, "") for i in id_list],
              "form": [normalize_title(titles.get(i, "")) for i in id_list],
              "genre": [genre_of.get(i, "") for i in id_list],
              "popularity": popularity.tolist()}
    order = np.lexsort((np.arange(ids.size), -popularity))  # most rated first, then by row
    queries, on_map = order[:N_EXPLORE], np.sort(order[:N_MAP])
    neighbours, maps = {}, {}
    for name, emb in embedded.items():
        unit = emb.normalized()
        rows = unit.positions(ids)  # each train movie's row in this method's vectors
        # a method may leave movies out (a minimum count): only movies it embeds are asked
        asked = queries[rows[queries] >= 0]
        back = np.full(len(unit), -1, dtype=np.int64)  # vector row -> train column
        back[rows[rows >= 0]] = np.flatnonzero(rows >= 0)
        top, score = nearest_rows(unit.vectors, rows[asked],
                                  min(N_EXPLORE_NEIGHBOURS, max(len(unit) - 1, 0)),
                                  desc="report: neighbours")
        neighbours[name] = {"query": asked.tolist(), "top": back[top].tolist(),
                            "score": np.round(score.astype(np.float64), 4).tolist()}
        xy = pca_2d(unit.vectors)
        shown = on_map[rows[on_map] >= 0]
        maps[name] = {"layout": "pca", "movie": shown.tolist(),
                      "x": np.round(xy[rows[shown], 0], 4).tolist(),
                      "y": np.round(xy[rows[shown], 1], 4).tolist(),
                      "of": int((rows >= 0).sum())}
    rows_by_name = {r.method: r for r in board.fitted()}
    methods = [{"method": name, "rank": rank, "items": True, "coldstart": False,
                "leaderboard": rows_by_name[name].to_dict() if name in rows_by_name else None}
               for rank, name in enumerate(sorted(embedded, key=lambda m: (
                   list(rows_by_name).index(m) if m in rows_by_name else len(rows_by_name),
                   m)), 1)]
    similar = [m for m in ranked_for(board, "similar") if m in embedded] or list(embedded)
    return {"movies": movies, "articles": list(_ARTICLES), "methods": json_safe(methods),
            "defaults": {"similar": similar[0], "recommend": None, "coldstart": None},
            "neighbours": neighbours, "maps": maps}


def famous_movies(data: EvalSplit, n: int) -> list[object]:
    """The ``n`` most-rated movie ids of the train split (ties: lower id first)."""
    counts = data.train.item_counts()
    order = np.lexsort((np.arange(counts.size), -counts))[:n]
    return data.train.items.ids[order].tolist()


def main_genres(ds: Dataset) -> dict[object, str]:
    """Each movie's rarest genre (its most specific one); movies without genres are left out."""
    if ds.items is None:
        return {}
    return main_genre_of(ds.items["item_id"].to_list(), ds.items["genres"].to_list())


def main_genre_of(ids: list, genre_lists: list) -> dict[object, str]:
    """:func:`main_genres` from ids and their genre lists (a movie table's columns)."""
    freq = Counter(g for gs in genre_lists for g in (gs or []))
    return {
        i: min(gs, key=lambda g: (freq[g], g)) for i, gs in zip(ids, genre_lists, strict=True)
        if gs and "(no genres listed)" not in gs
    }


def _neighbours_table(item: object, embedded: dict[str, Embeddings]) -> str:
    title = next((e.title_of(item) for e in embedded.values() if e.title_of(item)), str(item))
    columns = {}
    for name, emb in embedded.items():
        if item in emb:
            found = emb.most_similar(item, N_NEIGHBOURS)
            names = found["title"].to_list() if "title" in found.columns else found["id"]
            columns[name] = [str(t) for t in names]
        else:
            columns[name] = ["(not embedded)"]
    head = "".join(f"<th>{_e(n)}</th>" for n in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_e(c[i]) if i < len(c) else ''}</td>" for c in columns.values())
        + "</tr>" for i in range(N_NEIGHBOURS)
    )
    return f"<h3>{_e(title)}</h3><table><tr>{head}</tr>{body}</table>"


def _img(png: bytes) -> str:
    return f'<img alt="" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _e(text: object) -> str:
    return html.escape(str(text))
