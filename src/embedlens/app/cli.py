"""The ``embedlens`` command line."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from embedlens.core.distributed import launched
from embedlens.core.errors import DataError, EmbedlensError
from embedlens.core.progress import quiet_from_env, set_quiet
from embedlens.core.threads import thread_budget

app = typer.Typer(
    help="Movie and user embeddings from MovieLens (or any interaction log), evaluated.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
datasets_app = typer.Typer(help="List MovieLens variants, or show one's counts.")
app.add_typer(datasets_app, name="datasets")
console = Console(highlight=False)
_debug = False


def _t(value: object) -> Text:
    """A table cell shown as written: titles such as "[/]" are text, not console markup."""
    return Text("" if value is None else str(value))

DataDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Folder holding <variant>/ or <variant>.zip (no download then). "
        "Default: the cache ($EMBEDLENS_DATA_DIR), downloading once.",
    ),
]


ColumnsOpt = Annotated[
    str | None,
    typer.Option("--columns", help="Column names of a log file, e.g. "
                 "user=uid,item=sku,rating=,timestamp=ts (empty: the log has none)."),
]


#: The commands that run on several ranks under torchrun (docs/distributed.md); the others
#: would each write alone what one process writes, so torchrun refuses them.
DISTRIBUTED_COMMANDS = ("train", "evaluate", "run")


@app.callback()
def _main(
    ctx: typer.Context,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars "
                                        "(also EMBEDLENS_QUIET=1).")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show the traceback of an "
                                        "unexpected error.")] = False,
) -> None:
    global _debug
    _debug = debug
    set_quiet(quiet or quiet_from_env())
    thread_budget()  # a bad EMBEDLENS_THREADS stops here, before any work
    if launched():  # started by torchrun: join the other ranks; only rank 0 speaks
        from embedlens.core.distributed import init_from_env

        if ctx.invoked_subcommand not in DISTRIBUTED_COMMANDS:
            raise DataError(f"embedlens {ctx.invoked_subcommand} runs in one process; under "
                            f"torchrun run {', '.join(DISTRIBUTED_COMMANDS)}.")

        if not init_from_env().main:
            set_quiet(True)
            console.quiet = True


def _columns(spec: str | None) -> dict[str, str | None] | None:
    from embedlens.data.local import parse_columns

    return parse_columns(spec) or None


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
    columns: ColumnsOpt = None,
) -> None:
    """Load a dataset and print its counts."""
    from embedlens.data import load_dataset

    ds = load_dataset(name, data_dir=str(data_dir) if data_dir else None,
                      columns=_columns(columns))
    table = Table(title=_t(ds.name), show_header=False)
    summary = ds.summary()
    summary["duplicates_merged"] = int(ds.meta.get("duplicates_merged", 0))
    for key, value in summary.items():
        shown = f"{value:,}" if isinstance(value, int) else (
            f"{value:.4g}" if isinstance(value, float) else str(value)
        )
        table.add_row(key, _t(shown))
    console.print(table)


@datasets_app.command("split")
def datasets_split(
    name: Annotated[str, typer.Argument(help="Variant, e.g. ml-100k, or a CSV/Parquet log.")],
    out: Annotated[Path, typer.Option("--out", help="New folder for train.csv and test.csv.")],
    protocol: Annotated[str | None, typer.Option("--protocol", help="Which split.")] = None,
    data_dir: DataDirOpt = None,
    columns: ColumnsOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a split embedlens wrote "
                                        "there before.")] = False,
) -> None:
    """Write a protocol's train and test parts as CSV, to train another tool on exactly the
    rows embedlens evaluates against (then `evaluate FILE --trained-on PROTOCOL`)."""
    from embedlens.core.files import atomic_path
    from embedlens.data import load_dataset
    from embedlens.io.folders import claim
    from embedlens.prep.protocols import DEFAULT_PROTOCOL, get_protocol

    protocol = protocol or DEFAULT_PROTOCOL
    split_by = get_protocol(protocol)
    ds = load_dataset(name, data_dir=str(data_dir) if data_dir else None,
                      columns=_columns(columns))
    split = split_by.split(ds.interactions, implicit=bool(ds.meta.get("implicit")))
    with claim(out, "split", force=force) as folder:
        for part, frame in (("train", split.train), ("test", split.test_all)):
            with atomic_path(folder.path / f"{part}.csv") as tmp:
                frame.write_csv(tmp)
            console.print(_t(f"{folder.path / f'{part}.csv'}: {frame.height:,} rows"))


@datasets_app.command("synthetic")
def datasets_synthetic(
    shape: Annotated[str, typer.Argument(help="Size to imitate: ml-1m, ml-20m, ml-25m or "
                                         "ml-latest.")],
    out: Annotated[Path, typer.Option("--out", help="Data folder to write the release "
                                      "folder into (then --data-dir for run).")],
    seed: Annotated[int, typer.Option("--seed", help="Generator seed.")] = 0,
    scale: Annotated[float, typer.Option("--scale", help="Share of the users and ratings "
                                         "(0 < scale <= 1).")] = 1.0,
    force: Annotated[bool, typer.Option("--force", help="Replace a folder embedlens "
                                        "wrote there before.")] = False,
) -> None:
    """Write a planted synthetic log shaped like a MovieLens release, in that release's own
    files, so `embedlens run --dataset SHAPE --data-dir OUT` runs on it like on the real one
    (the real large releases cannot be redistributed)."""
    from embedlens.core.errors import DataError, unknown_name
    from embedlens.data.registry import get_variant
    from embedlens.data.synthetic import SHAPES, synthetic_movielens, write_movielens_folder
    from embedlens.io.folders import claim, preflight

    if shape not in SHAPES:
        raise unknown_name("synthetic shape", shape, list(SHAPES))
    if not 0 < scale <= 1:
        raise DataError(f"--scale must be in (0, 1], got {scale}.")
    variant = get_variant(shape)
    target = Path(out) / variant.folder
    preflight(target, force=force, kind="synthetic")  # refuse the folder before generating
    ds = synthetic_movielens(shape, seed=seed, scale=scale)
    with claim(target, "synthetic", force=force) as folder:
        write_movielens_folder(ds, folder.path, variant.layout)
    console.print(_t(f"{target}: {ds.n_interactions:,} ratings, "
                     f"{ds.n_users:,} users, {ds.n_items:,} movies (seed {seed})"))


@app.command()
def methods(
    name: Annotated[str | None, typer.Argument(help="A method: list its parameters.")] = None,
) -> None:
    """List the methods and baselines, or one method's parameters (type, default, allowed
    values, meaning, and how `tune` searches it)."""
    from embedlens.methods.registry import entries, get_method

    if name is None:
        table = Table(title="Methods (embedlens methods NAME lists a method's parameters)")
        for col in ("name", "role", "what it is", "from"):
            table.add_column(col)
        for key, entry in entries().items():
            cls = get_method(key)
            paragraph = " ".join((cls.__doc__ or "").strip().split("\n\n")[0].split())
            doc = paragraph.split(". ")[0].rstrip(".") + "."
            table.add_row(_t(key), entry.role, _t(doc), _t(entry.source))
        console.print(table)
        return
    table = Table(title=_t(f"{name}: parameters (-p key=value, or [params.{name}] in a "
                           "config)"))
    for col in ("name", "type", "default", "allowed", "meaning", "tuned"):
        table.add_column(col)
    for row in get_method(name).Params.describe():
        table.add_row(*(_t(row[c]) for c in ("name", "type", "default", "constraint", "doc",
                                              "searched")))
    console.print(table)


ProtocolOpt = Annotated[
    str | None,
    typer.Option("--protocol", help="global-time-0.2, random-0.2 or user-time-0.2."),
]


def parse_params(items: list[str] | None) -> dict[str, Any]:
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


def _metrics_table(result: Any, title: str) -> Table:
    """An :class:`~embedlens.evaluation.EvalResult` as a table of metric, value and CI."""
    report = result.to_dict()
    table = Table(title=_t(title))
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
    table = Table(title=_t(title))
    for col in ("id", "title", "genres", "score"):
        table.add_column(col)
    for row in neighbours.iter_rows(named=True):
        genres = "|".join(row.get("genres") or [])
        table.add_row(_t(row["id"]), _t(row.get("title")), _t(genres), f"{row['score']:.3f}")
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
    columns: ColumnsOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a run embedlens wrote in "
                                        "OUT.")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Finish an interrupted run in OUT "
                                         "(its own config unless --config is given).")]
    = False,
    tune: Annotated[int | None, typer.Option("--tune", min=1, help="Tune every method and "
                                             "baseline first: N trials each, on a validation "
                                             "split cut from train.")] = None,
    tune_timeout: Annotated[float | None, typer.Option(
        "--tune-timeout", min=1, help="Or: seconds of tuning per method.")] = None,
    no_preset: Annotated[bool, typer.Option("--no-preset", help="Plain defaults, not the "
                                            "tuned preset shipped for the dataset and "
                                            "protocol.")] = False,
    seeds: Annotated[int | None, typer.Option("--seeds", min=1, help="Train each seeded "
                                              "method N times (seed, seed+1, ...); rank by "
                                              "the mean, with a CI over seeds.")] = None,
) -> None:
    """Train every method and baseline on one split; write the leaderboard and report.html."""
    from dataclasses import replace

    from embedlens.app.config import RunConfig
    from embedlens.app.pipeline import run_all

    if config:
        base = RunConfig.from_toml(config)
    elif resume and (out / "config.toml").is_file():
        base = RunConfig.from_toml(out / "config.toml")
    else:
        base = RunConfig()
    given: dict[str, Any] = {
        "dataset": dataset, "protocol": protocol, "methods": methods, "baselines": baselines,
        "seed": seed, "k": k, "data_dir": str(data_dir) if data_dir else None,
        "columns": _columns(columns), "tune_trials": tune, "tune_timeout": tune_timeout,
        "seeds": seeds, "preset": False if no_preset else None,
    }
    cfg = replace(base, **{key: v for key, v in given.items() if v is not None})
    result = run_all(cfg, out, force=force, resume=resume)
    console.print(result.board.terminal(
        f"{cfg.dataset}, {cfg.protocol}: metrics @{cfg.k}, baselines dimmed"))
    if result.board.cold_start_only:
        console.print(_t(result.board.cold_start_note()))
    console.print(_t(f"{len(result.board.rows)} methods in {result.seconds:.0f} s → "
                     f"{out / 'report.html'}"))
    if result.failed:
        console.print(f"[bold red]Failed:[/] {escape(', '.join(result.failed))} (see "
                      "leaderboard.md)")
        raise typer.Exit(1)


@app.command()
def tune(
    method: Annotated[str, typer.Argument(help="A method or baseline, a comma list, or 'all' "
                                          "(every method ranked for warm users, so not text, and "
                                          "the default baselines).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the studies, tune.json and "
                                      "best.toml (an interrupted tune resumes there).")],
    dataset: Annotated[str, typer.Option("--dataset", help="Variant or log path.")]
    = "ml-100k",
    protocol: ProtocolOpt = None,
    data_dir: DataDirOpt = None,
    columns: ColumnsOpt = None,
    trials: Annotated[int | None, typer.Option("--trials", min=1, help="Trials per method "
                                               "(resumed ones count).")] = 20,
    timeout: Annotated[float | None, typer.Option("--timeout", min=1, help="Seconds per "
                                                  "method.")] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the sampler and of "
                                      "every trial.")] = 42,
    k: Annotated[int, typer.Option("--k", min=1, help="Cut-off of NDCG@k.")] = 10,
) -> None:
    """Search methods' parameters on a validation split cut from the protocol's train part
    (never its test part); write the best as a config for `embedlens run --config`."""
    from embedlens.app.config import parse_methods
    from embedlens.app.tune import BEST_FILE, budget_text, check_tune_folder, tune_all
    from embedlens.data import load_dataset
    from embedlens.io.folders import claim
    from embedlens.methods.registry import default_baselines, get_method
    from embedlens.prep.protocols import DEFAULT_PROTOCOL, get_protocol

    protocol = protocol or DEFAULT_PROTOCOL
    get_protocol(protocol)
    # "all": what `run --tune` tunes (a method not ranked for warm users, text, is not: the
    # tuner's objective is the warm ranking); named, any method is tuned as asked
    names = ([*default_baselines(), *(m for m in parse_methods("all")
                                      if get_method(m).warm_ranked)]
             if method.strip() == "all" else parse_methods(method))
    for name in names:
        get_method(name)
    check_tune_folder(out, dataset, protocol, seed, k)  # before the data is read
    ds = load_dataset(dataset, data_dir=str(data_dir) if data_dir else None,
                      columns=_columns(columns))
    with claim(out, "tune", resume=True):
        results = tune_all(names, ds, dataset, protocol, out, trials, timeout, seed, k,
                           str(data_dir.resolve()) if data_dir else None, _columns(columns))
    table = Table(title=_t(f"Tuned on {dataset}, {protocol} (validation cut from train; "
                           f"{budget_text(trials, timeout)})"))
    for col in ("method", f"val ndcg@{k}", "trials", "pruned", "best parameters"):
        table.add_column(col)
    for name, r in results.items():
        table.add_row(_t(name), "" if r.value is None else f"{r.value:.4f}", str(r.trials),
                      str(r.pruned), _t(", ".join(f"{p}={v}" for p, v in r.params.items())
                                        or "(nothing to tune)"))
    console.print(table)
    console.print(_t(f"embedlens run --config {out / BEST_FILE} --out RUN  runs them on test"))


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
    columns: ColumnsOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a run embedlens wrote in "
                                        "OUT.")] = False,
) -> None:
    """Fit a method on a protocol's train split and save it as a run directory."""
    from embedlens.app.train import train_run
    from embedlens.prep.protocols import DEFAULT_PROTOCOL

    info, _ = train_run(
        method, dataset, out, protocol or DEFAULT_PROTOCOL, data_dir, parse_params(param),
        force=force, columns=_columns(columns),
    )
    console.print(_t(f"Trained {info.method} on {info.dataset} ({info.protocol}) in "
                     f"{info.fit_seconds:.1f} s → {out}"))


