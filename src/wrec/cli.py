"""Command line: ``wrec run EXPERIMENT [--quick] [--config FILE] [--set FIELD=VALUE ...] [--out DIR] [--seed S]
[--workers N | --scheduler ADDRESS] [--format png,pdf,svg] [--dry-run]``, ``wrec config EXPERIMENT``,
``wrec show RUN_DIR``, ``wrec report [RUNS_DIR]``, ``wrec list``, ``wrec --version``. Every error is one line on
stderr and a non-zero exit status."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import tempfile
import textwrap
import time
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any

import pandas as pd
import typer
from typer.core import TyperGroup

from wrec import experiments, runconfig, sweep
from wrec.checkpoint import write_atomically
from wrec.store import CorruptResult, CorruptResultWarning, Store

# click's exceptions, or typer's own copy of them (typer >= 0.20 vendors click)
_errors: Any = sys.modules[typer.BadParameter.__module__]
_NO_ARGS_IS_HELP: Any = getattr(_errors, "NoArgsIsHelpError", ())  # (click >= 8.2)


class _OneLineErrors(TyperGroup):
    """The ``wrec`` command group: a usage error is printed as one line (``Error: wrec run: ...``) on stderr instead
    of click's usage block or typer's box, with click's exit status (2 for usage errors)."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        standalone = kwargs.get("standalone_mode", True)
        kwargs["standalone_mode"] = False
        if not standalone:
            return super().main(*args, **kwargs)
        try:
            status = super().main(*args, **kwargs)
        except _NO_ARGS_IS_HELP as exc:  # `wrec` alone: the help, as click prints it
            exc.show()
            sys.exit(exc.exit_code)
        except _errors.ClickException as exc:
            where = f"{exc.ctx.command_path}: " if getattr(exc, "ctx", None) is not None else ""
            typer.echo(f"Error: {where}{' '.join(exc.format_message().split())}", err=True)
            sys.exit(exc.exit_code)
        except typer.Abort:
            typer.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(status if isinstance(status, int) else 0)


app = typer.Typer(cls=_OneLineErrors, add_completion=False, no_args_is_help=True,
                  help="wrec: the recurrent weight, measured.")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"wrec {runconfig.versions()['wrec']}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print wrec's version and exit.")] = False,
) -> None:
    """wrec: the recurrent weight, measured."""


# The options that choose a config, shared by `run` and `config`.
Experiment = Annotated[str, typer.Argument(help="Experiment name (see `wrec list`).")]
Quick = Annotated[bool, typer.Option("--quick", help="Smaller, faster version of the run (the base config).")]
ConfigFile = Annotated[Path | None, typer.Option(
    "--config", help="A TOML file of config fields, all or some (e.g. from `wrec config`, or a run's run.toml); "
    "applied to the base config.")]
Settings = Annotated[list[str] | None, typer.Option(
    "--set", metavar="FIELD=VALUE", help="Set a config field, after --config (repeatable; tuples as sizes=200,400 "
    "or a TOML array; see `wrec config EXPERIMENT` for the fields).")]
Seed = Annotated[int | None, typer.Option("--seed", min=0, help="Root seed, >= 0 (default: the experiment's).")]


@app.command("list")
def list_experiments() -> None:
    """List the experiments that `wrec run` knows."""
    width = max(map(len, experiments.EXPERIMENTS))
    for name, module in experiments.EXPERIMENTS.items():
        summary = " ".join((module.__doc__ or "").strip().split("\n\n")[0].split())  # the first paragraph
        typer.echo(f"{name:{width}s}  {textwrap.shorten(summary, 150, placeholder=' …')}")


@app.command("config")
def show_config(experiment: Experiment, quick: Quick = False, config_file: ConfigFile = None,
                settings: Settings = None, seed: Seed = None) -> None:
    """Print the effective config as TOML: save it, edit it and pass it back with `wrec run EXPERIMENT --config`."""
    module = _experiment(experiment)
    config = _config(module, experiment, quick, config_file, settings, seed)
    typer.echo(runconfig.dumps(runconfig.config_fields(config), header=_config_header(experiment, quick)), nl=False)


