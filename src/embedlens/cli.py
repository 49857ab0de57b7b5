"""The ``embedlens`` command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from embedlens.errors import EmbedlensError
from embedlens.progress import set_quiet

app = typer.Typer(
    help="Movie and user embeddings from MovieLens (or any interaction log), evaluated.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
datasets_app = typer.Typer(help="List MovieLens variants, or show one's counts.")
app.add_typer(datasets_app, name="datasets")
console = Console()

DataDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Folder holding <variant>/ or <variant>.zip (no download then). "
        "Default: the cache ($EMBEDLENS_DATA_DIR), downloading once.",
    ),
]


@app.callback()
def _main(
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    set_quiet(quiet)


@datasets_app.callback(invoke_without_command=True)
def datasets(ctx: typer.Context, data_dir: DataDirOpt = None) -> None:
    """List every MovieLens variant and whether it is cached, local or not downloaded."""
    if ctx.invoked_subcommand is not None:
        return
    from embedlens.data.download import cache_dir, state
    from embedlens.data.registry import VARIANTS

    table = Table(title=f"MovieLens variants (cache: {cache_dir()})")
    for col in ("variant", "state", "verified by"):
        table.add_column(col)
    for v in VARIANTS.values():
        check = f"sha256 {v.sha256[:12]}…" if v.sha256 else "GroupLens .md5"
        table.add_row(v.name, state(v, data_dir), check)
    console.print(table)


@datasets_app.command("info")
def datasets_info(
    name: Annotated[str, typer.Argument(help="Variant, e.g. ml-100k, or a CSV/Parquet log.")],
    data_dir: DataDirOpt = None,
) -> None:
    """Load a dataset and print its counts."""
    from embedlens.data import load_dataset

    ds = load_dataset(name, data_dir=str(data_dir) if data_dir else None)
    table = Table(title=ds.name, show_header=False)
    for key, value in ds.summary().items():
        shown = f"{value:,}" if isinstance(value, int) else (
            f"{value:.4g}" if isinstance(value, float) else str(value)
        )
        table.add_row(key, shown)
    console.print(table)


ProtocolOpt = Annotated[
    str | None,
    typer.Option("--protocol", help="global-time-0.2, random-0.2 or user-time-0.2."),
]


def _parse_params(items: list[str] | None) -> dict[str, Any]:
    """``key=value`` pairs; values parsed as JSON when they can be (numbers, true, lists)."""
    import json

    params: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise EmbedlensError(f"--param expects key=value, got {item!r}.")
        try:
            params[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            params[key.strip()] = value
    return params


def _metrics_table(report: dict[str, Any], title: str) -> Table:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("± 95% CI", justify="right")
    for key, value in report.items():
        if ("@" in key or key in ("rmse", "mae")) and not key.endswith("_ci95"):
            ci = report.get(f"{key}_ci95")
            table.add_row(key, f"{value:.4f}", "" if ci is None else f"{ci:.4f}")
    return table


def _neighbours_table(title: str, neighbours: Any) -> Table:
    """A table of an ``Embeddings.similar_by_vector``/``most_similar`` result."""
    table = Table(title=title)
    for col in ("id", "title", "genres", "score"):
        table.add_column(col)
    for row in neighbours.iter_rows(named=True):
        genres = "|".join(row.get("genres") or [])
        table.add_row(str(row["id"]), row.get("title") or "", genres, f"{row['score']:.3f}")
    return table


MethodOpt = Annotated[
    str | None,
    typer.Option("--method", "-m", help="Which method of a full run (default: the best "
                 "on its leaderboard that can answer)."),
]


@app.command()
def run(
    out: Annotated[Path, typer.Option("--out", help="Run directory to write.")],
    dataset: Annotated[
        str | None, typer.Option("--dataset", help="Variant or log path [default: ml-100k].")
    ] = None,
    protocol: ProtocolOpt = None,
    methods: Annotated[
        str | None, typer.Option("--methods", help="'all' or e.g. cleora,two-tower.")
    ] = None,
    baselines: Annotated[
        str | None, typer.Option("--baselines", help="Default random,pop,ease; '' for none.")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="TOML config (options given here win).")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of every method.")] = None,
    k: Annotated[int | None, typer.Option("--k", help="Cut-off of the metrics.")] = None,
    data_dir: DataDirOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a previous run in OUT.")]
    = False,
) -> None:
    """Train every method and baseline on one split; write the leaderboard and report.html."""
    from dataclasses import replace

    from embedlens.config import RunConfig
    from embedlens.pipeline import ranked, run_all

    base = RunConfig.from_toml(config) if config else RunConfig()
    given = {
        "dataset": dataset, "protocol": protocol, "methods": methods, "baselines": baselines,
        "seed": seed, "k": k, "data_dir": str(data_dir) if data_dir else None,
    }
    cfg = replace(base, **{key: v for key, v in given.items() if v is not None})
    result = run_all(cfg, out, force=force)
    table = Table(title=f"{cfg.dataset}, {cfg.protocol}: metrics @{cfg.k}, baselines dimmed",
                  box=box.SIMPLE_HEAD)
    for col in ("#", "method", "NDCG", "± 95% CI", "HitRate", "MRR", "Recall", "fit s"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for rank, r in enumerate(ranked(result.rows, cfg.k), 1):
        at = {m: f"{r[f'{m}@{cfg.k}']:.4f}" for m in ("ndcg", "hitrate", "mrr", "recall")}
        table.add_row(
            str(rank), r["method"], at["ndcg"], f"{r[f'ndcg@{cfg.k}_ci95']:.4f}",
            at["hitrate"], at["mrr"], at["recall"], f"{r['fit_seconds']:.1f}",
            style="dim" if r["role"] == "baseline" else None,
        )
    console.print(table)
    console.print(f"{len(result.rows)} methods in {result.seconds:.0f} s → {out / 'report.html'}")
    if result.failed:
        console.print(f"[bold red]Failed:[/] {', '.join(result.failed)} (see leaderboard.md)")
        raise typer.Exit(1)


@app.command()
def train(
    method: Annotated[str, typer.Argument(help="Method or baseline: pop, ease, random, als …")],
    dataset: Annotated[str, typer.Option("--dataset", help="Variant name or log path.")],
    out: Annotated[Path, typer.Option("--out", help="Run directory to write.")],
    protocol: ProtocolOpt = None,
    data_dir: DataDirOpt = None,
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="Model parameter key=value.")
    ] = None,
) -> None:
    """Fit a method on a protocol's train split and save it as a run directory."""
    from embedlens.prep.protocols import DEFAULT_PROTOCOL
    from embedlens.runs import train_run

    info, _ = train_run(
        method, dataset, out, protocol or DEFAULT_PROTOCOL, data_dir, _parse_params(param)
    )
    console.print(
        f"Trained [bold]{info.method}[/] on {info.dataset} ({info.protocol}) in "
        f"{info.fit_seconds:.1f} s → {out}"
    )


