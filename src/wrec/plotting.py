"""Figures (matplotlib only here; the core never imports this module). One style for every experiment.

Figures are ``matplotlib.figure.Figure`` objects made by ``subplots``, not pyplot figures: no backend is
selected and no global figure list grows, so plotting neither changes the caller's matplotlib setup nor needs a
display, and there is nothing to close. ``savefig`` renders PNG/PDF/SVG with matplotlib's own canvases.

The style (``STYLE``): constrained layout, the Okabe–Ito colour-blind-safe palette as the colour cycle (``C0``,
``C1``, ... name its colours), 7–9 pt text, widths of one (``COLUMN``) or two (``PAGE``) journal columns, legends
outside the data or in a corner the data leave free. ``save_formats`` adds vector formats to every figure saved.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import matplotlib
import numpy as np
import pandas as pd
from cycler import cycler
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogFormatterSciNotation, LogLocator, NullFormatter

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

#: Okabe & Ito's colour-blind-safe palette (blue, orange, bluish green, vermillion, reddish purple, sky blue,
#: black, yellow; yellow last: it is faint on white)
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442")
#: figure widths (inches): one journal column, two columns (a page)
COLUMN, PAGE = 3.5, 7.2

STYLE: dict[RcKeyType, Any] = {
    "figure.dpi": 150, "savefig.bbox": "tight", "savefig.pad_inches": 0.03,
    "figure.constrained_layout.use": True, "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8,
    "xtick.labelsize": 7, "ytick.labelsize": 7, "legend.fontsize": 7, "legend.title_fontsize": 7,
    "axes.spines.top": False, "axes.spines.right": False, "legend.frameon": False, "lines.linewidth": 1.2,
    "lines.markersize": 3.5, "axes.prop_cycle": cycler(color=OKABE_ITO), "image.cmap": "viridis",
    "pdf.fonttype": 42, "svg.fonttype": "none",  # text stays text in vector files (editable, searchable)
}
DEGREE_COLORS = matplotlib.colormaps["viridis"]

_FIGURE_KEYS = ("figsize", "dpi", "layout")
_FORMATS: ContextVar[tuple[str, ...]] = ContextVar("wrec_plotting_formats", default=("png",))


def style() -> AbstractContextManager:
    """The one style (``STYLE``) for the figures made and saved inside this context."""
    return matplotlib.rc_context(STYLE)


@contextmanager
def save_formats(formats: Sequence[str]) -> Iterator[tuple[str, ...]]:
    """``with save_formats(("png", "pdf", "svg")):`` every figure saved by ``figure`` inside the block is also
    written in each of ``formats`` (same path, that suffix); the figure's own path is always written. Formats are
    matplotlib's (``png``, ``pdf``, ``svg``, ``eps``, ...); an unknown one raises ``ValueError``."""
    chosen = check_formats(formats)
    token = _FORMATS.set(chosen)
    try:
        yield chosen
    finally:
        _FORMATS.reset(token)


def check_formats(formats: Sequence[str]) -> tuple[str, ...]:
    """The figure formats named (lower case, without dots, each once), checked against matplotlib's file types;
    none or an unknown one raises ``ValueError``."""
    chosen = tuple(dict.fromkeys(f.strip().lower().lstrip(".") for f in formats if f.strip()))
    known = Figure().canvas.get_supported_filetypes()
    if not chosen or any(f not in known for f in chosen):
        raise ValueError(f"formats must be some of {', '.join(sorted(known))}, got {list(formats)!r}")
    return chosen


def formats() -> tuple[str, ...]:
    """The formats figures are saved in now (``("png",)`` outside ``save_formats``)."""
    return _FORMATS.get()


def subplots(nrows: int = 1, ncols: int = 1, **kwargs: Any) -> tuple[Figure, Any]:
    """``matplotlib.pyplot.subplots`` without pyplot: a standalone ``Figure`` and its axes.

    ``figsize``, ``dpi`` and ``layout`` (default ``"constrained"``) go to the ``Figure``; every other keyword
    (``sharex``, ``sharey``, ``squeeze``, ``height_ratios``, ...) to ``Figure.subplots``.
    """
    fig = Figure(**{"layout": "constrained", **{k: kwargs.pop(k) for k in _FIGURE_KEYS if k in kwargs}})
    return fig, fig.subplots(nrows, ncols, **kwargs)