def _config_header(experiment: str, quick: bool) -> str:
    return (f"The config of `wrec run {experiment}{' --quick' if quick else ''}`: edit, then\n"
            f"wrec run {experiment} --config THIS_FILE")


@app.command("run")
def run_experiment(
    experiment: Experiment,
    quick: Quick = False,
    config_file: ConfigFile = None,
    settings: Settings = None,
    out: Annotated[Path, typer.Option("--out", help="Output folder; results go to OUT/EXPERIMENT/.")] = Path("runs"),
    seed: Seed = None,
    workers: Annotated[int | None, typer.Option(
        "--workers", min=1, help="Local worker processes, BLAS capped at one thread each (default: one per core; "
        "1 runs in this process).")] = None,
    scheduler: Annotated[str | None, typer.Option(
        "--scheduler", help="Run on an existing Dask cluster, e.g. tcp://HOST:8786 (needs the dask extra).")] = None,
    figure_format: Annotated[str, typer.Option(
        "--format", help="Figure formats, comma-separated (png, pdf, svg, eps, ...): each figure in each.")] = "png",
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Print the effective config and how many tasks there are and are stored; run nothing.")]
        = False,
) -> None:
    """Run an experiment: results are stored as they finish (a rerun resumes), then a table and figures.
    OUT/EXPERIMENT/run.toml records the config, the versions and the command."""
    started, clock = runconfig.now(), time.perf_counter()
    module = _experiment(experiment)
    if workers is not None and scheduler is not None:
        raise typer.BadParameter("--workers and --scheduler are mutually exclusive", param_hint="--workers")
    formats = _figure_formats(figure_format)
    config = _config(module, experiment, quick, config_file, settings, seed)
    tasks = config.tasks()
    folder = out / experiment
    if dry_run:
        _dry_run(experiment, quick, config, tasks, folder)
        return
    with _dask_executor(scheduler) as executor, _one_line_warnings():  # (a bad scheduler fails here, first)
        _check_writable(out, folder)
        record = folder / "run.toml"
        _write_record(record, runconfig.run_record(experiment, config, started=started))
        results = sweep.run(module.evaluate, tasks, store=Store(folder / "results"), executor=executor,
                            workers=1 if scheduler else workers or os.cpu_count() or 1, progress=True, desc=experiment)
    from wrec import plotting

    with plotting.save_formats(formats):
        _report(module, experiment, results, folder)
    _write_record(record, runconfig.run_record(experiment, config, started=started, finished=runconfig.now(),
                                               counts={k: results.attrs[k] for k in COUNTS}))
    typer.echo(f"results: {folder / 'results'} ({time.perf_counter() - clock:.1f} s; tasks: "
               f"{results.attrs['tasks_computed']} computed, {results.attrs['tasks_reused']} reused)\nrecord: {record}")


@contextlib.contextmanager
def _one_line_warnings() -> Iterator[None]:
    """Show each warning as one line, ``Warning: MESSAGE``, on stderr (not Python's file:line and source line); a
    result set aside to be recomputed is always shown (never turned into an error)."""

    def show(message: Warning | str, category: type[Warning], *args: object, **kwargs: object) -> None:
        typer.echo(f"Warning: {' '.join(str(message).split())}", err=True)

    with warnings.catch_warnings():
        warnings.simplefilter("always", CorruptResultWarning)
        warnings.showwarning = show
        yield


COUNTS = ("tasks", "tasks_computed", "tasks_reused")  # what sweep.run's table says it did (its attrs)


def _experiment(name: str) -> ModuleType:
    # (experiments.EXPERIMENTS imports every experiment: read it only here, not when this module is imported, as
    # each spawned pool worker does when it re-imports the `wrec` script)
    known = experiments.EXPERIMENTS
    if name not in known:
        raise typer.BadParameter(f"unknown experiment {name!r}; choose from {', '.join(sorted(known))}",
                                 param_hint="EXPERIMENT")
    return known[name]


