"""Spike coding networks as convex optimisers: supervised learning of the map y = x² (Mancoo, Keemink & Machens 2020).

A network of N = 12 neurons with one input and one output (G = 1, D = s Gᵀ, s = 0.2) computes the convex
piecewise-linear map maxout(x) = max(0, maxᵢ Fᵢx − Tᵢ) (``wrec.spiking.qp``). The authors' local rule, applied at
each spike (e_k = F_k x − T_k − G_k y_t; T_k += α e_k; F_k −= α e_k x), fits it to y = x² on 41 points in [−2, 2]
(a one-input, CPU-sized version of the paper's paraboloid fit, their Fig. 3; ``qp.ConvexLearning``). Measured:
the maxout relative RMSE on 401 test points per epoch, and the time-averaged spiking readout, which sits half a
spike (s/2) above maxout (the midpoint rule). A second figure shows the "bounding box" of a 2-D readout: the
polytope F x − G y ≤ T of a K = M = 2 network and the readout trajectory y(t) inside it; each task stores what
that figure draws (``box_rows``), so ``plot`` only reads results.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wrec import _checks, sweep
from wrec.experiments._protocol import Task, replicate_tasks
from wrec.spiking import qp

TOLERANCE_RMSE = 0.10  # maxout relative RMSE after 30 epochs (reference runs: 0.04–0.06); also the quick one, 10 epochs
# the bounding-box figure: ``box_network`` of BOX_NEURONS neurons at a constant input in a corner of the box (two
# active neurons, each firing ~5 spikes per time constant), spike size, leak (1/s), time step and trial length (s);
# the mean readout is taken over t ≥ BOX_SETTLE s
BOX_NEURONS, BOX_INPUT = 30, (-1.5, -1.5)
BOX_SPIKE_SIZE, BOX_LEAK, BOX_DT, BOX_DURATION, BOX_SETTLE = 0.2, 10.0, 1e-3, 2.0, 0.5


@dataclass(frozen=True)
class Config:
    """The CPU-sized fit of y = x² (``qp.ConvexLearning`` defaults) for ``replicates`` seeds; each seed is one task
    (``Task(config, replicate)``).

    ``schedule``: "parallel" (the 41 trials of an epoch on the batch axis of ``scn.step``, sharing F and T) or
    "shuffled" (the authors' loop, one trial after another). ``readout_points``: test inputs where the spiking
    readout is simulated (a subset of the 401 test points, evenly spaced, both ends included).
    """

    epochs: int = 30
    replicates: int = 3
    schedule: str = "parallel"
    readout_points: int = 401
    seed: int = 0

    def __post_init__(self) -> None:
        _checks.integer(self.epochs, "epochs", low=1)
        _checks.integer(self.replicates, "replicates", low=1)
        _checks.integer(self.readout_points, "readout_points", low=2, high=qp.ConvexLearning().n_test)
        if self.schedule not in qp.SCHEDULES:
            raise ValueError(f"schedule must be one of {qp.SCHEDULES}, got {self.schedule!r}")

    @classmethod
    def quick(cls, **overrides: Any) -> Config:
        """10 epochs, one seed (a few seconds); quick tolerance: RMSE ≤ 0.10 already after 10 epochs."""
        return cls(**{"epochs": 10, "replicates": 1, **overrides})

    def tasks(self) -> list[Task[Config]]:
        """One task per seed replicate."""
        return replicate_tasks(self, self.replicates)

    def rule(self) -> qp.ConvexLearning:
        """The learning parameters of one task."""
        return qp.ConvexLearning(epochs=self.epochs, schedule=self.schedule)


def evaluate(task: Task[Config]) -> pd.DataFrame:
    """Tidy rows of one replicate: ``record="epoch"`` (epoch, rmse, spikes), ``record="readout"`` (x, target,
    maxout, spiking: the learned network at the test points) and ``record="box"`` (``box_rows``, the bounding-box
    figure). Learning resumes from ``sweep.task_dir()``."""
    config, rep = task.config, task.replicate
    rule = config.rule()
    start = time.process_time()
    folder = sweep.task_dir()
    ckpt = None if folder is None else folder / f"convex-{rep}.npz"
    trace = qp.fit_convex(rule, seed=sweep.task_rng(config.seed, "spike-coding-convex", rep), checkpoint=ckpt)
    learn_s = time.process_time() - start
    F, T, G = trace.F[-1], trace.T[-1], trace.G
    X = rule.test_inputs()
    X = X[np.unique(np.round(np.linspace(0, len(X) - 1, config.readout_points)).astype(int))]
    spiking = rule.spiking_readout(F, T, X)[:, 0]
    epochs = pd.DataFrame({"record": "epoch", "replicate": rep, "epoch": trace.epochs, "rmse": trace.rmse,
                           "spikes": trace.spikes})
    readout = pd.DataFrame({"record": "readout", "replicate": rep, "x": X[:, 0], "target": rule.target(X)[:, 0],
                            "maxout": qp.maxout(X, F, G, T)[:, 0], "spiking": spiking})
    cpu_s = time.process_time() - start
    box = box_rows().assign(record="box", replicate=rep)
    return pd.concat([epochs, readout, box], ignore_index=True).assign(
        spike_size=rule.spike_size, learn_cpu_s=learn_s, cpu_s=cpu_s)


def _offsets(results: pd.DataFrame) -> pd.DataFrame:
    """Spiking mean readout minus maxout where maxout ≥ s (away from the kink at 0, where neurons fire rarely)."""
    r = results[results.record == "readout"]
    r = r[r.maxout >= r.spike_size]
    return r.assign(offset=r.spiking - r.maxout)


def table(results: pd.DataFrame) -> pd.DataFrame:
    """One row per replicate: RMSE at epochs 0, 5, 10 and the last; readout offset (mean, min, max); CPU time."""
    ep = results[results.record == "epoch"]
    off = _offsets(results)
    rows = []
    for rep, g in ep.groupby("replicate"):
        rmse = g.set_index("epoch")["rmse"]
        last = int(rmse.index.max())
        o = off[off.replicate == rep].offset
        row = {"replicate": rep, **{f"rmse@{e}": rmse.get(e, np.nan) for e in (0, 5, 10)},
               f"rmse@{last}": rmse[last], "offset": o.mean(), "offset_min": o.min(), "offset_max": o.max(),
               "s/2": g.spike_size.iloc[0] / 2, "learn_cpu_s": g.learn_cpu_s.iloc[0], "cpu_s": g.cpu_s.iloc[0]}
        rows.append(row)
    return pd.DataFrame(rows)


def targets(results: pd.DataFrame) -> pd.DataFrame:
    """The reproduction targets: maxout relative RMSE ≤ 0.10 after 30 epochs (quick: after 10); spiking mean
    readout offset s/2 ± s/4 (the midpoint rule), on average and at every test x with maxout ≥ s. The worst
    replicate is reported."""
    ep = results[results.record == "epoch"]
    last = int(ep.epoch.max())
    worst = ep[ep.epoch == last].rmse.max()
    off = _offsets(results)
    s = float(results.spike_size.iloc[0])
    mean_off = off.groupby("replicate").offset.mean()
    worst_mean = mean_off.iloc[np.argmax(np.abs(mean_off - s / 2))]
    worst_dev = float(np.max(np.abs(off.offset - s / 2)))
    quick = " (quick tolerance)" if last < 30 else ""
    rows = [
        {"target": f"maxout relative RMSE after {last} epochs{quick}", "measured": worst,
         "tolerance": f"<= {TOLERANCE_RMSE}", "held": bool(worst <= TOLERANCE_RMSE)},
        {"target": "mean of spiking readout - maxout (x with maxout >= s)", "measured": float(worst_mean),
         "tolerance": f"{s / 2:g} +- {s / 4:g}", "held": bool(abs(worst_mean - s / 2) <= s / 4)},
        {"target": "max over x of |spiking readout - maxout - s/2|", "measured": worst_dev,
         "tolerance": f"<= {s / 4:g}", "held": bool(worst_dev <= s / 4)},
    ]
    return pd.DataFrame(rows)


def box_network(seed: int = 1, n: int = 30) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A K = M = 2 network with G ≥ 0 (unit rows at angles U(0, π/2)), F ~ N(0, 1), T ~ U(0.5, 1.5): (F, G, T)."""
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0.0, np.pi / 2, n)
    G = np.column_stack([np.cos(angle), np.sin(angle)])
    return rng.standard_normal((n, 2)), G, rng.uniform(0.5, 1.5, n)


