"""``report.html``: one self-contained page per ``embedlens run`` (no scripts, no links out;
figures are inline PNGs), so it can be mailed or opened offline."""

from __future__ import annotations

import base64
import html
import io
import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from embedlens.core.embeddings import Embeddings, l2_normalize
from embedlens.core.files import write_text
from embedlens.data.dataset import Dataset
from embedlens.evaluation.splits import EvalSplit
from embedlens.methods.base import ItemVectors

if TYPE_CHECKING:
    from embedlens.app.config import RunConfig
    from embedlens.app.leaderboard import Leaderboard
    from embedlens.methods.base import Model

#: How many famous movies get a neighbours table, and how many neighbours each.
N_FAMOUS, N_NEIGHBOURS = 4, 5
#: Genres with their own colour on the maps; the rest are grey.
N_COLOURED = 9

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.baseline{color:#666;background:#f7f7f7}
img{max-width:100%} pre{background:#f4f4f4;padding:1em;overflow:auto;font-size:.85em}
.failed{color:#b00}
"""


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
    parts = [
        f"<h1>embedlens run: {_e(ds.name)}, {_e(config.protocol)}</h1>",
        f"<p>{ds.n_interactions:,} ratings; {data.train.ratings.nnz:,} in train; "
        f"{data.users.size:,} test users; {len(board.rows)} methods in {seconds:.0f} s. "
        f"Metrics @{k} (RePlay definitions) with 95% confidence half-widths; every method ranks "
        f"the full train catalogue with the user's train movies excluded.</p>",
        "<h2>Leaderboard</h2>",
        board.html(),
    ]
    preset = config.preset_used
    if preset is not None:
        from embedlens.app.presets import preset_note

        parts.append(f"<p>{_e(preset_note(preset))}</p>")
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
    famous = famous_movies(data, N_FAMOUS)
    if embedded:
        parts += ["<h2>Nearest neighbours (cosine)</h2>",
                  "<p>The most-rated movies of the train split, and each method's "
                  f"{N_NEIGHBOURS} nearest movies.</p>"]
        parts += [_neighbours_table(item, embedded) for item in famous]
        legend = ("coloured by main genre (the movie's rarest genre, i.e. its most specific "
                  "one); grey: other or no genre" if main_genres(ds) else
                  "(the data has no genres, so every point is grey)")
        parts += ["<h2>Movie maps</h2>",
                  f"<p>PCA of each method's unit-length movie vectors, {legend}.</p>",
                  _img(movie_maps(embedded, ds))]
    curves = [(name, out / name / "loss.png") for name in models]
    curves = [(n, p) for n, p in curves if p.is_file()]
    if curves:
        parts.append("<h2>Training curves</h2>")
        parts += [f"<h3>{_e(n)}</h3>{_img(p.read_bytes())}" for n, p in curves]
    parts += ["<h2>Configuration</h2>",
              f"<pre>{_e((out / 'config.toml').read_text())}</pre>"]
    from embedlens.io.runs import versions

    parts.append(f"<pre>{_e(json.dumps(versions(), indent=1))}</pre>")
    page = (f"<!doctype html><html><head><meta charset=utf-8><title>embedlens: "
            f"{_e(ds.name)}</title><style>{_CSS}</style></head><body>"
            + "\n".join(parts) + "</body></html>")
    return write_text(path, page)


def famous_movies(data: EvalSplit, n: int) -> list[object]:
    """The ``n`` most-rated movie ids of the train split (ties: lower id first)."""
    counts = np.asarray(data.train.binary().sum(axis=0)).ravel()
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


def pca_2d(vectors: np.ndarray) -> np.ndarray:
    """The rows' coordinates on the first two principal components of the unit-length rows
    (the cosine geometry ``similar`` ranks by), each axis's sign fixed so its largest
    loading is positive: the same vectors always give the same picture. Fewer than two rows
    or dimensions give zeros where there is no component."""
    x = l2_normalize(np.asarray(vectors, dtype=np.float64))
    x -= x.mean(axis=0) if len(x) else 0.0
    out = np.zeros((x.shape[0], 2))
    if x.shape[0] < 2:
        return out
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    axes = vt[:2]
    signs = np.sign(axes[np.arange(axes.shape[0]), np.abs(axes).argmax(axis=1)])
    out[:, : axes.shape[0]] = x @ (axes * signs[:, None]).T
    return out


def movie_maps(embedded: dict[str, Embeddings], ds: Dataset) -> bytes:
    """One PCA scatter per method, coloured by main genre, as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    genre_of = main_genres(ds)
    common = [g for g, _ in Counter(genre_of.values()).most_common(N_COLOURED)]
    palette = dict(zip(common, plt.get_cmap("tab10")(np.arange(10)).tolist(), strict=False))
    cols = min(3, len(embedded))
    rows = -(-len(embedded) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 4.2 * rows), squeeze=False)
    for ax, (name, emb) in zip(axes.ravel(), embedded.items(), strict=False):
        xy = pca_2d(emb.vectors)
        genres = [genre_of.get(i) for i in emb.ids.tolist()]
        grey = np.array([g not in palette for g in genres])
        ax.scatter(xy[grey, 0], xy[grey, 1], s=4, c="#cccccc", linewidths=0)
        for g, colour in palette.items():
            mask = np.array([x == g for x in genres])
            ax.scatter(xy[mask, 0], xy[mask, 1], s=5, color=colour, label=g, linewidths=0)
        ax.set_title(f"{name} ({len(emb):,} movies, d={emb.dim})")
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes.ravel()[len(embedded):]:
        ax.axis("off")
    handles, labels = axes.ravel()[0].get_legend_handles_labels()
    if labels:  # a log without genres has no legend to draw
        fig.legend(handles, labels, loc="lower center", ncol=len(labels), markerscale=3,
                   frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return buf.getvalue()


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
