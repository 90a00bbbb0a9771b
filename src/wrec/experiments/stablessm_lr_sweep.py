"""StableSSM learning-rate sweep: stable reparameterisations train at learning rates where "direct" fails
(Wang & Li, ICML 2024).

Wang & Li, "StableSSM" (ICML 2024): optimisation stability (and, with ``model="block"``, the same on the full
block). The minimal linear SSM
(m = 16, float64, Adam) or one StableSSM block (width 64, d_state 64, AdamW with weight decay 0.01 and a cosine
schedule, float32) is trained on the polynomial-memory linear functional at each learning rate and for each
reparameterisation f. Recorded: the final test MSE (inf when training produced a non-finite loss: reported, never
trained through) and the gradient-over-weight ratio r_n = |∂L/∂w_n| / |w_n| per mode, whose spread across modes,
log10(q90/q10) (and log10(max/min)), is measured at initialisation and every 50 steps.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wrec import _checks
from wrec.experiments._protocol import Task, replicate_tasks
from wrec.experiments._stats import format_values, target_row
from wrec.experiments._torch import torch_generator
from wrec.experiments.stablessm_curse_of_memory import REPARAMS, TrainingDiverged, lf_data, make_model, mse
from wrec.sweep import task_rng
from wrec.tasks.memory import MEMORIES

MODELS = ("linear", "block")
BLOCK_LRS = (5e-1, 5e-2, 5e-3, 5e-4)


@dataclass(frozen=True)
class Config:
    """A grid of (f × learning rate × replicate) tasks, one training each.

    Defaults (the minimal model): pol memory, m = 16, lr ∈ {1e-3, 1e-2, 1e-1, 1}, 600 steps, batch 128, 3 seeds.
    ``model="block"``: one StableSSM block (``width`` channels, ``d_state``), a linear decoder,
    AdamW (``weight_decay``) with a cosine schedule, lr ∈ {5e-1, 5e-2, 5e-3, 5e-4} (``Config.block()``);
    ``ssm_lr_tags`` gives the SSM parameters (w, log Δ) lr min(1e-3, lr) and no weight decay, as the reference
    tags them (its LF training ignores the tags, hence off by default).
    """

    reparams: tuple[str, ...] = REPARAMS
    lrs: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0)
    model: str = "linear"
    memory: str = "pol"
    width: int = 16
    d_state: int = 64
    replicates: int = 3
    steps: int = 600
    batch: int = 128
    n_train: int = 4000
    n_test: int = 1000
    length: int = 100
    decay_range: tuple[float, float] = (0.01, 1.0)
    every: int = 50
    weight_decay: float = 0.01
    ssm_lr_tags: bool = False
    a: float = 1.0
    b: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.reparams or not self.lrs:
            raise ValueError("reparams and lrs must each hold at least one value")
        if set(self.reparams) - set(REPARAMS):
            raise ValueError(f"reparams has unknown names {sorted(set(self.reparams) - set(REPARAMS))}; "
                             f"choose from {REPARAMS}")
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {self.model!r}")
        if self.memory not in MEMORIES:
            raise ValueError(f"memory must be one of {MEMORIES}, got {self.memory!r}")
        for lr in self.lrs:
            _checks.real(lr, "lrs", low=0.0, low_open=True)
        for name in ("width", "d_state", "replicates", "steps", "batch", "n_train", "n_test", "length", "every"):
            _checks.integer(getattr(self, name), name, low=1)
        _checks.real(self.weight_decay, "weight_decay", low=0.0)
        lo, hi = self.decay_range
        _checks.real(lo, "decay_range", low=0.0, low_open=True)
        _checks.real(hi, "decay_range", low=lo)

    @classmethod
    def quick(cls, **overrides) -> Config:
        """The full default grid (it is small): every f × 4 learning rates × 3 seeds, 600 steps."""
        return cls(**overrides)

    @classmethod
    def block(cls, **overrides) -> Config:
        """One StableSSM block (width 64, d_state 64) on the LF task, AdamW + cosine, 4 learning rates."""
        return cls(**{"model": "block", "lrs": BLOCK_LRS, "width": 64, "steps": 600, **overrides})

    @classmethod
    def smoke(cls, **overrides) -> Config:
        """Seconds: for CI (numbers meaningless)."""
        return cls(**{"lrs": (1e-2, 1.0), "replicates": 1, "steps": 40, "n_train": 256, "n_test": 128,
                      "batch": 64, "length": 40, "every": 20, **overrides})

    def tasks(self) -> list[Task[Config]]:
        """One task per (f, lr, replicate)."""
        return replicate_tasks(self, self.replicates, reparams=self.reparams, lrs=self.lrs)


def _block_regressor(config: Config, reparam: str, seed: np.random.Generator):
    """StableSSM block (batch_first) + a linear decoder to one output, for the LF task."""
    import torch
    from torch import nn

    from wrec.nn.stablessm import DiagonalSSMKernel, StableSSM

    class BlockRegressor(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ssm = StableSSM(1, config.width, batch_first=True, d_state=config.d_state, reparam=reparam,
                                 a=config.a, b=config.b, seed=seed)
            self.decoder = nn.Linear(config.width, 1)

        @property
        def raw_w(self) -> torch.Tensor:
            (kernel,) = [m for m in self.ssm.modules() if isinstance(m, DiagonalSSMKernel)]  # the one block's
            return kernel.raw_w

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.decoder(self.ssm(x)[0])

    with torch.random.fork_rng(devices=[]):  # nn.Linear's default draw is replaced below; the global RNG is kept
        model = BlockRegressor()
    g = torch_generator(seed)
    with torch.no_grad():
        bound = 1 / math.sqrt(config.width)
        model.decoder.weight.copy_(torch.rand(model.decoder.weight.shape, generator=g) * 2 * bound - bound)
        model.decoder.bias.zero_()
    return model


def spreads(model) -> tuple[float, float]:
    """Spread over modes of r_n = |∂L/∂w_n| / |w_n| (from the gradient in ``w.grad``): log10(q90/q10) and
    log10(max/min); inf when modes have no gradient at all (e.g. exp's f′ = −eʷ underflows), NaN when a gradient
    is not finite."""

    w = model.raw_w
    if w.grad is None:
        return math.nan, math.nan
    r = (w.grad.abs() / w.detach().abs()).flatten().double().numpy()
    if not np.all(np.isfinite(r)):
        return math.nan, math.nan
    q10, q90 = np.quantile(r, [0.1, 0.9])
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = math.inf if q10 == 0 else float(np.log10(q90 / q10))
        full = math.inf if r.min() == 0 else float(np.log10(r.max() / r.min()))
    return spread, full


def _model(config: Config, reparam: str, replicate: int):
    if config.model == "linear":
        return make_model(config, reparam, config.width, replicate)
    return _block_regressor(config, reparam, task_rng(config.seed, "weights", config.width, replicate))


def _optimiser(config: Config, model, lr: float):
    import torch

    if config.model == "linear":
        return torch.optim.Adam(model.parameters(), lr=lr), None
    ssm = {id(p) for name, p in model.named_parameters() if "original" in name or "log_dt" in name}
    groups: list[dict[str, Any]]
    if config.ssm_lr_tags:
        groups = [{"params": [p for p in model.parameters() if id(p) in ssm], "lr": min(1e-3, lr),
                   "weight_decay": 0.0},
                  {"params": [p for p in model.parameters() if id(p) not in ssm]}]
    else:
        groups = [{"params": list(model.parameters())}]
    opt = torch.optim.AdamW(groups, lr=lr, weight_decay=config.weight_decay)
    return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.steps)


def _train(config: Config, model, data, lr: float, rng: np.random.Generator) -> list[dict]:
    """Train, recording the spreads at step 0, every ``every`` steps and at the end; TrainingDiverged on NaN."""
    import torch

    opt, schedule = _optimiser(config, model, lr)
    x, y = data["x"], data["y"]
    records = []
    for step in range(config.steps):
        idx = torch.from_numpy(rng.choice(x.size(0), size=min(config.batch, x.size(0)), replace=False))
        loss = torch.mean((model(x[idx]) - y[idx]) ** 2)
        if not torch.isfinite(loss):
            raise TrainingDiverged(f"non-finite training loss at step {step}")
        opt.zero_grad()
        loss.backward()
        if step % config.every == 0:
            q, mm = spreads(model)
            records.append({"step": step, "spread": q, "spread_maxmin": mm, "loss": float(loss.detach())})
        opt.step()
        if schedule is not None:
            schedule.step()
    return records


def evaluate(task: Task[Config]) -> pd.DataFrame:
    """Tidy results of one (f, lr, replicate): one row per recorded step with the spreads, and the final test MSE,
    training loss and note on every row."""
    config, rep = task.config, task.replicate
    (reparam,), (lr,) = config.reparams, config.lrs
    data = lf_data(config.memory, config, rep)
    if config.model == "block":
        data = {k: v.float() for k, v in data.items()}
    return _one(config, reparam, lr, rep, data)


def _one(config: Config, reparam: str, lr: float, rep: int, data) -> pd.DataFrame:
    start = time.perf_counter()
    model = _model(config, reparam, rep)
    task = {"model": config.model, "reparam": reparam, "lr": lr, "replicate": rep}
    records, note = [], ""
    try:
        records = _train(config, model, data, lr, task_rng(config.seed, "batches", config.width, rep))
        test = mse(model, data["x_test"], data["y_test"])
        train_loss = mse(model, data["x"], data["y"])
    except TrainingDiverged as exc:  # reported in the table; the weights are not used further
        test = train_loss = math.inf
        note = str(exc)
    if not records:
        records = [{"step": 0, "spread": math.nan, "spread_maxmin": math.nan, "loss": math.nan}]
    return pd.DataFrame([{**task, **r, "test_mse": test, "train_loss": train_loss, "note": note,
                          "seconds": time.perf_counter() - start} for r in records])


def _final(results: pd.DataFrame) -> pd.DataFrame:
    """One row per task: final test MSE, failure flag, mean spreads over training."""
    keys = ["model", "reparam", "lr", "replicate"]
    g = results.groupby(keys)
    out = g.agg(test_mse=("test_mse", "first"), note=("note", "first"), spread=("spread", "mean"),
                spread_maxmin=("spread_maxmin", "mean")).reset_index()
    out["failed"] = ~np.isfinite(out["test_mse"]) | (out["test_mse"] > 1)
    return out


def table(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (f, lr): median test MSE over seeds, failures, mean gradient-over-weight spreads."""
    final = _final(results)
    return final.groupby(["model", "reparam", "lr"]).agg(
        test_mse=("test_mse", "median"), worst_mse=("test_mse", "max"), failed=("failed", "sum"),
        runs=("replicate", "nunique"), spread_q90_q10=("spread", "mean"),
        spread_max_min=("spread_maxmin", "mean"),
        note=("note", lambda s: "; ".join(sorted({v for v in s if v})))).reset_index()


def _held(flags) -> bool:
    flags = np.asarray(flags, bool)
    return bool(flags.size) and flags.sum() >= math.ceil(2 * flags.size / 3)


def targets(results: pd.DataFrame) -> pd.DataFrame:
    """The minimal model's targets (the block model reports the same ones at its own learning rates)."""
    final = _final(results)
    out = []

    def fmt(values) -> str:
        return format_values(values, digits=3)

    lrs = sorted(final["lr"].unique())
    stable = [f for f in ("exp", "softplus", "best") if f in set(final["reparam"])]
    sel = final.set_index(["reparam", "lr", "replicate"])
    if "direct" in set(final["reparam"]):
        for lr in [v for v in lrs if v >= 0.1]:
            d = sel.loc[("direct", lr), :]
            out.append(target_row(f"direct fails at lr={lr:g} (non-finite or test MSE > 1)", fmt(d["test_mse"]),
                                  "fails in 2 of 3 seeds", _held(d["failed"])))
    mid = 0.1 if 0.1 in lrs else None
    if mid is not None:
        for f in stable:
            e = sel.loc[(f, mid), :]["test_mse"]
            out.append(target_row(f"{f} reaches test MSE < 1e-3 at lr=0.1", fmt(e), "< 1e-3 in 2 of 3 seeds",
                                  _held(e < 1e-3)))
    top = max(lrs)
    if top >= 1.0 and "best" in set(final["reparam"]):
        wide = final[final["lr"] == top].pivot_table(index="replicate", columns="reparam", values="test_mse")
        wide = wide.fillna(np.inf)
        lowest = wide.idxmin(axis=1) == "best"
        out.append(target_row(
            f"at lr={top:g} best has the lowest test MSE of the four",
            "; ".join(f"seed {r}: " + ", ".join(f"{c} {v:.2g}" for c, v in row.items()) for r, row in wide.iterrows()),
            "lowest in 2 of 3 seeds", _held(lowest)))
    if 1e-2 in lrs and "direct" in set(final["reparam"]):
        d = sel.loc[("direct", 1e-2), :]
        for f in stable:
            s = sel.loc[(f, 1e-2), :]
            gap = d["spread"].to_numpy() - s["spread"].to_numpy()
            gap_mm = d["spread_maxmin"].to_numpy() - s["spread_maxmin"].to_numpy()
            out.append(target_row(
                f"lr=1e-2: spread(direct) - spread({f}), log10 q90/q10 averaged over training",
                f"{fmt(gap)} (direct {fmt(d['spread'])}; {f} {fmt(s['spread'])}); max/min: {fmt(gap_mm)}",
                ">= 0.5 decade in 2 of 3 seeds", _held(gap >= 0.5)))
    return pd.DataFrame(out)


def plot(results: pd.DataFrame, path: str | Path) -> list[Path]:
    """(a) Test MSE versus learning rate per f (median and range over seeds; failures drawn at the top);
    (b) gradient-over-weight spread log10(q90/q10) over training at each learning rate."""
    from wrec import plotting

    path = Path(path)
    final = _final(results)
    reparams = [f for f in REPARAMS if f in set(final["reparam"])]
    finite = final["test_mse"].replace(np.inf, np.nan)
    ceiling = 10 * max(float(np.nanmax(finite)) if finite.notna().any() else 1.0, 1.0)
    with plotting.figure(path, figsize=(plotting.COLUMN, 3.0)) as fig:
        ax = fig.subplots()
        for f in reparams:
            sel = final[final.reparam == f].copy()
            sel["shown"] = sel["test_mse"].where(np.isfinite(sel["test_mse"]), ceiling)
            g = sel.groupby("lr")["shown"]
            med, lo, hi = g.median(), g.min(), g.max()
            (line,) = ax.plot(med.index, med.to_numpy(), "o-", label=f)
            ax.fill_between(med.index, lo.to_numpy(), hi.to_numpy(), color=line.get_color(), alpha=0.15, lw=0)
        ax.axhline(ceiling, color="k", lw=0.6, ls=":")
        ax.text(ax.get_xlim()[0], ceiling, " non-finite", va="bottom", fontsize=7)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("test MSE (median, range over seeds)")
        plotting.legend_below(fig, ncols=len(reparams), title="reparameterisation f")
    second = path.with_name(path.stem + "-spread.png")
    lrs = sorted(results["lr"].unique())
    cols = min(4, len(lrs))
    rows = -(-len(lrs) // cols)
    with plotting.figure(second, figsize=(plotting.PAGE if cols > 1 else plotting.COLUMN, 2.2 * rows + 0.5)) as fig:
        axes = fig.subplots(rows, cols, sharey=True, squeeze=False)
        for ax in axes.flat[len(lrs):]:
            ax.set_visible(False)
        for ax, lr in zip(axes.flat, lrs, strict=False):
            for f in reparams:
                sel = results[(results.reparam == f) & (results.lr == lr)]
                curve = sel.groupby("step")["spread"].mean()
                ax.plot(curve.index, curve.to_numpy(), label=f)
            ax.set_title(f"lr = {lr:g}")
            ax.set_xlabel("step")
        for row in axes:
            row[0].set_ylabel("log10(q90/q10) of |∂L/∂w|/|w|")
        plotting.legend_below(fig, ncols=len(reparams))
    return [path, second]