@app.command()
def evaluate(
    run: Annotated[Path, typer.Argument(help="Run directory, or a Cleora .out / word2vec file.")],
    protocol: ProtocolOpt = None,
    data_dir: DataDirOpt = None,
    dataset: Annotated[
        str | None, typer.Option("--dataset", help="Dataset (needed for an embeddings file).")
    ] = None,
    k: Annotated[int, typer.Option("--k", min=1, help="Cut-off of the metrics.")] = 10,
    method: MethodOpt = None,
    trained_on: Annotated[
        str | None, typer.Option("--trained-on", help="For a file: the protocol whose train "
                                 "part it was trained on (must be --protocol's).")] = None,
    columns: ColumnsOpt = None,
) -> None:
    """Score a run (one method's, or a method of a full run) on the protocol it was trained
    on, or a Cleora .out file; write evaluation-<protocol>.json."""
    from embedlens.app.queries import method_dir
    from embedlens.app.train import evaluate_file, evaluate_run
    from embedlens.prep.protocols import DEFAULT_PROTOCOL

    if run.is_file():
        if dataset is None:
            raise EmbedlensError(f"Evaluating the file {run.name} needs --dataset.")
        report = evaluate_file(run, dataset, protocol or DEFAULT_PROTOCOL, data_dir, k,
                               trained_on=trained_on, columns=_columns(columns))
    else:
        report = evaluate_run(method_dir(run, method, "any"), protocol, data_dir, k)
    title = f"{report['method']} on {report['protocol']} ({report['n_users']:,} users)"
    console.print(_metrics_table(report, title))


