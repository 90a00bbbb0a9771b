"""Li-GRU versus SLi-GRU trained on the adding problem: the Li-GRU's gradients spike, the SLi-GRU's stay small
(Moumen & Parcollet, ICASSP 2023: the Li-GRU's gradients explode, the SLi-GRU's layer norm prevents it).

One layer (H = 64) reads the adding problem (``wrec.tasks.adding``), a linear readout of h_T predicts the sum;
Adam, batch 64, no gradient clipping, 300 steps, T ∈ {100, 300}, lr ∈ {3e-3, 1e-2, 2e-2}, feed-forward
normalisation none or batchnorm, 5 seeds. Both cells of a (T, seed) pair start from the same W, U, readout and
see the same batches. Recorded per step: loss, global gradient norm, max|h| and the η bound; at the end the
test MSE (the constant predictor has 1/6). A non-finite loss or gradient stops that run and is reported (step of
the first non-finite value) — never trained through. "Solved" means test MSE < 1/60 (a tenth of the baseline).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from wrec import _checks, sweep
from wrec.experiments._protocol import Task
from wrec.experiments._stats import target_row
from wrec.experiments._torch import torch_generator
from wrec.tasks.adding import CONSTANT_PREDICTOR_MSE, adding_problem

CELLS = ("LiGRU", "SLiGRU")
FF_NORMS = ("none", "batchnorm", "layernorm")
SOLVED_MSE = CONSTANT_PREDICTOR_MSE / 10


@dataclass(frozen=True)
class Config:
    """The adding-problem grid; each (cell, T, lr, normaliser, replicate) is one task."""

    cells: tuple[str, ...] = CELLS
    lengths: tuple[int, ...] = (100, 300)
    lrs: tuple[float, ...] = (3e-3, 1e-2, 2e-2)
    ff_normalizations: tuple[str, ...] = ("none", "batchnorm")
    hidden_size: int = 64
    batch: int = 64
    steps: int = 300
    replicates: int = 5
    test_size: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        for field in ("cells", "lengths", "lrs", "ff_normalizations"):
            if not getattr(self, field):
                raise ValueError(f"{field} is empty: give at least one value")
        if set(self.cells) - set(CELLS):
            raise ValueError(f"cells must be among {CELLS}, got {self.cells}")
        if set(self.ff_normalizations) - set(FF_NORMS):
            raise ValueError(f"ff_normalizations must be among {FF_NORMS}, got {self.ff_normalizations}")
        for T in self.lengths:
            _checks.integer(T, "lengths", low=2)
        for lr in self.lrs:
            _checks.real(lr, "lrs", low=0.0, low_open=True)
        for name in ("hidden_size", "batch", "steps", "replicates", "test_size"):
            _checks.integer(getattr(self, name), name, low=1)

    @classmethod
    def quick(cls, **overrides) -> Config:
        """T = 100, lr ∈ {1e-2, 2e-2}, no feed-forward norm, 3 seeds, 300 steps (a few minutes on 2 cores)."""
        return cls(**{"lengths": (100,), "lrs": (1e-2, 2e-2), "ff_normalizations": ("none",), "replicates": 3,
                      **overrides})

    def tasks(self) -> list[Task[Config]]:
        return [Task(replace(self, cells=(c,), lengths=(T,), lrs=(lr,), ff_normalizations=(n,), replicates=1), r)
                for T in self.lengths for lr in self.lrs for n in self.ff_normalizations for r in range(self.replicates)
                for c in self.cells]


def train(config: Config, cell: str, length: int, lr: float, ff_norm: str, rep: int) -> pd.DataFrame:
    """One training run; rows: one per step (``record == "step"``) and a last one (``record == "final"``)."""
    import torch

    from wrec.nn.sligru import LiGRU, SLiGRU, eta_bound

    start = time.perf_counter()
    H = config.hidden_size
    # the same initial weights and batches for both cells (and every lr) of a (T, norm, replicate)
    init = torch_generator(sweep.task_rng(config.seed, "init", length, ff_norm, rep))
    data = sweep.task_rng(config.seed, "data", length, rep)
    test_x, test_y = adding_problem(config.test_size, length, seed=sweep.task_rng(config.seed, "test", length))
    cls = LiGRU if cell == "LiGRU" else SLiGRU
    model = cls(2, H, batch_first=True, ff_normalization=None if ff_norm == "none" else ff_norm)
    model.reset_parameters(init)
    head = torch.nn.Linear(H, 1)
    torch.nn.init.kaiming_uniform_(head.weight, a=math.sqrt(5), generator=init)
    torch.nn.init.uniform_(head.bias, -1 / math.sqrt(H), 1 / math.sqrt(H), generator=init)
    params = [*model.parameters(), *head.parameters()]
    opt = torch.optim.Adam(params, lr=lr)
    rows, first_bad = [], -1
    for step in range(config.steps):
        batch_x, batch_y = adding_problem(config.batch, length, seed=data)
        x, y = torch.tensor(batch_x, dtype=torch.float32), torch.tensor(batch_y, dtype=torch.float32)
        if not (torch.isfinite(x).all() and torch.isfinite(y).all()):
            raise ValueError(f"training batch {step} has non-finite values")
        model.train()
        opt.zero_grad(set_to_none=True)
        out, _, max_abs_h = model(x, return_max_abs_h=True)
        loss = (head(out[:, -1]).squeeze(-1) - y).square().mean()
        loss.backward()
        # (every parameter takes part in the loss, so each has a gradient)
        grad_norm = float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params
                                                                if p.grad is not None])))
        loss_value = float(loss.detach())
        rows.append({"record": "step", "step": step, "loss": loss_value, "grad_norm": grad_norm,
                     "max_abs_h": float(max_abs_h.max()), "eta": float(eta_bound(model, max_abs_h).max())})
        if not (math.isfinite(loss_value) and math.isfinite(grad_norm)):
            first_bad = step  # stop here: an optimiser step would put NaN/inf into the weights
            break
        opt.step()
    if first_bad < 0:
        model.eval()
        with torch.no_grad():
            out, _ = model(torch.tensor(test_x, dtype=torch.float32))
            pred = head(out[:, -1]).squeeze(-1).double().numpy()
        test_mse = float(np.mean((pred - test_y) ** 2))
    else:
        test_mse = np.nan
    steps = pd.DataFrame(rows)
    grads = steps.grad_norm.to_numpy()
    final = {"record": "final", "step": len(rows), "loss": rows[-1]["loss"], "test_mse": test_mse,
             "first_nonfinite_step": first_bad, "diverged": first_bad >= 0,
             "peak_grad_norm": float(np.max(np.where(np.isfinite(grads), grads, np.inf))),
             "peak_max_abs_h": float(steps.max_abs_h.max()), "solved": bool(test_mse < SOLVED_MSE),
             "seconds": time.perf_counter() - start}
    return pd.concat([steps, pd.DataFrame([final])], ignore_index=True).assign(
        cell=cell, length=length, lr=lr, ff_norm=ff_norm, replicate=rep)


def evaluate(task: Task[Config]) -> pd.DataFrame:
    """One training run (its cell, T, lr, normaliser and replicate); tidy rows (see ``train``)."""
    config = task.config
    (cell,), (length,), (lr,), (ff_norm,) = config.cells, config.lengths, config.lrs, config.ff_normalizations
    return train(config, cell, length, lr, ff_norm, task.replicate)


KEYS = ["length", "lr", "ff_norm"]


def table(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (T, lr, normaliser, cell): peak gradient norm and max|h| (median, max over seeds), the step of
    the peak (median), diverged runs with the earliest non-finite step, final test MSE (median), solved runs, and
    the median over seeds of the Li-GRU / SLi-GRU peak-gradient ratio of the configuration."""
    final = results[results.record == "final"]
    out = final.groupby([*KEYS, "cell"]).agg(
        seeds=("replicate", "nunique"),
        peak_grad_median=("peak_grad_norm", "median"), peak_grad_max=("peak_grad_norm", "max"),
        max_abs_h_median=("peak_max_abs_h", "median"),
        diverged=("diverged", lambda d: int(d.astype(bool).sum())),
        first_nonfinite_step=("first_nonfinite_step", lambda s: s[s >= 0].min() if (s >= 0).any() else np.nan),
        test_mse_median=("test_mse", "median"), solved=("solved", lambda s: int(s.astype(bool).sum())),
    ).reset_index()
    # when the peak happens: at the first steps it is the initial transient, later an explosion during training
    steps = results[results.record == "step"]
    peak_step = steps.loc[steps.groupby([*KEYS, "cell", "replicate"]).grad_norm.idxmax()]
    out = out.merge(peak_step.groupby([*KEYS, "cell"]).step.median().rename("peak_step_median").reset_index(),
                    on=[*KEYS, "cell"], how="left")
    pairs = _pairs(results)
    if not pairs.empty:
        ratio = (pairs.LiGRU / pairs.SLiGRU).groupby([pairs[k] for k in KEYS]).median().rename("Li/SLi_peak_median")
        out = out.merge(ratio.reset_index(), on=KEYS, how="left")
    return out.merge(li_gru_growth(results).reset_index(), on=KEYS, how="left") if (results.cell == "LiGRU").any() \
        else out


