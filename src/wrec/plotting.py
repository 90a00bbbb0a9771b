"""Figures (matplotlib only here; the core never imports this module). One style for every experiment."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

STYLE = {
    "figure.dpi": 150, "savefig.bbox": "tight", "font.size": 9, "axes.spines.top": False,
    "axes.spines.right": False, "legend.frameon": False,
}
DEGREE_COLORS = plt.get_cmap("viridis")


def capacity_profile(
    by_degree: pd.DataFrame,
    rank: pd.Series,
    path: str | Path,
    *,
    xlabel: str,
    title: str = "",
    reference: pd.Series | None = None,
) -> Path:
    """Stacked bars of capacity by degree (columns) against x (index), the state rank as a line.

    ``reference`` (optional, same index) is drawn as open markers, e.g. published totals.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    x = by_degree.index.to_numpy(dtype=float)
    width = 0.8 * (np.min(np.diff(x)) if x.size > 1 else 1.0)
    degrees = list(by_degree.columns)
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(6.0, 3.4))
        bottom = np.zeros_like(x)
        for i, d in enumerate(degrees):
            values = by_degree[d].to_numpy(dtype=float)
            color = DEGREE_COLORS(i / max(len(degrees) - 1, 1))
            ax.bar(x, values, width, bottom=bottom, color=color, label=f"degree {d}")
            bottom += values
        ax.plot(rank.index.to_numpy(dtype=float), rank.to_numpy(dtype=float), "k-", lw=1.2, marker=".",
                label="rank r")
        if reference is not None:
            ax.plot(reference.index.to_numpy(dtype=float), reference.to_numpy(dtype=float), "o", mfc="none",
                    mec="crimson", ms=6, label=reference.name or "reference")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("capacity")
        if title:
            ax.set_title(title)
        ax.set_ylim(0, 1.08 * max(float(np.nanmax(bottom)), float(rank.max())))
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7)
        fig.savefig(path)
        plt.close(fig)
    return path
