"""StableSSM curse of memory: without reparameterisation, fitting long memory drives the eigenvalues to the edge
(Wang & Li, ICML 2024).

Wang & Li, "StableSSM" (ICML 2024), the curse of memory as a perturbation test. The minimal linear SSM
h_t = λ ⊙ h_{t−1} + U x_t, y_t = C h_t, λ_n = exp(f(w_n)) (``wrec.nn.LinearDiagonalSSM``) is trained (Adam, float64) on
a linear functional with exponential or polynomial memory, for each width m and reparameterisation f. Then every
parameter is perturbed, θ → θ + β·n/‖n‖_∞ with n Gaussian, and the worst test MSE over repeats, E_m(β), is recorded with
the stability margin min_n −f(w_n) and max_n λ_n. With f = "direct" and polynomial memory the margin shrinks as m grows
and a small β pushes a λ past 1 (E explodes); the stable f keep E(β) small at every m.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from wrec import _checks
from wrec.experiments._protocol import Task, replicate_tasks
from wrec.experiments._stats import format_values, target_row
from wrec.sweep import task_rng
from wrec.tasks.memory import MEMORIES, linear_functional

if TYPE_CHECKING:  # torch is imported inside the functions: wrec.experiments loads without the [torch] extra
    import torch

    from wrec.nn.stablessm import LinearDiagonalSSM

REPARAMS = ("direct", "exp", "softplus", "best")  # wrec.nn.stablessm.REPARAMS, without importing torch

BETAS = (0.0, *(1e-3 * 2 ** (k / 2) for k in range(17)))


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite (recorded in the results, never trained through)."""


@dataclass(frozen=True)
class Config:
    """A grid of (memory × reparameterisation × replicate) tasks, each training every width in turn.

    Defaults: m ∈ {8, 16, 32, 64}, four f, ρ ∈ {exp, pol}, Adam lr 1e-2, 1500 steps, batch 128,
    4000 train / 1000 test sequences of T = 100, A₀ log-uniform in [0.01, 1], 3 seeds, 3 perturbation repeats.
    ``match_loss``: train each wider model only until its training loss reaches the previous width's final loss
    (the reference's protocol, so widths are compared at equal accuracy).
    """

    widths: tuple[int, ...] = (8, 16, 32, 64)
    reparams: tuple[str, ...] = REPARAMS
    memories: tuple[str, ...] = ("exp", "pol")
    replicates: int = 3
    steps: int = 1500
    lr: float = 1e-2
    batch: int = 128
    n_train: int = 4000
    n_test: int = 1000
    length: int = 100
    decay_range: tuple[float, float] = (0.01, 1.0)
    betas: tuple[float, ...] = BETAS
    repeats: int = 3
    match_loss: bool = False
    a: float = 1.0
    b: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        for field in ("widths", "reparams", "memories", "betas"):
            if not getattr(self, field):
                raise ValueError(f"{field} is empty: give at least one value")
        for m in self.widths:
            _checks.integer(m, "widths", low=1)
        if set(self.reparams) - set(REPARAMS):
            raise ValueError(f"reparams has unknown names {sorted(set(self.reparams) - set(REPARAMS))}; "
                             f"choose from {REPARAMS}")
        if set(self.memories) - set(MEMORIES):
            raise ValueError(f"memories has unknown names {sorted(set(self.memories) - set(MEMORIES))}; "
                             f"choose from {MEMORIES}")
        for name in ("replicates", "steps", "batch", "n_train", "n_test", "length", "repeats"):
            _checks.integer(getattr(self, name), name, low=1)
        _checks.real(self.lr, "lr", low=0.0, low_open=True)
        lo, hi = self.decay_range
        _checks.real(lo, "decay_range", low=0.0, low_open=True)
        _checks.real(hi, "decay_range", low=lo)
        if "best" in self.reparams and hi >= 1 / self.b:
            raise ValueError(f"decay_range must stay below 1/b = {1 / self.b} for reparam 'best', got {hi}")
        for beta in self.betas:
            _checks.real(beta, "betas", low=0.0)

    @classmethod
    def quick(cls, **overrides) -> Config:
        """m ∈ {8, 32} (where the targets' reference values were measured), every f, both memories, 3 seeds: a
        few minutes on 2 cores."""
        return cls(**{"widths": (8, 32), **overrides})

    @classmethod
    def smoke(cls, **overrides) -> Config:
        """Seconds: for CI (numbers meaningless)."""
        return cls(**{"widths": (4, 8), "memories": ("pol",), "replicates": 1, "steps": 30, "n_train": 256,
                      "n_test": 128, "batch": 64, "length": 40, "betas": (0.0, 0.064, 0.256), "repeats": 2,
                      **overrides})

    def tasks(self) -> list[Task[Config]]:
        """One task per (memory, f, replicate); its widths run in order (``match_loss`` needs the previous one)."""
        return replicate_tasks(self, self.replicates, memories=self.memories, reparams=self.reparams)


