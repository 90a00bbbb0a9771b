"""Figures (matplotlib only here; the core never imports this module). One style for every experiment.

Figures are ``matplotlib.figure.Figure`` objects made by :func:`subplots`, not pyplot figures: no backend is
selected and no global figure list grows, so plotting neither changes the caller's matplotlib setup nor needs a
display, and there is nothing to close. ``savefig`` renders PNG/PDF/SVG with matplotlib's own canvases.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

STYLE: dict[RcKeyType, Any] = {
    "figure.dpi": 150, "savefig.bbox": "tight", "font.size": 9, "axes.spines.top": False,
    "axes.spines.right": False, "legend.frameon": False,
}
DEGREE_COLORS = matplotlib.colormaps["viridis"]

_FIGURE_KEYS = ("figsize", "dpi", "layout")


def style() -> AbstractContextManager:
    """The one style (``STYLE``) for the figures made and saved inside this context."""
    return matplotlib.rc_context(STYLE)


def subplots(nrows: int = 1, ncols: int = 1, **kwargs: Any) -> tuple[Figure, Any]:
    """``matplotlib.pyplot.subplots`` without pyplot: a standalone ``Figure`` and its axes.

    ``figsize``, ``dpi`` and ``layout`` go to the ``Figure``; every other keyword (``sharex``, ``sharey``,
    ``squeeze``, ``height_ratios``, ...) to ``Figure.subplots``.
    """
    fig = Figure(**{k: kwargs.pop(k) for k in _FIGURE_KEYS if k in kwargs})
    return fig, fig.subplots(nrows, ncols, **kwargs)


@contextmanager
def figure(path: str | Path, **kwargs: Any) -> Iterator[Figure]:
    """``with figure(path, figsize=...) as fig:`` draw on a standalone ``Figure`` (``kwargs`` go to it: ``figsize``,
    ``dpi``, ``layout``; axes from ``fig.subplots(...)``); on leaving the block it is saved to ``path`` (its folder
    made) in the house style (``STYLE``, active for the whole block). Nothing is saved when the block raises, and
    there is nothing to close (no pyplot)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with style():
        fig = Figure(**kwargs)
        yield fig
        fig.savefig(path)


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
    with figure(path, figsize=(6.0, 3.4)) as fig:
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
                    mec="crimson", ms=6, label=reference.name or "reference")
        if logx:
            ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("capacity")
        if title:
            ax.set_title(title)
        ax.set_ylim(0, 1.08 * max(float(np.nanmax(bottom)), float(rank.max())))
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7)
    return path


KIND_COLORS = {"esn": "tab:blue", "leaky_esn": "tab:green", "linear": "tab:gray", "rate": "tab:orange",
               "sign_esn": "tab:purple"}