@app.command()
def similar(
    run: Annotated[Path, typer.Argument(help="Run directory (one method, or a full run).")],
    movie: Annotated[str, typer.Argument(help="Movie title (case and year optional) or id.")],
    k: Annotated[int, typer.Option("--k", help="How many neighbours.")] = 10,
    method: MethodOpt = None,
) -> None:
    """List the movies nearest to a movie in a run's embedding space."""
    from embedlens.app.queries import method_dir
    from embedlens.io.runs import load_run
    from embedlens.methods.base import ItemVectors

    info, model = load_run(method_dir(run, method, "similar"))
    if not isinstance(model, ItemVectors):
        raise EmbedlensError(f"{info.method} has no item embeddings to compare movies with.")
    items = model.item_vectors()
    key = items.resolve(movie)
    title = f"Nearest to {items.title_of(key) or key} ({info.method})"
    console.print(_neighbours_table(title, items.most_similar(key, k, metric="cosine")))


@app.command()
def coldstart(
    run: Annotated[Path, typer.Argument(help="Run directory of EGES, or a full run.")],
    genres: Annotated[str, typer.Option("--genres", help='e.g. "Action|Adventure|Sci-Fi"')] = "",
    tags: Annotated[str, typer.Option("--tags", help='e.g. "marvel,superhero"')] = "",
    year: Annotated[int | None, typer.Option("--year", help="Release year.")] = None,
    title: Annotated[str | None, typer.Option("--title", help="Title (methods that read "
                                              "text use it).")] = None,
    k: Annotated[int, typer.Option("--k", help="How many neighbours.")] = 10,
    method: MethodOpt = None,
) -> None:
    """Embed a movie nobody has rated from its side information (EGES) or its text (text);
    list its neighbours."""
    from embedlens.app.queries import method_dir
    from embedlens.io.runs import load_run
    from embedlens.methods.base import ColdStart, ItemVectors

    info, model = load_run(method_dir(run, method, "coldstart"))
    if not (isinstance(model, ColdStart) and isinstance(model, ItemVectors)):
        raise EmbedlensError(f"{info.method} cannot embed unseen movies; train eges.")
    vector = model.coldstart(
        [g for g in genres.split("|") if g], [t for t in tags.split(",") if t], year,
        title=title,
    )
    title = f"Nearest to an unseen movie (genres={genres!r}, tags={tags!r})"
    console.print(_neighbours_table(title, model.item_vectors().similar_by_vector(vector, k)))


