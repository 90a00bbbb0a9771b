"""Supervised local learning of a linear dynamical system in a spike coding network (Bourdoukan & Denève, NeurIPS 2015).

A teacher ẋ = A x + c (Boerlin et al. 2013's damped oscillator) supplies the error e = x − x̂. During learning it
is fed back into the network as the current K Dᵀe, and the slow weights follow the local rule
W ← W + η dt (Dᵀe) rᵀ from W₀ = 0 towards W* = Dᵀ(A + λI)D (``wrec.spiking.learning.learn_lds``). The ablation
K = 0 learns on the same input without the feedback. At checkpoints the weight error ‖W − W*‖_F/‖W*‖_F is recorded,
and at the evaluation times the learned W runs on its own (K = 0) on a fresh input, against the teacher
(autonomous relative RMSE). References on the same test input: the analytic W* network and W = 0.

Each (feedback gain, replicate) is one sweep task, so the ablation runs in parallel; both gains of a replicate see
the same training and test inputs (streams from ``(seed, replicate)``). Learning saves its state at every checkpoint
in ``sweep.task_dir()``, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wrec import _checks, sweep
from wrec.experiments._protocol import Task, replicate_tasks
from wrec.experiments._stats import target_row
from wrec.spiking.learning import LDSLearning, LDSTest, autonomous_test, effective_dynamics, learn_lds

# tolerances after 30 s of learning, and for the table the values of our float64 reference simulations ("ref";
# not paper figures: the paper's parameters are not known, these defaults are our choice)
FULL_TIME = 30.0
FULL_WEIGHT_TOL = 0.1
FULL_AUTONOMOUS_TOL = 0.1
OPTIMAL_TOL = 0.05  # the analytic W* network follows the teacher within this relative RMSE (reference: 0.016)
A_EFF_TOL = 1.0  # A_eff = (Dᵀ)⁺ W D⁺ − λI converges to A, entries within about 1 (reference simulations)
REF_WEIGHT = {(50.0, 5.0): 0.22, (50.0, 15.0): 0.11, (0.0, 15.0): 0.32, (50.0, 30.0): 0.053}
REF_AUTONOMOUS = {(50.0, 30.0): 0.05}
# --quick (10 s of learning), K = 50. Measured weight error 0.123–0.152 over 10 training seeds (the reference
# curve gives ≈ 0.15 at 10 s); autonomous error 0.05–0.23 over 6 training seeds × 4 test inputs of 2 s (a 10 s
# network is still ~15% off W*, so its autonomous error depends on the test input). K = 0 gives 0.33–0.41 and
# 0.45–1.2, so these thresholds still fail a broken rule or feedback.
QUICK_WEIGHT_TOL = 0.2
QUICK_AUTONOMOUS_TOL = 0.3
TRACE_STRIDE = 10  # test traces are stored every 10 steps (1 ms)


@dataclass(frozen=True)
class Config:
    """Learning runs of the supervised slow-weight rule: one task per (feedback gain K, replicate)
    (``Task(config narrowed to one K, replicate)``); the weight error every ``checkpoint_every`` s and the
    autonomous error at ``eval_times`` (s, within ``train_time``)."""

    feedbacks: tuple[float, ...] = (50.0, 0.0)
    replicates: int = 3
    train_time: float = FULL_TIME
    eval_times: tuple[float, ...] = (5.0, 15.0, 30.0)
    checkpoint_every: float = 0.5
    n: int = 20
    eta: float = 1.0
    test_time: float = 2.0
    test_discard: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.feedbacks:
            raise ValueError("feedbacks is empty: give at least one gain K (e.g. (50.0, 0.0))")
        for k in self.feedbacks:
            _checks.real(k, "feedbacks", low=0.0)
        _checks.integer(self.replicates, "replicates", low=1)
        train = _checks.real(self.train_time, "train_time", low=0.0, low_open=True)
        every = _checks.real(self.checkpoint_every, "checkpoint_every", low=0.0, low_open=True)
        if every > train:
            raise ValueError(f"checkpoint_every must be <= train_time = {train} s, got {every} s")
        if not self.eval_times:
            raise ValueError("eval_times is empty: give at least one time (s) for the autonomous test")
        for t in self.eval_times:
            _checks.real(t, "eval_times", low=0.0, high=train, low_open=True)
        self.rule(self.feedbacks[0])  # validates n, eta, test_time, test_discard

    @classmethod
    def quick(cls, **overrides: Any) -> Config:
        """10 s of learning, 2 replicates (about 4 s of CPU per task). The test stays 2 s: it costs a tenth of
        the learning, and shorter tests make the autonomous error noisier (0.06–0.22 with 1 s tests)."""
        return cls(**{"train_time": 10.0, "eval_times": (2.5, 5.0, 10.0), "replicates": 2, **overrides})

    def tasks(self) -> list[Task[Config]]:
        """One task per (K, replicate), K outermost."""
        return replicate_tasks(self, self.replicates, feedbacks=self.feedbacks)

    def rule(self, feedback: float) -> LDSLearning:
        return LDSLearning(n=self.n, feedback=feedback, eta=self.eta, train_time=self.train_time,
                           test_time=self.test_time, test_discard=self.test_discard)


def evaluate(task: Task[Config]) -> pd.DataFrame:
    """One row per checkpoint of one (feedback, replicate) learning run: weight error, training error and rate;
    the autonomous error (NaN except at ``eval_times``); the references; W (flattened) and, at ``eval_times``, the
    test traces."""
    config, rep = task.config, task.replicate
    (gain,) = config.feedbacks
    feedback = float(gain)
    folder = sweep.task_dir()
    path = None if folder is None else folder / f"lds-K{feedback:g}-{rep}.npz"
    rule = config.rule(feedback)
    grid = np.arange(0, rule.train_steps + 1, max(round(config.checkpoint_every / rule.dt), 1))
    evals = sorted({round(t / rule.dt) for t in config.eval_times})
    steps = np.unique(np.concatenate([grid, evals, [rule.train_steps]])).astype(np.int64)
    start = time.process_time()
    trace = learn_lds(rule, seed=sweep.task_rng(config.seed, rep, "learn"), checkpoints=steps.tolist(),
                      checkpoint=path)
    cpu = time.process_time() - start
    test_seed = sweep.task_seed(config.seed, rep, "test")  # one test input for every W of this replicate

    def test(W: np.ndarray) -> tuple[LDSTest | None, str]:
        try:
            return autonomous_test(rule, W, seed=np.random.default_rng(test_seed)), ""
        except RuntimeError as exc:  # an unstable learned W can drive a spike storm: recorded, not raised
            return None, f"autonomous test: {str(exc).split('.')[0]}"

    optimal, _ = test(trace.target)
    zero, _ = test(np.zeros_like(trace.target))
    rows = []
    for k, step in enumerate(trace.steps):
        row = {"feedback": feedback, "replicate": rep, "step": int(step), "time_s": step * rule.dt,
               "weight_error": trace.weight_error[k], "train_error": trace.train_error[k],
               "rate_hz": trace.rate[k], "autonomous_error": np.nan, "note": "",
               "autonomous_error_optimal": np.nan if optimal is None else optimal.error,
               "autonomous_error_zero": np.nan if zero is None else zero.error,
               "learning_cpu_s": cpu, "resumed_from_s": trace.resumed_from * rule.dt, "n": rule.n, "j": rule.j,
               "W": trace.W[k].ravel().tolist(), "test_x": None, "test_xhat": None}
        if step in evals:
            result, note = test(trace.W[k])
            row["note"] = note
            if result is not None:
                row["autonomous_error"] = result.error
                row["test_x"] = result.x[TRACE_STRIDE - 1::TRACE_STRIDE].ravel().tolist()
                row["test_xhat"] = result.xhat[TRACE_STRIDE - 1::TRACE_STRIDE].ravel().tolist()
        rows.append(row)
    return pd.DataFrame(rows)


def _rule_of(results: pd.DataFrame) -> LDSLearning:
    n = int(results.n.iloc[0]) if "n" in results else 20
    return LDSLearning(n=n)


def _final(results: pd.DataFrame) -> pd.DataFrame:
    return results[results.time_s == results.groupby(["feedback", "replicate"]).time_s.transform("max")]


def _evaluated(results: pd.DataFrame) -> pd.DataFrame:
    return results[results.test_x.notna() | (results.note.fillna("") != "")]


def a_eff_error(row: pd.Series, rule: LDSLearning) -> float:
    """max |A_eff − A| over entries, for the W of one result row."""
    W = np.reshape(np.asarray(row["W"], dtype=float), (rule.n, rule.n))
    return float(np.max(np.abs(effective_dynamics(W, rule.decoder(), rule.leak) - rule.system())))


def table(results: pd.DataFrame) -> pd.DataFrame:
    """Mean (and worst) over replicates at each evaluation time, per feedback gain, with the reference-simulation values
    (``REF_WEIGHT``, ``REF_AUTONOMOUS``) and the references on the same test inputs (analytic W*, W = 0)."""
    rule = _rule_of(results)
    ev = _evaluated(results).copy()
    ev["A_eff_error"] = [a_eff_error(row, rule) for _, row in ev.iterrows()]
    g = ev.groupby(["feedback", "time_s"])
    out = g.agg(replicates=("replicate", "nunique"), weight_error=("weight_error", "mean"),
                weight_error_max=("weight_error", "max"), autonomous_error=("autonomous_error", "mean"),
                autonomous_error_max=("autonomous_error", "max"), A_eff_error=("A_eff_error", "mean"),
                rate_hz=("rate_hz", "mean"), train_error=("train_error", "mean"))
    out = out.reset_index().sort_values(["feedback", "time_s"], ascending=[False, True])
    key = list(zip(out.feedback.astype(float), out.time_s.round(6), strict=True))
    out["ref_weight_error"] = [REF_WEIGHT.get(k, np.nan) for k in key]
    out["ref_autonomous_error"] = [REF_AUTONOMOUS.get(k, np.nan) for k in key]
    out["autonomous_W*"] = results.autonomous_error_optimal.mean()
    out["autonomous_W=0"] = results.autonomous_error_zero.mean()
    out["learning_cpu_s"] = out.feedback.map(results.groupby("feedback").learning_cpu_s.mean())
    return out.reset_index(drop=True)


def targets(results: pd.DataFrame) -> pd.DataFrame:
    """Weight error ≤ 0.1 and autonomous error ≤ 0.1 after 30 s of learning (--quick, 10 s: weight error ≤ 0.2
    and autonomous error ≤ 0.3, see ``QUICK_WEIGHT_TOL``), with the largest K > 0 as "feedback"; one measured value
    per replicate."""
    rule = _rule_of(results)
    final = _final(results)
    T = float(final.time_s.min())
    full = T >= FULL_TIME - 1e-9
    w_tol, a_tol = (FULL_WEIGHT_TOL, FULL_AUTONOMOUS_TOL) if full else (QUICK_WEIGHT_TOL, QUICK_AUTONOMOUS_TOL)
    tag = "" if full else " (quick)"
    rows = []
    gains = sorted(final.feedback.unique())
    k_fb = gains[-1]
    fb = final[final.feedback == k_fb].set_index("replicate").sort_index()
    if k_fb > 0:
        rows.append(target_row(f"weight error after {T:g} s, K = {k_fb:g}{tag}", fb.weight_error, f"≤ {w_tol}",
                               fb.weight_error <= w_tol))
        rows.append(target_row(f"autonomous error after {T:g} s, K = {k_fb:g}{tag}", fb.autonomous_error,
                               f"≤ {a_tol}", fb.autonomous_error <= a_tol))
        if full:  # "within about 1" is said of the converged network; at 10 s A_eff is still ~1 off (table)
            a_err = np.array([a_eff_error(row, rule) for _, row in fb.iterrows()])
            rows.append(target_row(f"max |A_eff − A| after {T:g} s, K = {k_fb:g} (target: within about 1)",
                                   a_err, f"≤ {A_EFF_TOL:g}", a_err <= A_EFF_TOL))
    if 0.0 in gains and k_fb > 0:
        ev = _evaluated(results)
        both = ev.pivot_table(index=["replicate", "time_s"], columns="feedback", values="weight_error")
        ratio = (both[k_fb] / both[0.0]).groupby("replicate").max()
        times = ", ".join(f"{t:g}" for t in sorted(ev.time_s.unique()))
        rows.append(target_row(f"feedback beats K = 0: worst weight-error ratio K={k_fb:g}/K=0 over {times} s",
                               ratio, "< 1", ratio < 1))
        none = final[final.feedback == 0.0].set_index("replicate").sort_index()
        ratio = fb.autonomous_error / none.autonomous_error
        rows.append(target_row(f"feedback beats K = 0: autonomous-error ratio after {T:g} s", ratio, "< 1",
                               ratio < 1))
    opt = results.groupby("replicate").autonomous_error_optimal.first()
    rows.append(target_row("analytic W* network, autonomous error", opt, f"≤ {OPTIMAL_TOL}",
                           opt <= OPTIMAL_TOL))
    return pd.DataFrame(rows)


def plot(results: pd.DataFrame, path: str | Path) -> list[Path]:
    """(main) weight and autonomous error over training for each K; x against x̂ in the autonomous test after
    learning with and without feedback; learned W against W*; A_eff against A over training."""
    path = Path(path)
    rule = _rule_of(results)
    return [_plot_errors(results, path), _plot_traces(results, rule, path.with_name(path.stem + "-test.png")),
            _plot_weights(results, rule, path.with_name(path.stem + "-weights.png")),
            _plot_a_eff(results, rule, path.with_name(path.stem + "-A.png"))]


def _color(feedback: float) -> str:
    return "C0" if feedback > 0 else "C3"


def _by_feedback(results: pd.DataFrame) -> list[tuple[float, pd.DataFrame]]:
    """(K, its rows) for each feedback gain K, ascending."""
    return [(float(k), results[results.feedback == k]) for k in np.sort(results.feedback.unique())]


def _plot_errors(results: pd.DataFrame, path: Path) -> Path:
    from wrec.plotting import PAGE, figure, legend_below

    with figure(path, figsize=(PAGE, 3.0)) as fig:
        axes = fig.subplots(1, 2)
        for feedback, group in _by_feedback(results):
            color, label = _color(feedback), f"K = {feedback:g}"
            for _, rep in group.groupby("replicate"):
                run = rep.sort_values("time_s")
                axes[0].plot(run.time_s, run.weight_error, color=color, lw=0.6, alpha=0.4)
                ev = run[run.autonomous_error.notna()]
                axes[1].plot(ev.time_s, ev.autonomous_error, color=color, lw=0.6, alpha=0.4, marker=".")
            mean = group.groupby("time_s").weight_error.mean()
            axes[0].plot(mean.index, mean.to_numpy(), color=color, lw=1.6, label=label)
            ev_mean = group[group.autonomous_error.notna()].groupby("time_s").autonomous_error.mean()
            axes[1].plot(ev_mean.index, ev_mean.to_numpy(), color=color, lw=1.6, marker="o", ms=3, label=label)
        for (feedback, t), ref in REF_WEIGHT.items():
            if feedback in set(results.feedback) and t <= results.time_s.max():
                axes[0].plot(t, ref, "x", color=_color(feedback), ms=6)
        axes[0].plot([], [], "kx", label="reference simulation")
        for value, style, label in ((results.autonomous_error_optimal.mean(), "--", "analytic W*"),
                                    (results.autonomous_error_zero.mean(), ":", "W = 0")):
            axes[1].axhline(value, color="0.4", ls=style, lw=1, label=label)
        for ax, label in ((axes[0], "‖W − W*‖ / ‖W*‖"), (axes[1], "autonomous relative RMSE")):
            ax.set_yscale("log")
            ax.set_xlabel("learning time (s)")
            ax.set_ylabel(label)
        legend_below(fig, ncols=5)
    return path


def _plot_traces(results: pd.DataFrame, rule: LDSLearning, path: Path) -> Path:
    from wrec.plotting import PAGE, figure, legend_below

    ev = _final(results)
    ev = ev[ev.test_x.notna() & (ev.replicate == ev.replicate.min())].sort_values("feedback", ascending=False)
    with figure(path, figsize=(PAGE, 1.9 * max(len(ev), 1) + 0.4)) as fig:
        axes = fig.subplots(max(len(ev), 1), 1, squeeze=False)
        for ax, (_, row) in zip(axes[:, 0], ev.iterrows(), strict=False):
            x = np.reshape(np.asarray(row.test_x, dtype=float), (-1, rule.j))
            xhat = np.reshape(np.asarray(row.test_xhat, dtype=float), (-1, rule.j))
            t = np.arange(1, len(x) + 1) * TRACE_STRIDE * rule.dt
            for d in range(rule.j):
                ax.plot(t, x[:, d], color=f"C{d}", lw=0.8, label=f"x{d + 1} (teacher)")
                ax.plot(t, xhat[:, d], color=f"C{d}", lw=1.4, ls="--", alpha=0.8, label=f"x̂{d + 1} (network)")
            ax.axvspan(0, rule.test_discard, color="0.9", lw=0)
            ax.set_title(f"learned {row.time_s:g} s with K = {row.feedback:g}, tested without feedback: "
                         f"relative RMSE {row.autonomous_error:.3f}")
            ax.set_ylabel("x, x̂")
        axes[-1, 0].set_xlabel("test time (s)")
        legend_below(fig, ncols=2 * rule.j)
    return path


def _plot_weights(results: pd.DataFrame, rule: LDSLearning, path: Path) -> Path:
    from wrec.plotting import PAGE, figure, legend_below

    final = _final(results)
    final = final[final.replicate == final.replicate.min()].sort_values("feedback", ascending=False)
    W_star = rule.target_weights()
    mats = [("W*", W_star)] + [(f"learned, K = {r.feedback:g}", np.reshape(r.W, (rule.n, rule.n)))
                               for _, r in final.iterrows()]
    lim = max(float(np.abs(m).max()) for _, m in mats)
    with figure(path, figsize=(PAGE, 2.6)) as fig:
        axes = fig.subplots(1, len(mats) + 1)
        for ax, (title, m) in zip(axes, mats, strict=False):
            image = ax.imshow(m, cmap="RdBu_r", vmin=-lim, vmax=lim)
            ax.set_title(title)
            ax.set_xticks([])
            ax.set_yticks([])
        fig.colorbar(image, ax=list(axes[:len(mats)]), fraction=0.02)
        ax = axes[-1]
        for (title, m), (_, r) in zip(mats[1:], final.iterrows(), strict=True):
            ax.scatter(W_star.ravel(), m.ravel(), s=3, lw=0, alpha=0.6, color=_color(r.feedback), label=title)
        ax.plot([-lim, lim], [-lim, lim], color="0.5", lw=0.8)
        ax.set_xlabel("W*")
        ax.set_ylabel("learned W")
        legend_below(fig, ncols=len(mats) - 1, markerscale=3)
    return path


def _plot_a_eff(results: pd.DataFrame, rule: LDSLearning, path: Path) -> Path:
    from wrec.plotting import PAGE, figure, legend_below

    A, D = rule.system(), rule.decoder()
    first = results[results.replicate == results.replicate.min()]
    with figure(path, figsize=(PAGE * 0.8, 4.2)) as fig:
        axes = fig.subplots(A.shape[0], A.shape[1], sharex=True, squeeze=False)
        for feedback, group in _by_feedback(first):
            run = group.sort_values("time_s")
            series = np.array([effective_dynamics(np.reshape(w, (rule.n, rule.n)), D, rule.leak) for w in run.W])
            for (a, b), ax in np.ndenumerate(axes):
                ax.plot(run.time_s, series[:, a, b], color=_color(feedback), lw=1.2, label=f"K = {feedback:g}")
        for (a, b), ax in np.ndenumerate(axes):
            ax.axhline(A[a, b], color="k", ls="--", lw=0.8, label="A")
            ax.set_title(f"A_eff[{a + 1},{b + 1}]")
        for ax in axes[-1]:
            ax.set_xlabel("learning time (s)")
        legend_below(fig)
    return path