def box_rows() -> pd.DataFrame:
    """What the bounding-box figure draws, as rows (``part``, ``y1``, ``y2``): the polytope F x − G y ≤ T
    (``qp.polytope``) of ``box_network`` at the input ``BOX_INPUT``, clipped to y* ± 1 (``part="polytope"``, its
    vertices in order); each neuron's boundary G_i y = F_i x − T_i across that window (``"boundary"``, two rows
    per ``neuron``); the readout y(t) of a ``BOX_DURATION`` s trial from y = 0 (``"trajectory"``, ``time_s``); the
    QP's solution y*(T) (``"y_star"``) and the midpoint rule's y*(T_mid) (``"y_mid"``)."""
    F, G, T = box_network(n=BOX_NEURONS)
    x = np.array(BOX_INPUT)
    s = BOX_SPIKE_SIZE
    y = qp.readout_trajectory(F, G, T, x, spike_size=s, leak=BOX_LEAK, dt=BOX_DT, duration=BOX_DURATION)
    y_star = qp.readout_qp(F, G, T, x).y
    y_mid = qp.readout_qp(F, G, qp.midpoint_thresholds(T, -s * G @ G.T), x).y
    lo, hi = y_star - 1.0, y_star + 1.0
    V = qp.polytope(F, G, T, x, bounds=(lo, hi))
    grid = np.linspace(lo[0], hi[0], 2)
    lines = [(i, grid, (ci - g[0] * grid) / g[1]) for i, (g, ci) in enumerate(zip(G, F @ x - T, strict=True))
             if abs(g[1]) > 1e-12]
    parts = [
        pd.DataFrame({"part": "polytope", "y1": V[:, 0], "y2": V[:, 1]}),
        *(pd.DataFrame({"part": "boundary", "neuron": i, "y1": y1, "y2": y2}) for i, y1, y2 in lines),
        pd.DataFrame({"part": "trajectory", "time_s": np.arange(1, len(y) + 1) * BOX_DT, "y1": y[:, 0],
                      "y2": y[:, 1]}),
        pd.DataFrame({"part": ["y_star", "y_mid"], "y1": [y_star[0], y_mid[0]], "y2": [y_star[1], y_mid[1]]}),
    ]
    return pd.concat(parts, ignore_index=True)