@app.command()
def recommend(
    run: Annotated[Path, typer.Argument(help="Run directory (one method, or a full run).")],
    user: Annotated[str, typer.Option("--user", help="User id (as in the dataset).")],
    k: Annotated[int, typer.Option("--k", help="How many movies.")] = 10,
    data_dir: DataDirOpt = None,
    method: MethodOpt = None,
) -> None:
    """Top-K movies for a user from a run (the user's train movies excluded)."""
    from embedlens.app.queries import method_dir
    from embedlens.app.train import load_train
    from embedlens.evaluation.splits import EvalSplit
    from embedlens.io.runs import load_run

    sub = method_dir(run, method, "any")
    info, model = load_run(sub)
    saved = load_train(sub)
    if saved is not None:
        train, titles = saved
        title_of = dict(zip(train.items.ids.tolist(), titles.tolist(), strict=True)) \
            if titles is not None else {}
    else:  # a run from before train.npz: split the data again
        ds = info.load_dataset(data_dir)
        train = EvalSplit.prepare(ds, info.protocol).train
        title_of = {} if ds.items is None else dict(
            zip(ds.items["item_id"].to_list(), ds.items["title"].to_list(), strict=True))
    from embedlens.core.ids import typed_int

    number = typed_int(user)
    user_id: object = user if number is None else number
    recs = model.recommend(train, [user_id], k)
    if recs.height == 0:
        raise EmbedlensError(f"Nothing to recommend to user {user}: {info.method} has no "
                             "candidate left (every movie is in the user's train history or "
                             "has no vector).")
    table = Table(title=_t(f"Top {k} for user {user} ({info.method}, {info.protocol} train)"))
    for col in ("rank", "id", "title", "score"):
        table.add_column(col)
    for row in recs.iter_rows(named=True):
        table.add_row(str(row["rank"]), _t(row["item_id"]),
                      _t(title_of.get(row["item_id"], "")), f"{row['score']:.3f}")
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
    from embedlens.app.queries import embedding_runs
    from embedlens.io.formats import export as export_embeddings
    from embedlens.io.runs import load_run
    from embedlens.methods.base import EmbeddingModel

    target = out or run / "export"
    for sub in embedding_runs(run, method):
        info, model = load_run(sub)
        if not isinstance(model, EmbeddingModel):
            raise EmbedlensError(f"{info.method} has no embeddings to export.")
        folder = target if sub == run else target / info.method
        written = export_embeddings(model.item_vectors(), fmt, folder / "items")
        if model.user_embeddings is not None:  # learned users only; others derive from items
            written += export_embeddings(model.user_embeddings, fmt, folder / "users")
        for path in written:
            console.print(_t(path))


