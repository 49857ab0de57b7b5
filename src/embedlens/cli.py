"""The ``embedlens`` command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
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


def main() -> None:
    """Entry point: run the app, turning expected errors into one clear line (exit code 2)."""
    try:
        app()
    except EmbedlensError as exc:
        Console(stderr=True).print(f"[bold red]Error:[/] {exc}", highlight=False)
        sys.exit(2)