def _pairs(results: pd.DataFrame) -> pd.DataFrame:
    final = results[results.record == "final"]
    wide = final.pivot_table(index=[*KEYS, "replicate"], columns="cell", values="peak_grad_norm", aggfunc="first")
    return wide.dropna().reset_index() if set(CELLS) <= set(wide.columns) else wide.iloc[0:0]


#: a configuration's Li-GRU gradient "grows" when, in the median over seeds, its peak gradient norm is at least
#: twice the median norm of its first ``EARLY_STEPS`` steps — decided from the Li-GRU runs alone, before any ratio
GROWTH, EARLY_STEPS = 2.0, 10


def li_gru_growth(results: pd.DataFrame) -> pd.Series:
    """Per configuration (T, lr, normaliser): the median over seeds of the Li-GRU's peak gradient norm over the
    median norm of its first ``EARLY_STEPS`` steps (a run's non-finite gradient makes its peak inf: growth)."""
    steps = results[(results.record == "step") & (results.cell == "LiGRU")]
    early = steps[steps.step < steps.step.min() + EARLY_STEPS].groupby([*KEYS, "replicate"]).grad_norm.median()
    final = results[(results.record == "final") & (results.cell == "LiGRU")].set_index([*KEYS, "replicate"])
    return (final.peak_grad_norm / early).groupby(level=KEYS).median().rename("LiGRU_growth")  # peak: inf if NaN