@app.command()
def serve(
    run: Annotated[Path, typer.Argument(help="Run directory (one method, or a full run).")],
    host: Annotated[str, typer.Option("--host", help="Address to listen on (default: this "
                                      "machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    data_dir: DataDirOpt = None,
    layout: Annotated[str, typer.Option("--layout", help="Movie map: umap (needs "
                                        "embedlens[umap]), pca, or auto (umap when "
                                        "installed).")] = "auto",
    index: Annotated[str, typer.Option("--index", help="Similar-movie search: exact, hnsw "
                                       "(needs embedlens[ann]), or auto (hnsw from "
                                       "1,000,000 movies).")] = "auto",
    threads: Annotated[int | None, typer.Option("--threads", help="Queries answered at once, "
                                                "each on one core. Default: the cores, at "
                                                "most 4.")] = None,
    precompute: Annotated[bool, typer.Option(
        "--precompute", help="After start-up, compute every movie's 100 nearest movies and "
        "every user's 100 best movies for each method (cached in the run folder), so that "
        "queries for up to 100 are lookups.")] = False,
    workers: Annotated[int, typer.Option(
        "--workers", help="Server processes sharing the port, forked once the run is read "
        "(more answer more lookups at once; each loads the methods itself).")] = 1,
) -> None:
    """Serve a run over HTTP: a read-only JSON API (docs at /docs) and an explorer page at /
    (neighbours under every method, a map of the movies, users, cold start, leaderboard).
    Every method is loaded in the background once the server answers."""
    from embedlens.app.serve import RunService, served_app
    from embedlens.app.workers import check_workers, listening_socket
    from embedlens.app.workers import serve as serve_app
    from embedlens.core.progress import note

    if not 0 < port < 65536:
        raise EmbedlensError(f"--port must be 1..65535, got {port}.")
    threads = min(4, os.cpu_count() or 1) if threads is None else threads
    if not 1 <= threads <= 256:
        raise EmbedlensError(f"--threads must be 1..256, got {threads}.")
    check_workers(workers)
    service = RunService(run, data_dir, layout=layout, index=index, log=note,
                         precompute=precompute)
    sock = listening_socket(host, port)
    app = served_app(service, threads)
    console.print(f"Serving {run} at http://{host}:{port}/ (API docs at /docs)"
                  f"{f' from {workers} processes' if workers > 1 else ''}; Ctrl+C stops.")
    serve_app(app, sock, workers)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one line on stderr (``Warning: ...``), not Python's two-line format."""
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"[yellow]Warning:[/] {escape(str(message))}")


def main() -> None:
    """Entry point: run the app. Bad input ends in one line naming the problem (exit code
    2); an interruption in one line (130); an unexpected error in one line saying how to see
    its traceback (1)."""
    import warnings

    from embedlens.app.pipeline import RunInterrupted

    warnings.showwarning = _show_warning
    err = Console(stderr=True, highlight=False, soft_wrap=True)  # one line, never wrapped
    try:
        app()
    except RunInterrupted as exc:
        # the message says "Interrupted" itself, and what the run kept
        err.print(f"[bold red]{escape(str(exc))}[/]")
        sys.exit(130)
    except EmbedlensError as exc:
        if _debug:
            raise
        err.print(f"[bold red]Error:[/] {escape(str(exc))}")
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("[bold red]Interrupted.[/]")
        sys.exit(130)
    except Exception as exc:
        if _debug:
            raise
        text = " ".join(str(exc).split())[:300]
        err.print(f"[bold red]Internal error:[/] {escape(type(exc).__name__)}: {escape(text)}. "
                  "Run the command again with --debug (embedlens --debug ...) for the "
                  "traceback, and please report it.")
        sys.exit(1)