def readout_scaling(curves: pd.DataFrame, path: str | Path) -> Path:
    """MC(L) against L, one panel per (N, g, σ): simulation mean with its range over seeds (band), the theory
    (dashed), the correlation-free baseline L·⟨single-neuron MC⟩ (dotted) and the bound MC = L."""
    path = Path(path)
    panels = list(curves.groupby(["n", "gain", "input_scale"]))
    cols = min(4, len(panels))
    rows = -(-len(panels) // cols)
    with figure(path, figsize=(3.4 * cols, 3.0 * rows)) as fig:
        axes = fig.subplots(rows, cols, squeeze=False)
        for ax in axes.flat[len(panels):]:
            ax.set_visible(False)
        for ax, (key, data) in zip(axes.flat, panels, strict=False):
            n, g, sigma = cast("tuple[int, float, float]", key)  # the values of the three grouping columns
            L = np.arange(1, n + 1)
            ax.plot(L, L, color="0.6", lw=0.8, ls="-", label="bound MC = L")
            for kind, c in data.groupby("kind"):
                color = KIND_COLORS.get(str(kind), "k")
                ax.fill_between(c.L, c.lo, c.hi, color=color, alpha=0.2, lw=0)
                ax.plot(c.L, c["mean"], color=color, marker="o", ms=2.5, lw=1.2, label=f"{kind} (simulation)")
                ax.plot(c.L, c.theory, color=color, ls="--", lw=1.0)
                ax.plot(c.L, c.independent, color=color, ls=":", lw=0.8)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("readout neurons L")
            ax.set_ylabel("memory capacity MC(L), raw")
            ax.set_title(f"N = {n}, g = {g}, σ = {sigma}")
        handles, labels = axes[0, 0].get_legend_handles_labels()
        handles += [Line2D([], [], color="k", ls="--"), Line2D([], [], color="k", ls=":")]
        labels += ["theory (correlations)", "no correlations: L·MC₁"]
        axes[0, cols - 1].legend(handles, labels, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7)
        fig.tight_layout()
    return path


def sublinearity(points: pd.DataFrame, path: str | Path) -> Path:
    """Onset of sublinear MC, L_½/N (smallest L with MC(L) ≤ L/2), against the mean squared pairwise
    correlation ⟨r²⟩, one marker per reservoir and seed."""
    path = Path(path)
    with figure(path, figsize=(4.6, 3.4)) as fig:
        ax = fig.subplots()
        for kind, p in points.groupby("kind"):
            ax.scatter(p.mean_r2, p.L_half / p.n, s=14, color=KIND_COLORS.get(str(kind), "k"), label=kind, alpha=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("mean squared correlation ⟨r²⟩")
        ax.set_ylabel("L½ / N  (MC(L) ≤ L/2 from here)")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7)
    return path


_MEASURE_LABELS = {
    "err_fast": ("alignment error err_Ω", "log"), "decoding_error": ("decoding error", "log"),
    "rate": ("mean rate (Hz)", "linear"), "cv_isi": ("CV of ISIs", "linear"), "fano": ("Fano factor", "linear"),
    "ei_corr": ("corr(E, −I)", "linear"),
}


def learning_curves(results: pd.DataFrame, measures: tuple[str, ...], path: str | Path) -> Path:
    """Measures against learning steps (one thin line per replicate, their mean thick); where a column
    ``<measure>_ideal`` exists, the ideal network is drawn dashed."""
    path = Path(path)
    shown = [m for m in measures if m in _MEASURE_LABELS]
    positive = results.step[results.step > 0]
    linthresh = float(positive.min()) if len(positive) else 1.0
    cols = min(3, len(shown))
    rows = -(-len(shown) // cols)
    with figure(path, figsize=(3.3 * cols, 2.6 * rows)) as fig:
        axes = fig.subplots(rows, cols, squeeze=False)
        for ax in axes.flat[len(shown):]:
            ax.set_visible(False)
        for ax, name in zip(axes.flat, shown, strict=False):
            label, scale = _MEASURE_LABELS[name]
            for column, line, tag in ((name, "-", "learned"), (f"{name}_ideal", "--", "ideal network")):
                if column not in results:
                    continue
                for _, rep in results.groupby("replicate"):
                    rep = rep.sort_values("step")
                    ax.plot(rep.step, rep[column], ls=line, color="C0" if line == "-" else "C1", lw=0.6,
                            alpha=0.4)
                mean = results.groupby("step")[column].mean()
                ax.plot(mean.index, mean.to_numpy(), ls=line, color="C0" if line == "-" else "C1", lw=1.6,
                        marker="o", ms=2.5, label=tag)
            ax.set_xscale("symlog", linthresh=linthresh)
            decades = np.arange(np.ceil(np.log10(linthresh)), np.floor(np.log10(max(results.step.max(), 1))) + 1)
            ax.set_xticks([0, *(10.0**decades)])  # no minor decades crowding the linear part near 0
            ax.set_yscale(scale)
            ax.set_xlabel("learning steps")
            ax.set_ylabel(label)
        axes.flat[0].legend(*axes.flat[1].get_legend_handles_labels(), fontsize=7)
        fig.tight_layout()
    return path


def weights_before_after(before: tuple, after: tuple, path: str | Path) -> Path:
    """Ω against −FFᵀ (off-diagonal entries) before and after learning; each of ``before``/``after`` is
    (step, F (N, J), Ω (N, N)). The line is the least-squares fit Ω ≈ s(−FFᵀ) through the origin."""
    path = Path(path)
    with figure(path, figsize=(6.6, 3.0)) as fig:
        axes = fig.subplots(1, 2)
        for ax, (step, F, fast) in zip(axes, (before, after), strict=True):
            off = ~np.eye(fast.shape[0], dtype=bool)
            target, omega = (-F @ F.T)[off], fast[off]
            s = float(target @ omega / (target @ target))
            ax.scatter(target, omega, s=4, color="C0", alpha=0.6, lw=0)
            grid = np.linspace(target.min(), target.max(), 2)
            ax.plot(grid, s * grid, color="C1", lw=1, label=f"Ω = {s:.3g}·(−FFᵀ)")
            ax.set_xlabel("−FFᵀ (off-diagonal)")
            ax.set_ylabel("Ω (off-diagonal)")
            ax.set_title(f"after {step:,} learning steps" if step else "before learning")
            ax.legend(fontsize=7)
        fig.tight_layout()
    return path


def spike_raster(times: np.ndarray, neurons: np.ndarray, x: np.ndarray, xhat: np.ndarray, path: str | Path,
                 *, dt: float = 1e-3, title: str = "") -> Path:
    """A spike raster above the signal x (thin) and its readout x̂ (thick), one colour per dimension.

    Shape: times, neurons (S,), spike times (s) and indices; x, xhat (T, J) sampled every ``dt`` seconds."""
    path = Path(path)
    t = np.arange(x.shape[0]) * dt
    with figure(path, figsize=(6.4, 4.2)) as fig:
        (top, bottom) = fig.subplots(2, 1, sharex=True, height_ratios=(1, 1.2))
        top.scatter(times, neurons, s=2, marker="|", color="k", lw=0.6)
        top.set_ylabel("neuron")
        top.set_title(title)
        for d in range(x.shape[1]):
            bottom.plot(t, x[:, d], color=f"C{d}", lw=0.8, alpha=0.6, label=f"x{d + 1}")
            bottom.plot(t, xhat[:, d], color=f"C{d}", lw=1.4, ls="--", label=f"x̂{d + 1}")
        bottom.set_xlabel("time (s)")
        bottom.set_ylabel("signal and readout")
        bottom.legend(ncols=2 * x.shape[1], fontsize=7)
        fig.tight_layout()
    return path
