"""Command line: ``wrec run EXPERIMENT [--quick] [--out DIR] [--seed S] [--workers N | --scheduler ADDRESS]``,
``wrec show RUN_DIR``, ``wrec list``."""

from __future__ import annotations

import contextlib
import os
import textwrap
import time
from collections.abc import Iterator
from concurrent.futures import Executor
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from wrec import sweep
from wrec.experiments import EXPERIMENTS
from wrec.store import CorruptResult, Store

app = typer.Typer(add_completion=False, no_args_is_help=True, help="wrec: the recurrent weight, measured.")


@app.command("list")
def list_experiments() -> None:
    """List the experiments that `wrec run` knows."""
    width = max(map(len, EXPERIMENTS))
    for name, module in EXPERIMENTS.items():
        summary = " ".join((module.__doc__ or "").strip().split("\n\n")[0].split())  # the first paragraph
        typer.echo(f"{name:{width}s}  {textwrap.shorten(summary, 150, placeholder=' …')}")


@app.command("run")
def run_experiment(
    experiment: Annotated[str, typer.Argument(help="Experiment name (see `wrec list`).")],
    quick: Annotated[bool, typer.Option("--quick", help="Smaller, faster version of the run.")] = False,
    out: Annotated[Path, typer.Option("--out", help="Output folder; results go to OUT/EXPERIMENT/.")] = Path("runs"),
    seed: Annotated[int | None, typer.Option("--seed", help="Root seed (default: the experiment's).")] = None,
    workers: Annotated[int | None, typer.Option(
        "--workers", min=1, help="Local worker processes, BLAS capped at one thread each (default: one per core; "
        "1 runs in this process).")] = None,
    scheduler: Annotated[str | None, typer.Option(
        "--scheduler", help="Run on an existing Dask cluster, e.g. tcp://HOST:8786 (needs the dask extra).")] = None,
) -> None:
    """Run an experiment: results are stored as they finish (a rerun resumes), then a table and figures."""
    if experiment not in EXPERIMENTS:
        raise typer.BadParameter(f"unknown experiment {experiment!r}; choose from {sorted(EXPERIMENTS)}",
                                 param_hint="EXPERIMENT")
    if workers is not None and scheduler is not None:
        raise typer.BadParameter("--workers and --scheduler are mutually exclusive", param_hint="--workers")
    module = EXPERIMENTS[experiment]
    config = module.Config.quick() if quick else module.Config()
    if seed is not None:
        config = replace(config, seed=seed)
    folder = out / experiment
    start = time.perf_counter()
    with _dask_executor(scheduler) as executor:
        results = sweep.run(module.evaluate, config.tasks(), store=Store(folder / "results"), executor=executor,
                            workers=1 if scheduler else workers or os.cpu_count() or 1, progress=True, desc=experiment)
    summary = module.table(results)
    folder.mkdir(parents=True, exist_ok=True)
    summary.to_csv(folder / "table.csv", index=False)
    import matplotlib

    matplotlib.use("Agg")  # this command's own process: figures go to files (an experiment may plot with pyplot)
    figures = module.plot(results, folder / f"{experiment}.png")
    with pd.option_context("display.width", 250, "display.max_columns", 40, "display.float_format", "{:.3f}".format):
        typer.echo(summary.to_string(index=False))
        checks = module.targets(results)  # reproduction targets: measured value, tolerance, held or not
        checks.to_csv(folder / "targets.csv", index=False)
        typer.echo(f"\nreproduction targets ({int(checks['held'].sum())} of {len(checks)} held):")
        typer.echo(checks.to_string(index=False))
        for name, frame in (module.reports(results) if hasattr(module, "reports") else {}).items():
            frame.to_csv(folder / f"{name}.csv", index=False)  # further tables of the experiment (e.g. CIs)
            typer.echo(f"\n{name}: {folder / f'{name}.csv'}")
            typer.echo(frame.to_string(index=False))
    typer.echo(f"\ntable: {folder / 'table.csv'}")
    for figure in figures:
        typer.echo(f"figure: {figure}")
    typer.echo(f"results: {folder / 'results'} ({time.perf_counter() - start:.1f} s)")


@app.command("show")
def show(
    run_dir: Annotated[Path, typer.Argument(help="A run folder (e.g. runs/ipc-profile) or its results/ folder.")],
) -> None:
    """Print the tidy table of every stored result of a run (each verified: a corrupt one is an error)."""
    root = run_dir / "results" if (run_dir / "results").is_dir() else run_dir
    try:
        table = Store(root).table()
    except CorruptResult as exc:  # never print a table that quietly lacks a task
        typer.echo(f"{exc}\n`wrec run` again sets it aside and recomputes it.", err=True)
        raise typer.Exit(1) from exc
    if table.empty:
        raise typer.BadParameter(f"no stored results (*.parquet) in {root}", param_hint="RUN_DIR")
    with pd.option_context("display.width", 160, "display.max_columns", 30, "display.max_rows", 60):
        typer.echo(table.to_string(index=False) if len(table) <= 60 else str(table))
    typer.echo(f"\n{len(table)} rows from {table['key'].nunique() if 'key' in table else '?'} tasks in {root}")


@contextlib.contextmanager
def _dask_executor(address: str | None) -> Iterator[Executor | None]:
    """A Dask executor on the cluster at ``address`` (closed afterwards), or None without an address."""
    if address is None:
        yield None
        return
    try:
        from distributed import Client
    except ImportError as exc:
        raise typer.BadParameter("--scheduler needs Dask: pip install 'wrec[dask]'", param_hint="--scheduler") from exc
    with Client(address) as client:
        yield client.get_executor()


def main() -> None:  # pragma: no cover
    app()