@app.command()
def evaluate(
    run: Annotated[Path, typer.Argument(help="Run directory, or a Cleora .out / word2vec file.")],
    protocol: ProtocolOpt = None,
    data_dir: DataDirOpt = None,
    dataset: Annotated[
        str | None, typer.Option("--dataset", help="Dataset (needed for an embeddings file).")
    ] = None,
    k: Annotated[int, typer.Option("--k", help="Cut-off of the metrics.")] = 10,
    method: MethodOpt = None,
) -> None:
    """Score a run (one method's, or a method of a full run) or a Cleora .out file, and write
    evaluation-<protocol>.json."""
    from embedlens.pipeline import method_dir
    from embedlens.prep.protocols import DEFAULT_PROTOCOL
    from embedlens.runs import evaluate_file, evaluate_run

    if run.is_file():
        if dataset is None:
            raise EmbedlensError(f"Evaluating the file {run.name} needs --dataset.")
        report = evaluate_file(run, dataset, protocol or DEFAULT_PROTOCOL, data_dir, k)
    else:
        report = evaluate_run(method_dir(run, method, "any"), protocol, data_dir, k)
    title = f"{report['method']} on {report['protocol']} ({report['n_users']:,} users)"
    console.print(_metrics_table(report, title))
    if report.get("trained_on") not in (None, report["protocol"]):
        console.print(
            f"[yellow]Note:[/] trained on {report['trained_on']}; its train data may overlap "
            f"this protocol's test set."
        )


@app.command()
def similar(
    run: Annotated[Path, typer.Argument(help="Run directory (one method, or a full run).")],
    movie: Annotated[str, typer.Argument(help="Movie title (case and year optional) or id.")],
    k: Annotated[int, typer.Option("--k", help="How many neighbours.")] = 10,
    method: MethodOpt = None,
) -> None:
    """List the movies nearest to a movie in a run's embedding space."""
    from embedlens.models.base import EmbeddingModel
    from embedlens.pipeline import method_dir
    from embedlens.runs import load_run

    info, model = load_run(method_dir(run, method, "embeddings"))
    if not isinstance(model, EmbeddingModel):
        raise EmbedlensError(f"{info.method} has no item embeddings to compare movies with.")
    key = model._items().resolve(movie)
    title = f"Nearest to {model._items().title_of(key) or key} ({info.method})"
    console.print(_neighbours_table(title, model.similar_items(key, k)))