def targets(results: pd.DataFrame) -> pd.DataFrame:
    """The paper's claim as our test: Li-GRU's peak gradient norm above SLi-GRU's in >= 80 % of (config, seed)
    pairs, by >= 3× in the median — gated on the configurations where the Li-GRU's gradient grows at all
    (``li_gru_growth`` ≥ 2; where it does not, there is no explosion for the layer norm to prevent), and reported
    on the others. (The divergence rate is reported in the table, not gated.)"""
    pairs = _pairs(results)
    if pairs.empty:
        return pd.DataFrame([target_row("Li-GRU / SLi-GRU peak gradient norm (needs both cells)", "no pairs", "",
                                        False)])
    growth = li_gru_growth(results)
    grows = pairs.set_index(KEYS).index.map(lambda k: bool(growth.get(k, np.nan) >= GROWTH)).to_numpy(dtype=bool)
    rows = []
    for subset, label in ((grows, f"configs where Li-GRU's gradient grows ≥ {GROWTH:g}×"),
                          (~grows, "other configs, reported")):
        ratio = (pairs["LiGRU"] / pairs["SLiGRU"])[subset]
        n_configs = len(pairs[subset].drop_duplicates(KEYS))
        if ratio.empty:
            rows.append(target_row(f"Li-GRU / SLi-GRU peak ‖∇‖ ({label})", "no such config", "", False))
            continue
        above, med = float((ratio > 1).mean()), float(ratio.median())
        rows.append(target_row(f"Li-GRU peak ‖∇‖ > SLi-GRU's, fraction of pairs ({label}: {n_configs})",
                               f"{above:.0%} of {len(ratio)}", ">= 80 %", above >= 0.8))
        rows.append(target_row(f"median Li-GRU / SLi-GRU peak ‖∇‖ ({label}: {n_configs})",
                               f"{med:.3g}x (range {ratio.min():.3g}–{ratio.max():.3g})", ">= 3x", med >= 3))
    return pd.DataFrame(rows)