def lf_data(memory: str, config, replicate: int) -> dict[str, torch.Tensor]:
    """Train and test sets of the linear functional, shared by every f and width of a replicate (float64)."""
    import torch

    rng = task_rng(config.seed, "data", memory, replicate)
    inputs, outputs = linear_functional(config.n_train + config.n_test, config.length, memory, seed=rng)
    x, y = torch.from_numpy(inputs), torch.from_numpy(outputs)
    n = config.n_train
    return {"x": x[:n], "y": y[:n], "x_test": x[n:], "y_test": y[n:]}


def init_decays(config, width: int, replicate: int) -> np.ndarray:
    """A₀ log-uniform in ``decay_range``: the same initial eigenvalues for every f of a (width, replicate)."""
    lo, hi = config.decay_range
    return np.exp(task_rng(config.seed, "init", width, replicate).uniform(math.log(lo), math.log(hi), width))


def make_model(config, reparam: str, width: int, replicate: int) -> LinearDiagonalSSM:
    """The minimal model, initialised identically (λ₀, U, C) across f for one (width, replicate)."""
    import torch

    from wrec.nn.stablessm import LinearDiagonalSSM

    seed = task_rng(config.seed, "weights", width, replicate)
    return LinearDiagonalSSM(1, width, 1, reparam=reparam, a=config.a, b=config.b,
                             init_decay=init_decays(config, width, replicate), dtype=torch.float64, seed=seed)


def mse(model: LinearDiagonalSSM, x: torch.Tensor, y: torch.Tensor) -> float:
    """Test MSE; inf when the model's output overflows or is NaN (an unstable model's error is unbounded)."""
    import torch

    with torch.no_grad():
        err = float(torch.mean((model(x) - y) ** 2))
    return err if math.isfinite(err) else math.inf


def train(model, data, *, steps: int, lr: float, batch: int, rng: np.random.Generator, stop_at: float | None = None,
          monitor=None, every: int = 50) -> tuple[int, float]:
    """Adam on minibatch MSE for ``steps`` steps (or until the full training loss ≤ ``stop_at``, checked every
    10 steps). ``monitor(step, model)`` is called at step 0, every ``every`` steps and after the last step, after
    the gradient of that step is computed. Raises TrainingDiverged on a non-finite loss.

    Returns (steps taken, final full training loss).
    """
    import torch

    opt = torch.optim.Adam(model.parameters(), lr=lr)
    x, y = data["x"], data["y"]
    n = x.size(0)
    for step in range(steps):
        idx = torch.from_numpy(rng.choice(n, size=min(batch, n), replace=False))
        loss = torch.mean((model(x[idx]) - y[idx]) ** 2)
        if not torch.isfinite(loss):
            raise TrainingDiverged(f"non-finite training loss at step {step}")
        opt.zero_grad()
        loss.backward()
        if monitor is not None and step % every == 0:
            monitor(step, model)
        opt.step()
        if stop_at is not None and step % 10 == 9 and mse(model, x, y) <= stop_at:
            return step + 1, mse(model, x, y)
    final = mse(model, x, y)
    if not math.isfinite(final):
        raise TrainingDiverged(f"non-finite training loss after step {steps}")
    if monitor is not None:
        opt.zero_grad()
        torch.mean((model(x) - y) ** 2).backward()
        monitor(steps, model)
    return steps, final


