"""One report of every run in a folder: a self-contained HTML page (figures embedded, no network needed) and a
Markdown version, made with Jinja2 templates and pandas' table rendering.

A run folder is ``RUNS_DIR/EXPERIMENT/`` as ``wrec run`` leaves it: ``table.csv`` (the summary), ``targets.csv``
(the reproduction targets, with a ``held`` column), further ``*.csv`` tables, the figures ``*.png`` (and their
``.pdf``/``.svg`` where written), ``results/`` (the stored tasks) and ``run.toml`` (config and provenance; older
runs have none).
"""

from __future__ import annotations

import base64
import datetime
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from wrec import runconfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["Run", "find_runs", "load_run", "write"]

SUMMARY, TARGETS, RECORD = "table.csv", "targets.csv", "run.toml"
_MARKS = {True: "✓ held", False: "✗ not held"}


@dataclass(frozen=True)
class Run:
    """One run folder, read: ``record`` is ``run.toml`` (empty without one), ``tables`` the further CSVs by name,
    ``figures`` the PNGs (the experiment's main figure first), ``formats`` the other files of each figure."""

    folder: Path
    experiment: str
    record: Mapping[str, Any]
    summary: pd.DataFrame | None
    targets: pd.DataFrame | None
    tables: Mapping[str, pd.DataFrame]
    figures: Sequence[Path]
    formats: Mapping[str, Sequence[Path]] = field(default_factory=dict)

    @property
    def held(self) -> tuple[int, int]:
        """(targets held, targets) from ``targets.csv``; (0, 0) without one."""
        if self.targets is None or "held" not in self.targets:
            return 0, 0
        return int(_held(self.targets.held).eq(True).sum()), len(self.targets)

    @property
    def tasks(self) -> int:
        """The number of tasks: from ``run.toml``, else the stored results (``results/*.parquet``)."""
        if "tasks" in self.record:
            return int(self.record["tasks"])
        return len(list((self.folder / "results").glob("*.parquet")))

    @property
    def when(self) -> str:
        """When the run finished (or started, if it did not finish), UTC; else when its files were written."""
        for key in ("finished", "started"):
            if key in self.record:
                return str(self.record[key]).replace("T", " ").replace("Z", " UTC")
        newest = max((p.stat().st_mtime for p in self.folder.iterdir() if p.is_file()), default=0.0)
        return datetime.datetime.fromtimestamp(newest, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")

    @property
    def quick(self) -> bool:
        """Whether ``run.toml``'s command line has ``--quick``."""
        return "--quick" in list(self.record.get("command", []))


def _held(column: pd.Series) -> pd.Series:
    """``held`` as True / False / None (a target reported, not gated); CSVs give bools or their strings."""
    return column.map(lambda v: {"true": True, "false": False}.get(str(v).strip().lower()))


def find_runs(runs_dir: str | Path) -> list[Path]:
    """The run folders in ``runs_dir`` (its subfolders with a ``table.csv``, ``targets.csv`` or ``run.toml``),
    sorted by name; ``runs_dir`` itself when it is one."""
    root = Path(runs_dir)
    if not root.is_dir():
        raise ValueError(f"runs_dir must be a folder of run folders, got {str(root)!r} (not a folder)")

    def is_run(p: Path) -> bool:
        return any((p / name).is_file() for name in (SUMMARY, TARGETS, RECORD))

    return [root] if is_run(root) else sorted(p for p in root.iterdir() if p.is_dir() and is_run(p))


def load_run(folder: str | Path) -> Run:
    """Read one run folder (see ``Run``)."""
    folder = Path(folder)
    record: dict[str, Any] = {}
    if (folder / RECORD).is_file():
        record = tomllib.loads((folder / RECORD).read_text(encoding="utf-8"))
    experiment = str(record.get("experiment", folder.name))
    csvs = {p.stem: _read_csv(p) for p in sorted(folder.glob("*.csv"))}
    summary, targets = csvs.pop(Path(SUMMARY).stem, None), csvs.pop(Path(TARGETS).stem, None)
    figures = sorted(folder.glob("*.png"), key=lambda p: (p.stem != experiment, p.name))
    formats = {p.name: sorted(q for q in folder.glob(p.stem + ".*") if q.suffix in (".pdf", ".svg"))
               for p in figures}
    return Run(folder, experiment, record, summary, targets, csvs, figures, formats)


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("wrec", "templates"),
                             autoescape=jinja2.select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True,
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters["md_cell"] = _md_cell
    return env


def _number(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def _md_cell(value: object) -> str:
    """A value as one Markdown table cell (pipes escaped, no line breaks)."""
    text = "" if isinstance(value, float) and pd.isna(value) else _number(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _targets_marked(targets: pd.DataFrame) -> pd.DataFrame:
    """``targets`` with ``held`` as ✓ held / ✗ not held / reported."""
    out = targets.copy()
    out["held"] = [_MARKS.get(v, "reported") if v is not None else "reported" for v in _held(targets.held)]
    return out


def _html_table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, na_rep="", float_format=_number, border=0, classes="table", escape=True)


def _html_targets(targets: pd.DataFrame) -> str:
    if "held" not in targets:
        return _html_table(targets)
    held = _held(targets.held)
    css = {True: "background-color: #e3f1e6", False: "background-color: #fbe3e0"}
    styled = (_targets_marked(targets).style.hide(axis="index").format(_number, na_rep="", escape="html")
              .format_index(escape="html", axis=1)
              .apply(lambda row: [css.get(held.iloc[row.name], "")] * len(row), axis=1)
              .set_table_attributes('class="table targets"'))
    return styled.to_html()


def _png_data(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")


def _context(runs: list[Run], runs_dir: Path, page: Path) -> dict[str, Any]:
    """What both templates render: per run its tables (HTML and Markdown rows), figures and provenance."""
    items = []
    for i, run in enumerate(runs):
        summary = run.summary if run.summary is not None else pd.DataFrame()
        targets = _targets_marked(run.targets) if run.targets is not None and "held" in run.targets else run.targets
        items.append({
            "id": f"run-{i + 1}", "run": run, "name": os.path.relpath(run.folder, runs_dir),
            "config": runconfig.dumps(run.record.get("config", {})) if run.record.get("config") else "",
            "provenance": {k: v for k, v in run.record.items() if k != "config"},
            "summary_html": _html_table(summary) if run.summary is not None else "",
            "targets_html": _html_targets(run.targets) if run.targets is not None else "",
            "tables_html": {k: _html_table(v) for k, v in run.tables.items()},
            "summary": run.summary, "targets": targets, "tables": run.tables,
            "figures": [{"name": p.name, "data": _png_data(p), "link": Path(os.path.relpath(p, page.parent)).as_posix(),
                         "formats": [Path(os.path.relpath(q, page.parent)).as_posix() for q in run.formats[p.name]]}
                        for p in run.figures],
        })
    return {"runs": items, "runs_dir": str(runs_dir), "generated": datetime.datetime.now(datetime.timezone.utc)
            .strftime("%Y-%m-%d %H:%M:%S UTC")}


def write(runs_dir: str | Path = "runs", out: str | Path | None = None) -> tuple[Path, Path]:
    """Write the report of every run in ``runs_dir``: ``out`` (default ``RUNS_DIR/report.html``), one
    self-contained HTML page, and the Markdown version beside it (``.md``; its figures link to the PNGs).
    Returns (HTML path, Markdown path). Raises ``ValueError`` where ``runs_dir`` holds no run folder."""
    runs_dir = Path(runs_dir)
    folders = find_runs(runs_dir)
    if not folders:
        raise ValueError(f"runs_dir {str(runs_dir)!r} holds no run folder (a folder with table.csv, targets.csv "
                         "or run.toml, as `wrec run` writes)")
    html = Path(out) if out is not None else runs_dir / "report.html"
    markdown = html.with_suffix(".md")
    html.parent.mkdir(parents=True, exist_ok=True)
    env = _environment()
    context = _context([load_run(f) for f in folders], runs_dir, html)
    html.write_text(env.get_template("report.html.j2").render(context), encoding="utf-8")
    markdown.write_text(env.get_template("report.md.j2").render(context), encoding="utf-8")
    return html, markdown