@app.command()
def coldstart(
    run: Annotated[Path, typer.Argument(help="Run directory of EGES, or a full run.")],
    genres: Annotated[str, typer.Option("--genres", help='e.g. "Action|Adventure|Sci-Fi"')] = "",
    tags: Annotated[str, typer.Option("--tags", help='e.g. "marvel,superhero"')] = "",
    year: Annotated[int | None, typer.Option("--year", help="Release year.")] = None,
    k: Annotated[int, typer.Option("--k", help="How many neighbours.")] = 10,
    method: MethodOpt = None,
) -> None:
    """Embed a movie nobody has rated from its side information; list its neighbours."""
    from embedlens.pipeline import method_dir
    from embedlens.runs import load_run

    info, model = load_run(method_dir(run, method, "coldstart"))
    if not hasattr(model, "coldstart"):
        raise EmbedlensError(f"{info.method} cannot embed unseen movies; train eges.")
    vector = model.coldstart(
        [g for g in genres.split("|") if g], [t for t in tags.split(",") if t], year
    )
    title = f"Nearest to an unseen movie (genres={genres!r}, tags={tags!r})"
    console.print(_neighbours_table(title, model._items().similar_by_vector(vector, k)))


@app.command()
def recommend(
    run: Annotated[Path, typer.Argument(help="Run directory (one method, or a full run).")],
    user: Annotated[str, typer.Option("--user", help="User id (as in the dataset).")],
    k: Annotated[int, typer.Option("--k", help="How many movies.")] = 10,
    data_dir: DataDirOpt = None,
    method: MethodOpt = None,
) -> None:
    """Top-K movies for a user from a run (the user's train movies excluded)."""
    from embedlens.data import load_dataset
    from embedlens.evaluate import EvalSplit
    from embedlens.pipeline import method_dir
    from embedlens.runs import load_run, resolve_dir

    info, model = load_run(method_dir(run, method, "any"))
    ds = load_dataset(info.dataset, data_dir=resolve_dir(data_dir) or info.data_dir)
    train = EvalSplit.prepare(ds, info.protocol).train
    user_id: object = int(user) if user.lstrip("-").isdigit() else user
    recs = model.recommend(train, [user_id], k)
    titles = {} if ds.items is None else dict(
        zip(ds.items["item_id"].to_list(), ds.items["title"].to_list(), strict=True))
    table = Table(title=f"Top {k} for user {user} ({info.method}, {info.protocol} train)")
    for col in ("rank", "id", "title", "score"):
        table.add_column(col)
    for row in recs.iter_rows(named=True):
        table.add_row(str(row["rank"]), str(row["item_id"]), titles.get(row["item_id"], ""),
                      f"{row['score']:.3f}")
    console.print(table)


@app.command()
def export(
    run: Annotated[Path, typer.Argument(help="Run directory (one method, or a full run).")],
    fmt: Annotated[str, typer.Option("--format", help="projector|parquet|numpy|word2vec|cleora")],
    out: Annotated[Path | None, typer.Option("--out", help="Folder (default: RUN/export).")]
    = None,
    method: Annotated[
        str | None, typer.Option("--method", "-m", help="One method of a full run "
                                 "(default: every embedding method, one folder each).")
    ] = None,
) -> None:
    """Write a run's item and user embeddings in another format."""
    from embedlens.export import export as export_embeddings
    from embedlens.models.base import EmbeddingModel
    from embedlens.pipeline import embedding_runs
    from embedlens.runs import load_run

    target = out or run / "export"
    for sub in embedding_runs(run, method):
        info, model = load_run(sub)
        if not isinstance(model, EmbeddingModel):
            raise EmbedlensError(f"{info.method} has no embeddings to export.")
        folder = target if sub == run else target / info.method
        written = export_embeddings(model._items(), fmt, folder / "items")
        if model.user_embeddings is not None:
            written += export_embeddings(model.user_embeddings, fmt, folder / "users")
        for path in written:
            console.print(str(path))


def main() -> None:
    """Entry point: run the app, turning expected errors into one clear line (exit code 2)."""
    try:
        app()
    except EmbedlensError as exc:
        Console(stderr=True).print(f"[bold red]Error:[/] {exc}", highlight=False)
        sys.exit(2)
