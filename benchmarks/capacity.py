"""Capacity evaluation: one decomposition of the states for all targets, against one least-squares fit per target.

(1) IPC up to degree 3 of an N = 200 ESN driven by u ~ U[−1, 1], T = 10⁵, delays ≤ 50 (``max_delay=50``,
    Surrogate thresholds): wall time of the whole ``ipc(...)`` table, and its cost per target against a loop
    of ``np.linalg.lstsq`` of the centred states against each centred target (R²) on the same rows. The loop
    is timed on a sample of ~30 targets spread over every target shape and extrapolated to the full target
    count. Goal: ratio ≥ 20.
(2) Memory capacity, N = 200, T = 2·10⁴, max_delay = 400: wrec ``run`` + ``memory_capacity`` against
    ``reservoirpy.observables.memory_capacity(Reservoir >> Ridge(ridge=1e-4), k_max=400)`` on the same
    reservoir (reservoirpy's W, Win) and the same input series (so the same T; its own train/test split).

Every time is the minimum of ``--repeats`` calls after a warm-up call, all in this one process;
``ratio = baseline_time / wrec_time``. The machine may be shared: the load average is printed.

    python benchmarks/capacity.py [--quick] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from _timing import best  # benchmarks/ is on sys.path when a script runs
from wrec.capacity import decompose, ipc, memory_capacity
from wrec.capacity.basis import orthonormal
from wrec.capacity.targets import build, delay_sets
from wrec.reservoir import ESN, run
from wrec.weights import gaussian, input_weights

try:
    from reservoirpy.nodes import Reservoir, Ridge
    from reservoirpy.observables import memory_capacity as rpy_memory_capacity
except ImportError:  # optional cross-check library
    Reservoir = None



def lstsq_r2(Xc: np.ndarray, Z: np.ndarray) -> np.ndarray:
    """Baseline: one least-squares readout per target column of Z (centred in place), in-sample R²."""
    Z -= Z.mean(axis=0)
    r2 = np.empty(Z.shape[1])
    for j in range(Z.shape[1]):
        coef = np.linalg.lstsq(Xc, Z[:, j], rcond=None)[0]
        fit = Xc @ coef
        r2[j] = fit @ fit / (Z[:, j] @ Z[:, j])
    return r2


def bench_ipc(N: int, T: int, K: int, n_sample: int, repeats: int) -> None:
    u = np.random.default_rng(0).uniform(-1.0, 1.0, T + 500)
    model = ESN(gaussian(N, seed=1, spectral_radius=0.9), input_scale=0.5, w_in=input_weights(N, seed=2))
    X, u = run(model, u, washout=500), u[500:]
    sets = [ts for d in (1, 2, 3) for ts in delay_sets(d, K)]
    n_targets = sum(len(ts) for ts in sets)
    print(f"(1) IPC, degree <= 3, delays <= {K}: N = {N}, T = {T} (rows used {T - K}), {n_targets} targets")
    result = None

    def wrec_ipc():
        nonlocal result
        result = ipc(X, u, max_degree=3, max_delay=K)

    t_ipc = best(wrec_ipc, repeats)
    t_raw = best(lambda: ipc(X, u, max_degree=3, max_delay=K, threshold=None), repeats)
    # the sample: targets evenly spaced within every shape, about n_sample in all, with their rows in the table
    basis, Xc = orthonormal(u, 3), X[K:] - X[K:].mean(axis=0)
    per_set = max(1, n_sample // len(sets))
    cols, rows, start = [], [], 0
    for ts in sets:
        for i in np.linspace(0, len(ts) - 1, per_set).astype(int):
            cols.append(build(basis, ts, i, i + 1, K))
            rows.append(start + i)
        start += len(ts)
    Z = np.hstack(cols)
    t_loop = best(lambda: lstsq_r2(Xc, Z.copy()), repeats) / Z.shape[1]
    diff = np.abs(lstsq_r2(Xc, Z.copy()) - result.table["capacity"].to_numpy()[rows]).max()
    dec = decompose(X[K:])
    t_proj = best(lambda: dec.capacities(Z.copy()), repeats) / Z.shape[1]
    print(f"  wrec ipc(...) whole table (decomposition, targets, surrogates): {t_ipc:8.2f} s  "
          f"= {t_ipc / n_targets * 1e3:.3f} ms/target; total {result.total:.2f}, rank {result.rank}")
    print(f"  (of which surrogate thresholds: {t_ipc - t_raw:.2f} s; ipc(..., threshold=None) {t_raw:.2f} s)")
    print(f"  lstsq loop, timed on {Z.shape[1]} sampled targets: {t_loop * 1e3:.2f} ms/target, "
          f"extrapolated to {n_targets} targets: {t_loop * n_targets:8.1f} s")
    print(f"  same capacities: max |lstsq R^2 - ipc capacity| over the sample {diff:.1e}")
    print(f"  (projection alone, once decomposed: {t_proj * 1e3:.4f} ms/target)")
    print(f"  ratio = lstsq loop / wrec ipc (per target) = {t_loop * n_targets / t_ipc:.1f}   (goal >= 20)")


def bench_mc(N: int, T: int, K: int, repeats: int) -> None:
    print(f"(2) memory capacity: N = {N}, T = {T}, max_delay = {K}")
    u = np.random.default_rng(3).uniform(-1.0, 1.0, T)
    if Reservoir is not None:  # reservoirpy's reservoir, so that both sides simulate the same network
        res = Reservoir(N, sr=1.0, seed=1)
        res.initialize(u[:1, None])
        W, w_in = res.W, np.asarray(res.Win.todense() if hasattr(res.Win, "todense") else res.Win)[:, 0]
    else:
        W, w_in = gaussian(N, seed=1, spectral_radius=1.0), input_weights(N, seed=2)
    model = ESN(W, w_in=w_in)
    X = run(model, u)
    mc = None

    def wrec_mc():
        nonlocal mc
        mc = memory_capacity(run(model, u), u, K)

    t_wrec = best(wrec_mc, repeats)
    t_only = best(lambda: memory_capacity(X, u, K), repeats)
    print(f"  wrec run + memory_capacity: {t_wrec:.2f} s (memory_capacity alone {t_only:.2f} s); "
          f"MC = {mc.total:.2f}, rank {mc.rank}")
    if Reservoir is None:
        print("  reservoirpy is not installed: comparison skipped")
        return
    out = None

    def rpy_mc():
        nonlocal out
        out = rpy_memory_capacity(res >> Ridge(ridge=1e-4), k_max=K, series=u[:, None], seed=1)

    t_rpy = best(rpy_mc, repeats)
    print(f"  reservoirpy memory_capacity (fit on 80%, R^2 on 20%, k = 1..{K}): {t_rpy:.2f} s; MC = {out:.2f}")
    print(f"  ratio = reservoirpy / wrec (run + memory_capacity) = {t_rpy / t_wrec:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (CI smoke test)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}")
    if args.quick:
        bench_ipc(N=50, T=5_000, K=10, n_sample=30, repeats=args.repeats)
        bench_mc(N=50, T=2_000, K=40, repeats=args.repeats)
    else:
        bench_ipc(N=200, T=100_000, K=50, n_sample=30, repeats=args.repeats)
        bench_mc(N=200, T=20_000, K=400, repeats=args.repeats)


if __name__ == "__main__":
    main()