@contextmanager
def figure(path: str | Path, **kwargs: Any) -> Iterator[Figure]:
    """``with figure(path, figsize=...) as fig:`` draw on a standalone ``Figure`` (``kwargs`` go to it: ``figsize``,
    ``dpi``, ``layout``, default ``"constrained"``; axes from ``fig.subplots(...)``); on leaving the block it is
    saved to ``path`` (its folder made) in the house style (``STYLE``, active for the whole block), and in every
    other format of ``save_formats``. Nothing is saved when the block raises, and there is nothing to close
    (no pyplot)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with style():
        fig = Figure(**{"layout": "constrained", **kwargs})
        yield fig
        for ax in fig.axes:
            _tidy_log(ax)
        fig.savefig(path)
        for extra in formats():
            if path.with_suffix(f".{extra}") != path:
                fig.savefig(path.with_suffix(f".{extra}"))


def _tidy_log(ax: Any) -> None:
    """Log axes whose tick labels cannot crowd: minor ticks unlabelled, and where the view spans under two
    decades (few or no powers of ten in view), major ticks at 1, 2, 5 × 10^k (every k × 10^k under half a
    decade) labelled as plain numbers (base-10 axes only). Axes given their own locator or formatter are left
    alone."""
    for axis, (lo, hi) in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
        if axis.get_scale() != "log" or type(axis.get_major_locator()) is not LogLocator \
                or type(axis.get_major_formatter()) is not LogFormatterSciNotation:
            continue
        axis.set_minor_formatter(NullFormatter())
        lo, hi = sorted((lo, hi))
        span = np.log10(hi / lo) if lo > 0 else np.inf
        if span < 2 and getattr(axis.get_transform(), "base", 10) == 10:  # other bases keep their powers
            axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0) if span >= 0.5 else tuple(range(1, 10))))
            axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))


def legend_below(fig: Figure, handles: Sequence[Any] | None = None, labels: Sequence[str] | None = None, *,
                 ncols: int = 3, **kwargs: Any) -> Any:
    """One legend for the whole figure, below its axes (constrained layout makes room), so it covers no data.
    Without ``handles``, those of every axes, each label once."""
    if handles is None:
        found: dict[str, Any] = {}
        for ax in fig.axes:
            for h, label in zip(*ax.get_legend_handles_labels(), strict=True):
                found.setdefault(label, h)
        handles, labels = list(found.values()), list(found)
    return fig.legend(list(handles), list(labels or []), loc="outside lower center",
                      ncols=min(ncols, max(len(handles), 1)), **kwargs)


def capacity_profile(
    by_degree: pd.DataFrame,
    rank: pd.Series,
    path: str | Path,
    *,
    xlabel: str,
    title: str = "",
    reference: pd.Series | None = None,
    stacked: str = "bars",
    logx: bool = False,
) -> Path:
    """Capacity by degree (columns) against x (index), stacked as bars or areas, the state rank as a line.

    ``reference`` (optional, same index) is drawn as open markers, e.g. published totals.
    """
    path = Path(path)
    x = by_degree.index.to_numpy(dtype=float)
    width = 0.8 * (np.min(np.diff(x)) if x.size > 1 else 1.0)
    degrees = list(by_degree.columns)
    with figure(path, figsize=(COLUMN, 2.9)) as fig:
        ax = fig.subplots()
        bottom = np.zeros_like(x)
        for i, d in enumerate(degrees):
            values = by_degree[d].to_numpy(dtype=float)
            color = DEGREE_COLORS(i / max(len(degrees) - 1, 1))
            if stacked == "bars":
                ax.bar(x, values, width, bottom=bottom, color=color, label=f"degree {d}")
            else:
                ax.fill_between(x, bottom, bottom + values, color=color, label=f"degree {d}", lw=0)
            bottom += values
        ax.plot(rank.index.to_numpy(dtype=float), rank.to_numpy(dtype=float), "k-", lw=1.2, marker=".",
                label="rank r")
        if reference is not None:
            ax.plot(reference.index.to_numpy(dtype=float), reference.to_numpy(dtype=float), "o", mfc="none",
                    mec=OKABE_ITO[3], ms=5, label=reference.name or "reference")
        if logx:
            ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("capacity")
        if title:
            ax.set_title(title)
        ax.set_ylim(0, 1.08 * max(float(np.nanmax(bottom)), float(rank.max())))
        legend_below(fig)
    return path


KIND_COLORS = {"esn": OKABE_ITO[0], "leaky_esn": OKABE_ITO[2], "linear": OKABE_ITO[3], "rate": OKABE_ITO[1],
               "sign_esn": OKABE_ITO[4]}


def readout_scaling(curves: pd.DataFrame, path: str | Path) -> Path:
    """MC(L) against L, one panel per (N, g, σ): simulation mean with its range over seeds (band), the theory
    (dashed), the correlation-free baseline L·⟨single-neuron MC⟩ (dotted) and the bound MC = L (grey). One legend
    below the panels: a colour per network, a line style per curve."""
    path = Path(path)
    panels = list(curves.groupby(["n", "gain", "input_scale"]))
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    with figure(path, figsize=(COLUMN if cols == 1 else PAGE, 2.3 * rows + 0.7)) as fig:
        axes = fig.subplots(rows, cols, squeeze=False)
        for ax in axes.flat[len(panels):]:
            ax.set_visible(False)
        kinds: dict[str, str] = {}
        for ax, (key, data) in zip(axes.flat, panels, strict=False):
            n, g, sigma = cast("tuple[int, float, float]", key)  # the values of the three grouping columns
            L = np.arange(1, n + 1)
            ax.plot(L, L, color="0.6", lw=0.8, ls="-")
            for kind, c in data.groupby("kind"):
                color = kinds.setdefault(str(kind), KIND_COLORS.get(str(kind), "k"))
                ax.fill_between(c.L, c.lo, c.hi, color=color, alpha=0.2, lw=0)
                ax.plot(c.L, c["mean"], color=color, marker="o", ms=2, lw=1.0)
                ax.plot(c.L, c.theory, color=color, ls="--", lw=0.9)
                ax.plot(c.L, c.independent, color=color, ls=":", lw=0.8)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("readout neurons L")
            ax.set_ylabel("memory capacity MC(L)")
            ax.set_title(f"N = {n}, g = {g}, σ = {sigma}")
        handles = [Line2D([], [], color=c, lw=2) for c in kinds.values()]
        handles += [Line2D([], [], color="0.3", marker="o", ms=2, lw=1.0), Line2D([], [], color="0.3", ls="--"),
                    Line2D([], [], color="0.3", ls=":"), Line2D([], [], color="0.6", lw=0.8)]
        labels = [*kinds, "simulation", "theory", "L·MC₁ (no corr.)", "bound MC = L"]
        legend_below(fig, handles, labels, ncols=3, columnspacing=0.8, handlelength=1.6)
    return path


def sublinearity(points: pd.DataFrame, path: str | Path) -> Path:
    """Onset of sublinear MC, L_½/N (smallest L with MC(L) ≤ L/2), against the mean squared pairwise
    correlation ⟨r²⟩, one marker per reservoir and seed."""
    path = Path(path)
    with figure(path, figsize=(COLUMN, 2.9)) as fig:
        ax = fig.subplots()
        for kind, p in points.groupby("kind"):
            ax.scatter(p.mean_r2, p.L_half / p.n, s=12, color=KIND_COLORS.get(str(kind), "k"), label=kind, alpha=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("mean squared correlation ⟨r²⟩")
        ax.set_ylabel("L½ / N  (MC(L) ≤ L/2 from here)")
        legend_below(fig)
    return path


_MEASURE_LABELS = {
    "err_fast": ("alignment error err_Ω", "log"), "decoding_error": ("decoding error", "log"),
    "rate": ("mean rate (Hz)", "linear"), "cv_isi": ("CV of ISIs", "linear"), "fano": ("Fano factor", "linear"),
    "ei_corr": ("corr(E, −I)", "linear"),
}


def _symlog_steps(ax: Any, steps: pd.Series) -> None:
    """A symlog x axis for learning steps: linear up to the first step, a tick at 0 and at each decade."""
    positive = steps[steps > 0]
    linthresh = float(positive.min()) if len(positive) else 1.0
    ax.set_xscale("symlog", linthresh=linthresh)
    decades = np.arange(np.ceil(np.log10(linthresh)), np.floor(np.log10(max(steps.max(), 1))) + 1)
    ax.set_xticks([0, *(10.0**decades)])  # no minor decades crowding the linear part near 0
    ax.set_xlabel("learning steps")


def learning_curves(results: pd.DataFrame, measures: tuple[str, ...], path: str | Path) -> Path:
    """Measures against learning steps (one thin line per replicate, their mean thick); where a column
    ``<measure>_ideal`` exists, the ideal network is drawn dashed."""
    path = Path(path)
    shown = [m for m in measures if m in _MEASURE_LABELS]
    cols = min(3, len(shown))
    rows = -(-len(shown) // cols)
    with figure(path, figsize=(COLUMN if cols == 1 else PAGE, 2.0 * rows + 0.4)) as fig:
        axes = fig.subplots(rows, cols, squeeze=False)
        for ax in axes.flat[len(shown):]:
            ax.set_visible(False)
        for ax, name in zip(axes.flat, shown, strict=False):
            label, scale = _MEASURE_LABELS[name]
            for column, line, tag in ((name, "-", "learned"), (f"{name}_ideal", "--", "ideal network")):
                if column not in results:
                    continue
                color = "C0" if line == "-" else "C1"
                for _, rep in results.groupby("replicate"):
                    rep = rep.sort_values("step")
                    ax.plot(rep.step, rep[column], ls=line, color=color, lw=0.6, alpha=0.4)
                mean = results.groupby("step")[column].mean()
                ax.plot(mean.index, mean.to_numpy(), ls=line, color=color, lw=1.4, marker="o", ms=2.5, label=tag)
            _symlog_steps(ax, results.step)
            ax.set_yscale(scale)
            ax.set_ylabel(label)
        legend_below(fig)
    return path


def weights_before_after(before: tuple, after: tuple, path: str | Path) -> Path:
    """Ω against −FFᵀ (off-diagonal entries) before and after learning; each of ``before``/``after`` is
    (step, F (N, J), Ω (N, N)). The line is the least-squares fit Ω ≈ s(−FFᵀ) through the origin."""
    path = Path(path)
    with figure(path, figsize=(PAGE, 2.8)) as fig:
        axes = fig.subplots(1, 2)
        for ax, (step, F, fast) in zip(axes, (before, after), strict=True):
            off = ~np.eye(fast.shape[0], dtype=bool)
            target, omega = (-F @ F.T)[off], fast[off]
            s = float(target @ omega / (target @ target))
            ax.scatter(target, omega, s=4, color="C0", alpha=0.6, lw=0)
            grid = np.linspace(target.min(), target.max(), 2)
            ax.plot(grid, s * grid, color="C1", lw=1)
            ax.set_xlabel("−FFᵀ (off-diagonal)")
            ax.set_ylabel("Ω (off-diagonal)")
            when = f"after {step:,} learning steps" if step else "before learning"
            ax.set_title(f"{when}: fit (line) Ω = {s:.3g}·(−FFᵀ)")  # in the title: no legend over the cloud
    return path


def spike_raster(times: np.ndarray, neurons: np.ndarray, x: np.ndarray, xhat: np.ndarray, path: str | Path,
                 *, dt: float = 1e-3, title: str = "") -> Path:
    """A spike raster above the signal x (thin) and its readout x̂ (dashed), one colour per dimension.

    Shape: times, neurons (S,), spike times (s) and indices; x, xhat (T, J) sampled every ``dt`` seconds."""
    path = Path(path)
    t = np.arange(x.shape[0]) * dt
    with figure(path, figsize=(PAGE, 3.6)) as fig:
        (top, bottom) = fig.subplots(2, 1, sharex=True, height_ratios=(1, 1.2))
        top.scatter(times, neurons, s=2, marker="|", color="k", lw=0.6)
        top.set_ylabel("neuron")
        top.set_title(title)
        for d in range(x.shape[1]):
            bottom.plot(t, x[:, d], color=f"C{d}", lw=0.8, alpha=0.6, label=f"x{d + 1}")
            bottom.plot(t, xhat[:, d], color=f"C{d}", lw=1.4, ls="--", label=f"x̂{d + 1}")
        bottom.set_xlabel("time (s)")
        bottom.set_ylabel("signal and readout")
        bottom.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))  # outside, right of the traces
    return path