def perturbation_errors(model, data, betas, repeats: int, rng: np.random.Generator, *,
                        only: str | None = None) -> list[float]:
    """E(β) = max over repeats of the test MSE after θ → θ + β·n/‖n‖_∞ for every parameter tensor (n Gaussian),
    or only for the parameter named ``only`` (e.g. the recurrent weights, "parametrizations.w.original")."""
    import torch

    params = {name: p.detach().clone() for name, p in model.named_parameters()}
    out = []
    try:
        for beta in betas:
            worst = 0.0
            for _ in range(repeats if beta > 0 else 1):
                with torch.no_grad():
                    for name, p in model.named_parameters():
                        if only is not None and name != only:
                            continue
                        noise = torch.from_numpy(rng.standard_normal(tuple(p.shape))).to(p.dtype)
                        p.copy_(params[name] + beta * noise / noise.abs().max().clamp_min(1e-300))
                worst = max(worst, mse(model, data["x_test"], data["y_test"]))
            out.append(worst)
    finally:
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(params[name])
    return out


def evaluate(task: Task[Config]) -> pd.DataFrame:
    """Tidy results of one (memory, f, replicate): one row per (width, β) with E(β), margin, max λ and training
    notes."""
    config = task.config
    (memory,), (reparam,) = config.memories, config.reparams
    return _one(config, memory, reparam, task.replicate, lf_data(memory, config, task.replicate))


def _one(config: Config, memory: str, reparam: str, rep: int, data) -> pd.DataFrame:
    import torch

    rows, previous = [], None
    for width in config.widths:
        start = time.perf_counter()
        model = make_model(config, reparam, width, rep)
        task = {"memory": memory, "reparam": reparam, "width": width, "replicate": rep}
        try:
            steps, train_loss = train(model, data, steps=config.steps, lr=config.lr, batch=config.batch,
                                      rng=task_rng(config.seed, "batches", memory, width, rep),
                                      stop_at=previous if config.match_loss else None)
            note = ""
        except TrainingDiverged as exc:  # recorded, and this width's perturbation test is meaningless
            rows.append({**task, "perturbed": "all", "beta": np.nan, "error": np.inf, "note": str(exc),
                         "seconds": time.perf_counter() - start})
            continue
        previous = train_loss
        errors = {"all": perturbation_errors(model, data, config.betas, config.repeats,
                                             task_rng(config.seed, "perturb", memory, reparam, width, rep)),
                  # a diagnostic beside the protocol (which perturbs every parameter): how much of E(β) is the
                  # eigenvalues' doing
                  "recurrent": perturbation_errors(model, data, config.betas, config.repeats,
                                                   task_rng(config.seed, "perturb-w", memory, reparam, width, rep),
                                                   only="parametrizations.w.original")}
        with torch.no_grad():
            margin, max_lam = float(model.stability_margin()), float(model.eigenvalues().max())
        seconds = time.perf_counter() - start
        for perturbed, errs in errors.items():
            for beta, err in zip(config.betas, errs, strict=True):
                rows.append({**task, "perturbed": perturbed, "beta": beta, "error": err, "train_loss": train_loss,
                             "steps_trained": steps, "margin": margin, "max_lambda": max_lam, "note": note,
                             "seconds": seconds})
    return pd.DataFrame(rows)


def _at(results: pd.DataFrame, beta: float, perturbed: str = "all") -> pd.DataFrame:
    """Rows at the β closest to ``beta`` (the grid is 1e-3·2^{k/2}), for one perturbation protocol."""
    ok = results[results["beta"].notna() & (results["perturbed"] == perturbed)]
    betas = np.unique(ok["beta"].to_numpy())
    chosen = betas[np.argmin(np.abs(betas - beta))]
    return ok[np.isclose(ok["beta"], chosen)]