def _config(module: ModuleType, experiment: str, quick: bool, config_file: Path | None,
            settings: Sequence[str] | None, seed: int | None) -> Any:
    """The base config (--quick or not), then the --config file's fields, --seed, and --set, in that order."""
    config = module.Config.quick() if quick else module.Config()
    if config_file is not None:
        try:
            config = runconfig.load(config, config_file, experiment=experiment)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--config") from None
    if seed is not None:
        config = runconfig.override(config, {"seed": seed})
    try:
        config = runconfig.override(config, dict(runconfig.parse_setting(s) for s in settings or ()))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--set") from None
    if getattr(config, "seed", 0) < 0:  # (a task's streams are SeedSequence(seed, ...): it would fail mid-run)
        raise typer.BadParameter(f"seed must be >= 0, got {config.seed}", param_hint="seed")
    return config


def _dry_run(experiment: str, quick: bool, config: Any, tasks: Sequence[Any], folder: Path) -> None:
    """Print the config as TOML, then (as a comment) the tasks: how many, how many stored, how many to compute."""
    store = folder / "results"
    total, stored = sweep.count_stored(tasks, Store(store))
    typer.echo(runconfig.dumps(runconfig.config_fields(config), header=_config_header(experiment, quick)))
    typer.echo(f"# {total} tasks: {stored} already stored in {store}, {total - stored} to compute (dry run: "
               "nothing was run)")


def _check_writable(out: Path, folder: Path) -> None:
    """Fail before any work when the run's folder cannot be made or written to."""
    for path in (out, folder, folder / "results"):
        if path.exists() and not path.is_dir():
            raise typer.BadParameter(f"{path} exists and is not a folder", param_hint="--out")
    try:
        (folder / "results").mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder / "results"):
            pass
    except OSError as exc:
        raise typer.BadParameter(f"cannot write to {folder / 'results'}: {exc.strerror or exc}",
                                 param_hint="--out") from None


def _write_record(path: Path, record: dict) -> None:
    header = "The record of the last `wrec run` into this folder; `wrec run EXPERIMENT --config` reads it back."
    text = runconfig.dumps(record, header=header)
    write_atomically(path, lambda fh: fh.write(text.encode()))


def _report(module: ModuleType, experiment: str, results: pd.DataFrame, folder: Path) -> None:
    """Write and print the summary table, the reproduction targets, further tables and the figures."""
    summary = module.table(results)
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


def _figure_formats(value: str) -> tuple[str, ...]:
    """``--format``'s comma-separated list, checked against matplotlib's file types before any work."""
    from wrec import plotting

    try:
        return plotting.check_formats(value.split(","))
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r}: {exc}", param_hint="--format") from exc


@app.command("report")
def report(
    runs_dir: Annotated[Path, typer.Argument(help="A folder of runs (as `wrec run --out` writes).")] = Path("runs"),
    out: Annotated[Path | None, typer.Option("--out", help="The HTML page (default RUNS_DIR/report.html); the "
                                                           "Markdown version is written beside it.")] = None,
) -> None:
    """One self-contained HTML page (figures embedded) and a Markdown version of every run in RUNS_DIR: config,
    tables, targets held / not held, figures and provenance."""
    from wrec import report as reports

    if not runs_dir.is_dir():
        raise typer.BadParameter(f"{runs_dir} is not a folder", param_hint="RUNS_DIR")
    try:
        html, markdown = reports.write(runs_dir, out)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="RUNS_DIR") from exc
    typer.echo(f"report: {html}\nmarkdown: {markdown}")


