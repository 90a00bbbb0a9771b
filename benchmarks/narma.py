"""NARMA-10 (Atiya & Parlos 2000) with ``make_pipeline(ESNTransformer(...), Ridge())`` against ReservoirPy's tutorial
model ``Reservoir(100, lr=0.5, sr=0.9) >> Ridge(ridge=1e-7)`` on the same reservoir.

The reservoir is ReservoirPy's (its W, sparse with density 0.1, and its Win, drawn from ``--seed``), given to
``ESNTransformer(W=W, w_in=Win, spectral_radius=None, leak=0.5)``: both then iterate
x_t = (1 − lr) x_{t−1} + lr tanh(W x_{t−1} + Win u_t). ReservoirPy fits with ``warmup=washout``; the pipeline gives
the washout rows weight 0 (``ridge__sample_weight``), the same readout. Both are then run on the test rows, which
continue the training stream. NRMSE = RMSE / σ(y) on the test rows.

Also printed: the memory capacity (Jaeger 2001, k = 1..100) of the same reservoir by ReservoirPy's
``observables.memory_capacity`` and by wrec (``state_matrix`` of the node, then ``capacity.memory_capacity``).

Every time is the minimum of ``--repeats`` calls after a warm-up call, all in this one process;
``ratio = reservoirpy_time / wrec_time``. The figure (target and both predictions on the first test steps) goes to
``--out`` (default ``runs/benchmarks``, git-ignored).

    python benchmarks/narma.py [--quick] [--repeats 3] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline

from _timing import best  # benchmarks/ is on sys.path when a script runs
from wrec.capacity import memory_capacity
from wrec.sklearn import ESNTransformer
from wrec.states import state_matrix
from wrec.tasks import narma10

RIDGE, LEAK, RHO, UNITS = 1e-7, 0.5, 0.9, 100


def nrmse(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.sqrt(np.mean((p - y) ** 2)) / np.std(y))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (CI smoke test)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", type=Path, default=Path("runs/benchmarks"))
    args = ap.parse_args()
    try:
        from reservoirpy.nodes import Reservoir
        from reservoirpy.nodes import Ridge as RpyRidge
        from reservoirpy.observables import memory_capacity as rpy_memory_capacity
    except ImportError:
        print("reservoirpy is not installed: nothing to compare against")
        return
    n_train, n_test, washout = (1000, 500, 100) if args.quick else (4000, 2000, 200)
    u = np.random.default_rng(args.seed).uniform(0.0, 0.5, n_train + n_test)
    y = narma10(u)
    U, Y = u[:, None], y[:, None]
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; NARMA-10, N = {UNITS}, lr = {LEAK}, "
          f"sr = {RHO}, ridge = {RIDGE}; {n_train} training rows (washout {washout}), {n_test} test rows")

    node = Reservoir(UNITS, lr=LEAK, sr=RHO, seed=args.seed)
    node.initialize(U[:1])
    W, w_in = node.W, node.Win.toarray()
    weight = np.r_[np.zeros(washout), np.ones(n_train - washout)]

    def ours() -> np.ndarray:
        pipe = make_pipeline(ESNTransformer(spectral_radius=None, W=W, w_in=w_in, leak=LEAK), Ridge(RIDGE))
        pipe.fit(U[:n_train], y[:n_train], ridge__sample_weight=weight)
        return pipe.predict(U[n_train:])

    def theirs() -> np.ndarray:
        model = Reservoir(W=W, Win=w_in, lr=LEAK) >> RpyRidge(ridge=RIDGE)
        model.fit(U[:n_train], Y[:n_train], warmup=washout)
        return model.run(U[n_train:])[:, 0]

    p_ours, p_theirs = ours(), theirs()
    t_ours = best(ours, args.repeats, warmup=ours)
    t_theirs = best(theirs, args.repeats, warmup=theirs)
    target = y[n_train:]
    print(f"  wrec pipeline (ESNTransformer >> sklearn Ridge), fit + predict: {t_ours:.3f} s; "
          f"NRMSE {nrmse(target, p_ours):.4f}")
    print(f"  reservoirpy Reservoir >> Ridge, fit + run:                     {t_theirs:.3f} s; "
          f"NRMSE {nrmse(target, p_theirs):.4f}")
    print(f"  same predictions: max |difference| {np.abs(p_ours - p_theirs).max():.1e}")
    print(f"  ratio = reservoirpy / wrec = {t_theirs / t_ours:.2f}")

    K, T = 100, (5000 if args.quick else 20_000)
    s = np.random.default_rng(args.seed + 1).uniform(-0.8, 0.8, T)
    mc_theirs = rpy_memory_capacity(Reservoir(W=W, Win=w_in, lr=LEAK) >> RpyRidge(ridge=1e-10), k_max=K,
                                    series=s[:, None])
    mc = memory_capacity(state_matrix(Reservoir(W=W, Win=w_in, lr=LEAK), s, washout=K), s[K:], K)
    print(f"  memory capacity, k = 1..{K}, T = {T}: reservoirpy (held-out 20 %) {mc_theirs:.2f}, "
          f"wrec (in-sample, bias-corrected, thresholded) {mc.total_from(1):.2f}")
    plot(target, p_ours, p_theirs, args.out)


def plot(target: np.ndarray, p_ours: np.ndarray, p_theirs: np.ndarray, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.arange(min(200, target.size))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 5), sharex=True, height_ratios=[3, 1])
    top.plot(steps, target[steps], "k", lw=1.5, label="NARMA-10 target")
    top.plot(steps, p_ours[steps], lw=1, label=f"wrec pipeline (NRMSE {nrmse(target, p_ours):.3f})")
    top.plot(steps, p_theirs[steps], "--", lw=1, label=f"reservoirpy (NRMSE {nrmse(target, p_theirs):.3f})")
    top.set_ylabel("y")
    top.legend(loc="upper right", fontsize=8)
    bottom.plot(steps, (p_ours - p_theirs)[steps], lw=1)
    bottom.set_ylabel("wrec − rpy")
    bottom.set_xlabel("test step")
    out.mkdir(parents=True, exist_ok=True)
    path = out / "narma10.png"
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    print(f"  figure: {path}")


if __name__ == "__main__":
    main()