def plot(results: pd.DataFrame, path: str | Path) -> list[Path]:
    """(a) peak gradient norm, Li-GRU against SLi-GRU, one point per (config, seed), with y = x and y = 3x;
    (b) gradient norm and (c) training loss against step for the largest T and lr, first seed, both cells."""
    from wrec import plotting

    path = Path(path)
    pairs = _pairs(results)
    colors = {"LiGRU": "C3", "SLiGRU": "C0"}
    with plotting.figure(path, figsize=(plotting.COLUMN, 3.2)) as fig:
        ax = fig.subplots()
        if not pairs.empty:
            finite = pairs[np.isfinite(pairs.LiGRU) & np.isfinite(pairs.SLiGRU)]
            for (T, norm), frame in finite.groupby(["length", "ff_norm"]):
                ax.scatter(frame.SLiGRU, frame.LiGRU, s=14, label=f"T = {T}, norm {norm}")
            lo = min(finite.SLiGRU.min(), finite.LiGRU.min())
            hi = max(finite.SLiGRU.max(), finite.LiGRU.max())
            xs = np.array([lo, hi])
            ax.plot(xs, xs, "k-", lw=0.8, label="y = x")
            ax.plot(xs, 3 * xs, "k--", lw=0.8, label="y = 3x")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("SLi-GRU peak gradient norm")
        ax.set_ylabel("Li-GRU peak gradient norm")
        plotting.legend_below(fig, ncols=2)
    steps = results[results.record == "step"]
    T, lr = steps.length.max(), steps.lr.max()
    sel = steps[(steps.length == T) & (steps.lr == lr) & (steps.replicate == steps.replicate.min())]
    sel = sel[sel.ff_norm == sel.ff_norm.iloc[0]]
    second = path.with_name(path.stem + "-training.png")
    with plotting.figure(second, figsize=(plotting.PAGE, 2.8)) as fig:
        axes = fig.subplots(1, 2)
        for cell, frame in sel.groupby("cell"):
            axes[0].plot(frame.step, frame.grad_norm, color=colors[cell], lw=0.8, label=cell)
            axes[1].plot(frame.step, frame.loss, color=colors[cell], lw=0.8, label=cell)
        axes[0].set_yscale("log")
        axes[0].set_ylabel("global gradient norm")
        axes[1].axhline(CONSTANT_PREDICTOR_MSE, color="0.4", ls=":", lw=0.8, label="constant predictor")
        axes[1].set_yscale("log")
        axes[1].set_ylabel("training MSE")
        for ax in axes:
            ax.set_xlabel("step")
        plotting.legend_below(fig)
        fig.suptitle(f"T = {T}, lr = {lr:g}, norm {sel.ff_norm.iloc[0]}, seed {sel.replicate.min()}")
    return [path, second]