def plot(results: pd.DataFrame, path: str | Path) -> list[Path]:
    """(a) target, learned maxout and spiking mean readout against x (first replicate); (b) RMSE over epochs;
    (c) the bounding box of a 2-D readout with its trajectory y(t) (``box_rows``; left out, with a warning, when
    the results hold none, e.g. results stored before they kept them)."""
    from wrec.plotting import COLUMN, figure, legend_below

    path = Path(path)
    s = float(results.spike_size.iloc[0])
    rep = results.replicate.min()
    r = results[(results.record == "readout") & (results.replicate == rep)].sort_values("x")
    ep = results[results.record == "epoch"]
    paths = [path, path.with_name(path.stem + "-rmse.png"), path.with_name(path.stem + "-box.png")]
    with figure(paths[0], figsize=(COLUMN, 3.2)) as fig:
        ax = fig.subplots()
        ax.plot(r.x, r.target, "k-", lw=2.5, alpha=0.3, label="target $x^2$")
        ax.plot(r.x, r.maxout, "C0-", lw=1.2, label="learned maxout $y^*(x)$")
        ax.plot(r.x, r.spiking, "C3.", ms=2.5, label=r"spiking mean readout $\bar y$")
        ax.plot(r.x, r.maxout + s / 2, "C3:", lw=0.8, label=f"maxout + s/2 (s = {s:g})")
        ax.set_xlabel("input x")
        ax.set_ylabel("readout y")
        legend_below(fig, ncols=2)

    with figure(paths[1], figsize=(COLUMN, 2.8)) as fig:
        ax = fig.subplots()
        for rep_i, g in ep.groupby("replicate"):
            ax.plot(g.epoch, g.rmse, marker=".", lw=1, label=f"replicate {rep_i}")
        ax.axhline(TOLERANCE_RMSE, color="k", ls="--", lw=0.8, label="target tolerance")
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("maxout relative RMSE")
        legend_below(fig, ncols=2)

    box = results[(results.record == "box") & (results.replicate == rep)]
    if box.empty:
        warnings.warn("no bounding-box figure: the results hold no box rows (results stored before evaluate kept "
                      "them lack them)", stacklevel=2)
        return paths[:2]
    _box_figure(box, paths[2])
    return paths


def _box_figure(box: pd.DataFrame, path: Path) -> None:
    """The polytope, the neurons' boundaries and the readout trajectory of ``box_rows``."""
    from wrec.plotting import COLUMN, figure, legend_below

    def part(name: str) -> pd.DataFrame:
        return box[box.part == name]

    V = part("polytope")[["y1", "y2"]].to_numpy()
    y = part("trajectory")[["y1", "y2"]].to_numpy()
    y_star = part("y_star")[["y1", "y2"]].to_numpy()[0]
    y_mid = part("y_mid")[["y1", "y2"]].to_numpy()[0]
    lo, hi = y_star - 1.0, y_star + 1.0
    settled = y[round(BOX_SETTLE / BOX_DT):]
    with figure(path, figsize=(COLUMN, 4.3)) as fig:
        ax = fig.subplots()
        ax.fill(V[:, 0], V[:, 1], color="C0", alpha=0.12, lw=0)
        for _, line in part("boundary").groupby("neuron", sort=False):
            ax.plot(line.y1.to_numpy(), line.y2.to_numpy(), color="0.7", lw=0.6)
        ax.plot(np.r_[V[:, 0], V[:1, 0]], np.r_[V[:, 1], V[:1, 1]], "C0-", lw=1.5,
                label="polytope $Fx - Gy \\leq T$")
        ax.plot(np.r_[0.0, y[:, 0]], np.r_[0.0, y[:, 1]], "C3-", lw=0.5, alpha=0.8, label="readout $y(t)$ from 0")
        ax.plot(*y_star, "ko", ms=5, label="$y^*(T)$")
        ax.plot(*y_mid, "kx", ms=6, label="$y^*(T_{mid})$")
        ax.plot(*settled.mean(0), "C3+", ms=9, mew=2, label=rf"$\bar y$ (t ≥ {BOX_SETTLE:g} s)")
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
        ax.set_aspect("equal")
        ax.set_xlabel("$y_1$")
        ax.set_ylabel("$y_2$")
        x1, x2 = BOX_INPUT
        ax.set_title(f"N = {BOX_NEURONS}, K = M = 2, G ≥ 0, s = {BOX_SPIKE_SIZE:g}, x = ({x1:g}, {x2:g})")
        legend_below(fig, ncols=2)
