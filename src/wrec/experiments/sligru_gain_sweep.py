"""Li-GRU state blow-up versus SLi-GRU scale invariance over the recurrent gain (Moumen & Parcollet, ICASSP 2023).

Forward only: U = g·Q with Q ∈ ℝ^{2H×H} having orthonormal columns, drive w_t ~ N(0, I) standing for
NORM(W x)_t, h₀ = 0, ReLU candidate, no dropout; H = 128, B = 8, T = 500, g ∈ {0.5, 1, 2, 4, 8}, 5 seeds. The
Li-GRU's state is unbounded (a large h raises the one-step gain η = (max|h|/4)‖U_z‖ + ‖U_h‖, which lets h grow
further); the SLi-GRU's LN(U h) = LN(Q h) makes its whole trajectory the same at every g up to the LN's eps
(exactly the same with ``ln_eps = 0`` and a nonzero h₀, which is measured too).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from wrec import _checks, sweep
from wrec.experiments._protocol import Task, replicate_tasks
from wrec.experiments._stats import target_row

CELLS = ("LiGRU", "SLiGRU")
DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class Config:
    """The gain sweep; each replicate (its own Q, drive and h₀) is one task."""

    gains: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0)
    hidden_size: int = 128
    batch: int = 8
    length: int = 500
    replicates: int = 5
    nonlinearity: str = "relu"
    ln_eps: float = 1e-5
    dtype: str = "float32"
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.gains:
            raise ValueError("gains is empty: give at least one value")
        for g in self.gains:
            _checks.real(g, "gains", low=0.0, low_open=True)
        _checks.integer(self.hidden_size, "hidden_size", low=1)
        _checks.integer(self.batch, "batch", low=1)
        _checks.integer(self.length, "length", low=1)
        _checks.integer(self.replicates, "replicates", low=1)
        _checks.real(self.ln_eps, "ln_eps", low=0.0)
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        from wrec.nn.sligru import NONLINEARITIES

        if self.nonlinearity not in NONLINEARITIES:
            raise ValueError(f"Unknown nonlinearity '{self.nonlinearity}'. Select from {', '.join(NONLINEARITIES)}")

    @classmethod
    def quick(cls, **overrides) -> Config:
        """The full sweep takes seconds; quick keeps every size and uses 2 replicates."""
        return cls(**{"replicates": 2, **overrides})

    def tasks(self) -> list[Task[Config]]:
        return replicate_tasks(self, self.replicates)


def _trajectory(U, w, h0, stabilised: bool, nonlinearity: str, ln_eps: float):
    """max over (batch, units) of |h_t| for every t, and the first t with a non-finite h (−1 if none)."""
    import torch

    from wrec.nn.sligru import LiGRUParams, ligru_step

    params = LiGRUParams(U, nonlinearity, ln_eps)
    h, steps = h0, []
    with torch.no_grad():
        for t in range(w.shape[0]):
            h = ligru_step(params, h, w[t], None, stabilised)
            steps.append(h)
        states = torch.stack(steps)  # (T, B, H)
        finite = torch.isfinite(states).flatten(1).all(1).numpy()
        peak = np.where(finite, states.abs().flatten(1).amax(1).double().numpy(), np.inf)
    first_bad = int(np.argmin(finite)) if not finite.all() else -1
    return peak, first_bad, states


def evaluate(task: Task[Config]) -> pd.DataFrame:
    """Tidy rows of one replicate: one per (cell, gain) with max|h|, finiteness, η and the SLi-GRU's deviation
    from g = 1."""
    import torch

    config, rep = task.config, task.replicate
    dtype = getattr(torch, config.dtype)
    H, rows = config.hidden_size, []
    start = time.perf_counter()
    rng = sweep.task_rng(config.seed, rep)
    orthonormal, _ = np.linalg.qr(rng.standard_normal((2 * H, H)))  # orthonormal columns
    Q = torch.tensor(orthonormal, dtype=dtype)
    w = torch.tensor(rng.standard_normal((config.length, config.batch, 2 * H)), dtype=dtype)
    h_zero = torch.zeros(config.batch, H, dtype=dtype)
    h_rand = torch.tensor(rng.standard_normal((config.batch, H)), dtype=dtype)
    reference = 1.0 if 1.0 in config.gains else config.gains[0]
    ref_states = {}
    for eps, h0 in ((config.ln_eps, h_zero), (0.0, h_rand)):
        _, _, ref_states[eps] = _trajectory(reference * Q, w, h0, True, config.nonlinearity, eps)
    for cell in CELLS:
        stabilised = cell == "SLiGRU"
        for g in config.gains:
            U = g * Q
            peak, first_bad, states = _trajectory(U, w, h_zero, stabilised, config.nonlinearity, config.ln_eps)
            max_h = float(peak.max())
            norm_h = float(torch.linalg.matrix_norm(U[:H], ord=2))
            norm_z = float(torch.linalg.matrix_norm(U[H:], ord=2))
            row = {"replicate": rep, "cell": cell, "gain": g, "max_abs_h": max_h, "finite": first_bad < 0,
                   "first_nonfinite_step": first_bad, "eta": max_h / 4 * norm_z + norm_h,
                   "max_abs_h_t": peak.tolist(), "rel_dev": np.nan, "rel_dev_eps0": np.nan}
            if stabilised:
                ref = ref_states[config.ln_eps]
                row["rel_dev"] = float((states - ref).abs().max() / ref.abs().max())
                _, _, s0 = _trajectory(U, w, h_rand, True, config.nonlinearity, 0.0)
                ref0 = ref_states[0.0]
                row["rel_dev_eps0"] = float((s0 - ref0).abs().max() / ref0.abs().max())
            rows.append(row)
    return pd.DataFrame(rows).assign(seconds=time.perf_counter() - start)


def table(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (cell, gain): max|h| (median and range over replicates), the non-finite count, η, and the
    SLi-GRU's trajectory deviation from the reference gain (with the configured eps and with eps = 0)."""
    out = results.groupby(["cell", "gain"]).agg(
        max_abs_h_median=("max_abs_h", "median"), max_abs_h_min=("max_abs_h", "min"),
        max_abs_h_max=("max_abs_h", "max"), nonfinite=("finite", lambda f: int((~f.astype(bool)).sum())),
        replicates=("replicate", "nunique"), first_nonfinite_step=("first_nonfinite_step", "min"),
        eta_median=("eta", "median"), rel_dev_max=("rel_dev", "max"), rel_dev_eps0_max=("rel_dev_eps0", "max"),
    ).reset_index()
    out.loc[out.nonfinite == 0, "first_nonfinite_step"] = np.nan
    for col in ("rel_dev_max", "rel_dev_eps0_max"):  # tiny numbers: keep them readable in the printed table
        out[col] = [f"{v:.1e}" if np.isfinite(v) else "" for v in out[col]]
    return out