def table(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (memory, f, width), medians over replicates: test MSE, E(0.064), E(0.256), margin, max λ."""
    keys = ["memory", "reparam", "width"]
    base = results.groupby(keys).agg(runs=("replicate", "nunique"), note=("note", lambda s: "; ".join(
        sorted({v for v in s.fillna("") if v}))))
    parts: list[pd.DataFrame | pd.Series] = [base]
    for label, beta in (("test_mse", 0.0), ("E(0.064)", 0.064), ("E(0.256)", 0.256)):
        parts.append(_at(results, beta).groupby(keys)["error"].median().rename(label))
    for label, beta in (("Ew(0.064)", 0.064), ("Ew(0.256)", 0.256)):  # w alone perturbed
        parts.append(_at(results, beta, "recurrent").groupby(keys)["error"].median().rename(label))
    first = results[(results["beta"] == 0.0) & (results["perturbed"] == "all")]
    parts.append(first.groupby(keys)[["margin", "max_lambda"]].median())
    return pd.concat(parts, axis=1).reset_index()


def _per_seed(results: pd.DataFrame, memory: str, beta: float | None, column: str = "error",
              perturbed: str = "all") -> pd.DataFrame:
    """(reparam, width) × replicate of a column, at one β (None: the β = 0 rows)."""
    rows = _at(results, 0.0 if beta is None else beta, perturbed)
    rows = rows[rows["memory"] == memory]
    return rows.pivot_table(index=["reparam", "width"], columns="replicate", values=column, aggfunc="first")


def _held(flags: np.ndarray) -> bool:
    """A cell counts if it holds in at least 2 of 3 seeds, i.e. in ≥ 2/3 of the seeds run."""
    flags = np.asarray(flags, bool)
    return bool(flags.size) and flags.sum() >= math.ceil(2 * flags.size / 3)


def _cell(per_seed: pd.DataFrame, reparam: str, width: int) -> np.ndarray:
    """The per-seed values of one (f, m) row of a ``_per_seed`` table."""
    return per_seed.xs((reparam, width)).to_numpy()


def _perturbation_rows(results: pd.DataFrame, widths: list, big: list, stable: list, fmt) -> list[dict]:
    """E(β) targets on polynomial memory. Gated on the recurrent perturbation (w alone, ``perturbed="recurrent"``):
    the paper's test perturbs the recurrent weights, and perturbing U and C as well measures the readout's
    sensitivity too. The same targets with every parameter perturbed are reported beside them ("all")."""
    out = []
    for protocol, label in (("recurrent", "w perturbed"), ("all", "every parameter perturbed, reported")):
        E = {beta: _per_seed(results, "pol", beta, perturbed=protocol) for beta in (0.064, 0.256)}
        if any(e.empty for e in E.values()):
            continue
        for m in big:
            e1, e2 = _cell(E[0.064], "direct", m), _cell(E[0.256], "direct", m)
            out.append(target_row(f"pol+direct m={m}: E(0.064) > 1 ({label})", fmt(e1), "> 1", _held(e1 > 1)))
            out.append(target_row(f"pol+direct m={m}: E(0.256) > 1e2 ({label})", fmt(e2), "> 1e2",
                                  _held(e2 > 1e2)))
        for f in stable:
            out.append(target_row(f"pol+{f}: E(0.064) < 0.05 at every m ({label})",
                                  "; ".join(f"m={m}: {fmt(_cell(E[0.064], f, m))}" for m in widths),
                                  "< 0.05 at each m", all(_held(_cell(E[0.064], f, m) < 0.05) for m in widths)))
            if 32 in widths:
                ratio = _cell(E[0.064], "direct", 32) / _cell(E[0.064], f, 32)
                out.append(target_row(f"pol m=32: E_direct(0.064) / E_{f}(0.064) ({label})", fmt(ratio), ">= 100",
                                      _held(ratio >= 100)))
            out.append(target_row(f"pol+{f}: E(0.256) finite, growth with m reported ({label})",
                                  "; ".join(f"m={m}: {fmt(_cell(E[0.256], f, m))}" for m in widths),
                                  "finite at each m",
                                  all(_held(np.isfinite(_cell(E[0.256], f, m))) for m in widths)))
    return out


def targets(results: pd.DataFrame) -> pd.DataFrame:
    """The curse-of-memory targets: measured values per seed, tolerance, and whether each held in ≥ 2 of 3 seeds.
    The perturbation targets are gated on the recurrent perturbation and reported for every parameter
    (``_perturbation_rows``)."""
    out = []

    def fmt(values) -> str:
        return format_values(values, digits=3)

    widths = sorted(results["width"].unique())
    big = [m for m in widths if m >= 32]
    stable = [f for f in ("exp", "softplus", "best") if f in set(results["reparam"])]
    if "pol" in set(results["memory"]) and "direct" in set(results["reparam"]):
        margin = _per_seed(results, "pol", None, "margin")
        lo, hi = _cell(margin, "direct", widths[0]), _cell(margin, "direct", widths[-1])
        out.append(target_row(f"pol+direct: margin decreases with m ({widths[0]} -> {widths[-1]})",
                              f"{fmt(lo)} -> {fmt(hi)}", "margin(m_max) < margin(m_min), 2 of 3 seeds",
                              _held(hi < lo)))
        out += _perturbation_rows(results, widths, big, stable, fmt)
        lam = _per_seed(results, "pol", None, "max_lambda")
        m = 32 if 32 in widths else widths[-1]
        gap_direct = 1 - _cell(lam, "direct", m)
        for f in stable:
            gap = 1 - _cell(lam, f, m)
            out.append(target_row(f"pol m={m}: 1 - max λ of {f} vs direct (approach the boundary)",
                                  f"{fmt(gap)} vs {fmt(gap_direct)}",
                                  "1 - λmax(f) <= 2 (1 - λmax(direct)) (our reading)", _held(gap <= 2 * gap_direct)))
    if "exp" in set(results["memory"]) and "direct" in set(results["reparam"]):
        margin = _per_seed(results, "exp", None, "margin")
        ratio = _cell(margin, "direct", widths[-1]) / _cell(margin, "direct", widths[0])
        out.append(target_row(f"exp+direct: margin({widths[-1]}) / margin({widths[0]})", fmt(ratio), "> 0.5",
                              _held(ratio > 0.5)))
    return pd.DataFrame(out)


def plot(results: pd.DataFrame, path: str | Path) -> list[Path]:
    """(a) E(β) per f (panels) and width (colours): polynomial memory (solid), exponential (dashed), and polynomial
    with only w perturbed (dotted); (b) stability margin versus width per f."""
    import matplotlib
    from matplotlib.lines import Line2D

    from wrec import plotting

    path = Path(path)
    both = results[results["beta"].notna()]
    ok = both[both["perturbed"] == "all"]
    reparams = [f for f in REPARAMS if f in set(ok["reparam"])]
    widths = sorted(ok["width"].unique())
    colors = matplotlib.colormaps["viridis"]
    with plotting.figure(path, figsize=(plotting.PAGE, 2.9)) as fig:
        axes = fig.subplots(1, len(reparams), sharey=True, squeeze=False)
        for ax, f in zip(axes[0], reparams, strict=True):
            for i, m in enumerate(widths):
                for memory, fmt, protocol in (("pol", "-", "all"), ("exp", "--", "all"), ("pol", ":", "recurrent")):
                    sel = both[(both.reparam == f) & (both.width == m) & (both.memory == memory) & (both.beta > 0)
                               & (both.perturbed == protocol)]
                    if sel.empty:
                        continue
                    curve = sel.groupby("beta")["error"].median()
                    y = np.clip(curve.to_numpy(), None, 1e30)
                    ax.plot(curve.index, y, fmt, color=colors(i / max(len(widths) - 1, 1) * 0.9))
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(f"f = {f}")
            ax.set_xlabel("perturbation β")
        axes[0, 0].set_ylabel("E(β): worst test MSE\n(median over seeds)")
        handles = [Line2D([], [], color=colors(i / max(len(widths) - 1, 1) * 0.9), lw=2) for i in range(len(widths))]
        handles += [Line2D([], [], color="0.3", ls=ls) for ls in ("-", "--", ":")]
        labels = [f"width m = {m}" for m in widths] + ["polynomial memory", "exponential memory",
                                                       "polynomial, w alone perturbed"]
        plotting.legend_below(fig, handles, labels, ncols=max(len(widths), 3))
    second = path.with_name(path.stem + "-margin.png")
    with plotting.figure(second, figsize=(plotting.COLUMN, 3.0)) as fig:
        ax = fig.subplots()
        first = ok[ok.beta == 0.0]
        for k, f in enumerate(reparams):
            for memory, fmt in (("pol", "o-"), ("exp", "s--")):
                sel = first[(first.reparam == f) & (first.memory == memory)]
                if sel.empty:
                    continue
                curve = sel.groupby("width")["margin"].median()
                ax.plot(curve.index, curve.to_numpy(), fmt, color=f"C{k}", label=f"{f}, {memory}")
        ax.set_xscale("log", base=2)
        ax.set_yscale("symlog", linthresh=1e-3)
        ax.set_xlabel("width m")
        ax.set_ylabel("stability margin min −f(w)")
        plotting.legend_below(fig, ncols=2)
    return [path, second]