@app.command("show")
def show(
    run_dir: Annotated[Path, typer.Argument(help="A run folder (e.g. runs/ipc-profile) or its results/ folder.")],
) -> None:
    """Print the tidy table of every stored result of a run (each verified: a corrupt one is an error)."""
    if not run_dir.is_dir():
        raise typer.BadParameter(f"{run_dir} is not a folder", param_hint="RUN_DIR")
    root = run_dir / "results" if (run_dir / "results").is_dir() else run_dir
    try:
        table = Store(root).table()
    except CorruptResult as exc:  # never print a table that quietly lacks a task
        typer.echo(f"Error: {exc}; `wrec run` again sets it aside and recomputes it.", err=True)
        raise typer.Exit(1) from exc
    if table.empty:
        raise typer.BadParameter(f"no stored results (*.parquet) in {root}", param_hint="RUN_DIR")
    with pd.option_context("display.width", 160, "display.max_columns", 30, "display.max_rows", 60):
        typer.echo(table.to_string(index=False) if len(table) <= 60 else str(table))
    typer.echo(f"\n{len(table)} rows from {table['key'].nunique() if 'key' in table else '?'} tasks in {root}")


SCHEDULER_TIMEOUT = 5.0  # seconds to reach a --scheduler before giving up


@contextlib.contextmanager
def _dask_executor(address: str | None) -> Iterator[Executor | None]:
    """A Dask executor on the cluster at ``address`` (closed afterwards), or None without an address. The address
    is checked, and the scheduler reached, before anything runs."""
    if address is None:
        yield None
        return
    try:
        from distributed import Client
    except ImportError as exc:
        raise typer.BadParameter("--scheduler needs Dask: pip install 'wrec[dask]'", param_hint="--scheduler") from exc
    _check_scheduler(address)
    try:
        client = Client(address, timeout=SCHEDULER_TIMEOUT, set_as_default=False)
    except Exception as exc:  # (distributed raises OSError, TimeoutError, ValueError, ... for a bad scheduler)
        raise typer.BadParameter(f"cannot connect to the scheduler at {address}: {' '.join(str(exc).split())}",
                                 param_hint="--scheduler") from None
    with client:
        yield client.get_executor()


def _check_scheduler(address: str) -> None:
    """A one-line error for a malformed address, or a TCP scheduler that does not accept a connection within
    ``SCHEDULER_TIMEOUT`` (Dask's own client would retry for 30 s, then print pages of traceback)."""
    from distributed.comm.addressing import parse_address, parse_host_port
    from distributed.comm.registry import backends

    try:
        scheme, location = parse_address(address)
        if scheme not in backends:
            raise ValueError(f"unknown protocol {scheme!r}; known: {', '.join(backends)}")
        host, port = parse_host_port(location) if scheme in ("tcp", "tls") else (None, None)
    except (ValueError, TypeError) as exc:
        raise typer.BadParameter(f"malformed scheduler address {address!r} ({exc}); expected e.g. tcp://HOST:8786",
                                 param_hint="--scheduler") from None
    if host is None:
        return
    try:
        socket.create_connection((host, port), timeout=SCHEDULER_TIMEOUT).close()  # (refused: at once)
        if scheme == "tcp":  # something listens there: is it a Dask scheduler? (one that never answers hangs Client)
            asyncio.run(asyncio.wait_for(_handshake(address), SCHEDULER_TIMEOUT))
    except (OSError, asyncio.TimeoutError) as exc:  # (TimeoutError is an OSError, without a message)
        reason = getattr(exc, "strerror", None) or " ".join(str(exc).split()) or \
            f"no Dask answer within {SCHEDULER_TIMEOUT:g} s"
        raise typer.BadParameter(f"cannot reach the scheduler at {address}: {reason}",
                                 param_hint="--scheduler") from None


async def _handshake(address: str) -> None:
    """Connect to ``address`` with Dask's protocol (its handshake included), then close."""
    from distributed.comm import connect

    comm = await connect(address, timeout=SCHEDULER_TIMEOUT)
    await comm.close()


def main() -> None:  # pragma: no cover
    """The ``wrec`` console script."""
    app()
