"""Command line: ``wrec run EXPERIMENT [--quick] [--out DIR] [--seed S]``, ``wrec list``."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from wrec import sweep
from wrec.experiments import EXPERIMENTS
from wrec.store import Store

app = typer.Typer(add_completion=False, no_args_is_help=True, help="wrec: the recurrent weight, measured.")


@app.command("list")
def list_experiments() -> None:
    """List the experiments that `wrec run` knows."""
    for name, module in EXPERIMENTS.items():
        typer.echo(f"{name:20s} {(module.__doc__ or '').strip().splitlines()[0]}")


@app.command("run")
def run_experiment(
    experiment: Annotated[str, typer.Argument(help="Experiment name (see `wrec list`).")],
    quick: Annotated[bool, typer.Option("--quick", help="Smaller, faster version of the run.")] = False,
    out: Annotated[Path, typer.Option("--out", help="Output folder; results go to OUT/EXPERIMENT/.")] = Path("runs"),
    seed: Annotated[int | None, typer.Option("--seed", help="Root seed (default: the experiment's).")] = None,
) -> None:
    """Run an experiment: results are stored as they finish (a rerun resumes), then a table and a figure."""
    if experiment not in EXPERIMENTS:
        raise typer.BadParameter(f"unknown experiment {experiment!r}; choose from {sorted(EXPERIMENTS)}",
                                 param_hint="EXPERIMENT")
    module = EXPERIMENTS[experiment]
    config = module.Config.quick() if quick else module.Config()
    if seed is not None:
        config = replace(config, seed=seed)
    folder = out / experiment
    start = time.perf_counter()
    results = sweep.run(module.evaluate, config.tasks(), store=Store(folder / "results"), progress=True,
                        desc=experiment)
    summary = module.table(results)
    folder.mkdir(parents=True, exist_ok=True)
    summary.to_csv(folder / "table.csv", index=False)
    figure = module.plot(results, folder / f"{experiment}.png")
    with pd.option_context("display.width", 160, "display.max_columns", 30, "display.float_format", "{:.3f}".format):
        typer.echo(summary.to_string(index=False))
    typer.echo(f"\ntable: {folder / 'table.csv'}\nfigure: {figure}\nresults: {folder / 'results'} "
               f"({time.perf_counter() - start:.1f} s)")


def main() -> None:  # pragma: no cover
    app()