def targets(results: pd.DataFrame) -> pd.DataFrame:
    """Targets: Li-GRU finite for g ≤ 1 and non-finite for g ≥ 4; SLi-GRU trajectories equal across g within
    1e-3 relative. Each must hold in at least 4 of 5 seeds (at least 80 % of the replicates run)."""
    reps = sorted(results.replicate.unique())
    need = int(np.ceil(0.8 * len(reps)))
    li = results[results.cell == "LiGRU"]
    sl = results[results.cell == "SLiGRU"]

    def per_rep(frame: pd.DataFrame, fn) -> pd.Series:
        return frame.groupby("replicate").apply(fn, include_groups=False).reindex(reps)

    low = per_rep(li[li.gain <= 1], lambda f: bool(f.finite.all()))
    high = per_rep(li[li.gain >= 4], lambda f: bool((~f.finite.astype(bool)).all()) if len(f) else False)
    dev = per_rep(sl, lambda f: float(f.rel_dev.max()))
    ok = dev <= 1e-3
    seeds = f"{len(reps)} seeds"
    return pd.DataFrame([
        target_row("Li-GRU finite for every g <= 1", f"{int(low.sum())}/{seeds}", f">= {need}/{seeds}",
                   low.sum() >= need),
        target_row("Li-GRU non-finite for every g >= 4", f"{int(high.sum())}/{seeds}", f">= {need}/{seeds}",
                   high.sum() >= need),
        target_row("SLi-GRU trajectory equal across g (relative, vs the reference gain)",
                   f"{int(ok.sum())}/{seeds}; max {dev.max():.2e}", f"<= 1e-3 in >= {need}/{seeds}",
                   ok.sum() >= need)])


def plot(results: pd.DataFrame, path: str | Path) -> list[Path]:
    """(a) max|h| against the recurrent gain, both cells (every replicate; non-finite runs marked at the top);
    (b) max over units of |h_t| against t for the first replicate, one line per gain, both cells."""
    import matplotlib

    from wrec import plotting

    path = Path(path)
    colors = {"LiGRU": "C3", "SLiGRU": "C0"}
    finite_max = results.loc[np.isfinite(results.max_abs_h), "max_abs_h"].max()
    ceiling = 10 ** np.ceil(np.log10(max(finite_max, 1.0)) + 1)
    with plotting.figure(path, figsize=(plotting.COLUMN, 3.0)) as fig:
        ax = fig.subplots()
        for key, frame in results.groupby("cell"):
            cell = str(key)
            med = frame.groupby("gain").max_abs_h.median()
            ok = frame[frame.finite.astype(bool)]
            bad = frame[~frame.finite.astype(bool)]
            ax.plot(ok.gain, ok.max_abs_h, ".", color=colors[cell], alpha=0.5)
            ax.plot(med.index, np.minimum(med.to_numpy(), ceiling), "-", color=colors[cell], label=cell)
            if len(bad):
                ax.plot(bad.gain, np.full(len(bad), ceiling), "x", color=colors[cell], ms=7,
                        label=f"{cell} inf/NaN (drawn at the top)")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("recurrent gain g (U = g·Q)")
        ax.set_ylabel("max |h_t| over t")
        plotting.legend_below(fig, ncols=2)
    first = results[results.replicate == results.replicate.min()]
    second = path.with_name(path.stem + "-trajectories.png")
    with plotting.figure(second, figsize=(plotting.PAGE, 2.8)) as fig:
        axes = fig.subplots(1, 2, sharey=True)
        cmap = matplotlib.colormaps["viridis"]
        gains = sorted(first.gain.unique())
        for ax, cell in zip(axes, CELLS, strict=True):
            for i, g in enumerate(gains):
                trace = np.asarray(first[(first.cell == cell) & (first.gain == g)].max_abs_h_t.iloc[0], float)
                trace = np.where(np.isfinite(trace), trace, np.nan)
                ax.plot(np.arange(1, trace.size + 1), trace, color=cmap(i / max(len(gains) - 1, 1)), lw=1,
                        label=f"g = {g:g}")
            ax.set_yscale("log")
            ax.set_title(cell)
            ax.set_xlabel("step t")
        axes[0].set_ylabel("max over units of |h_t| (gaps: non-finite)")
        plotting.legend_below(fig, ncols=len(gains))
    return [path, second]
