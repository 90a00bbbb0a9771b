"""Reservoir simulation: batched wrec runs against one-reservoir-at-a-time loops and reservoirpy 0.4.

(a) Spectral-radius grid: B = 64 ESNs sharing one Gaussian base matrix (N = 500, T = 10⁴, u ~ U[−1, 1]),
    ``ESN(W, recurrent_scale=rhos)`` = one (B, N) × (N, N) GEMM per step, in float32 and float64, against
    wrec ``run`` on each reservoir separately and against reservoirpy's ``Reservoir`` (same W·ρ, Win, zero
    bias) run one at a time with ``.run``. Also the GEMM GFLOP/s of the batched run next to a bare NumPy
    GEMM loop of the same shape.
(b) 64 distinct sparse reservoirs (density 0.1, reservoirpy's default), same N and T: wrec with W = a list
    of 64 sparse matrices (one block-diagonal sparse product per step) against reservoirpy one at a time.

Goals: (a) ≥ 2.5·10⁵ reservoir-steps/s in float32 and ≥ 4× reservoirpy; (b) ≥ 1.5× reservoirpy.
Every time is the minimum of ``--repeats`` runs after a warm-up on a short input, all in this one process;
``ratio = baseline_time / wrec_time``. The machine may be shared: the load average is printed; OpenBLAS's
two threads stall when another process holds a core, so ``OPENBLAS_NUM_THREADS=1`` gives steadier figures there.

    python benchmarks/reservoir.py [--quick] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from _timing import best  # benchmarks/ is on sys.path when a script runs
from wrec.reservoir import ESN, run
from wrec.weights import gaussian, input_weights, sparse

try:
    from reservoirpy.nodes import Reservoir
except ImportError:  # optional cross-check library
    Reservoir = None


def best_on(fn, u: np.ndarray, repeats: int) -> float:
    """Minimum wall time of fn(u) over ``repeats`` calls, after a warm-up call on the first 100 steps."""
    return best(lambda: fn(u), repeats, warmup=lambda: fn(u[:100]))


def rpy_loop(mats, w_in: np.ndarray):
    """reservoirpy 0.4: one ``Reservoir`` node per matrix, each run over the input with ``.run``."""
    nodes = [Reservoir(W=W, Win=w_in[:, None], bias=0.0, lr=1.0, input_dim=1) for W in mats]

    def go(u):
        for node in nodes:
            node.run(u[:, None])
            node.reset()  # back to the zero state for the next timing

    return go


def wrec_loop(models):
    def go(u):
        for m in models:
            run(m, u)

    return go


def report(label: str, seconds: float, steps: int) -> None:
    print(f"  {label:<44} {seconds:8.2f} s  {steps / seconds:10.3g} reservoir-steps/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (CI smoke test)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    N, B, T = (200, 16, 1000) if args.quick else (500, 64, 10_000)
    steps = B * T
    u = np.random.default_rng(0).uniform(-1.0, 1.0, T)
    w_in = input_weights(N, seed=1)
    print(f"N = {N}, B = {B} reservoirs, T = {T} steps ({steps:.3g} reservoir-steps); "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}")
    if Reservoir is None:
        print("reservoirpy is not installed: its comparisons are skipped")

    print("(a) spectral-radius grid over one shared Gaussian W, rho in [0.1, 1.3]")
    W = gaussian(N, seed=0, spectral_radius=1.0)
    rhos = np.linspace(0.1, 1.3, B)
    batched = {dt: ESN(W, recurrent_scale=rhos, w_in=w_in, dtype=dt) for dt in (np.float32, np.float64)}
    t_b = {dt: best_on(lambda u, m=m: run(m, u), u, args.repeats) for dt, m in batched.items()}
    t_loop = best_on(wrec_loop([ESN(W, recurrent_scale=r, w_in=w_in) for r in rhos]), u, args.repeats)
    t_rpy = best_on(rpy_loop([r * W for r in rhos], w_in), u, args.repeats) if Reservoir else None
    report("wrec batched float32 (one GEMM per step)", t_b[np.float32], steps)
    report("wrec batched float64", t_b[np.float64], steps)
    report("wrec one reservoir at a time, float64", t_loop, steps)
    if t_rpy:
        report("reservoirpy Reservoir.run one at a time", t_rpy, steps)
        node = Reservoir(W=rhos[-1] * W, Win=w_in[:, None], bias=0.0, input_dim=1)
        diff = np.abs(node.run(u[:200, None]) - run(batched[np.float64], u[:200])[-1]).max()
        print(f"  same states as reservoirpy: max |difference| {diff:.1e} over 200 steps")
    print(f"  ratio = loop / batched:       float64 {t_loop / t_b[np.float64]:.2f}, "
          f"float32 {t_loop / t_b[np.float32]:.2f}  (float64 / float32 {t_b[np.float64] / t_b[np.float32]:.2f})")
    if t_rpy:
        print(f"  ratio = reservoirpy / wrec:   float64 {t_rpy / t_b[np.float64]:.2f}, "
              f"float32 {t_rpy / t_b[np.float32]:.2f}   (goal >= 4)")
    print(f"  float32 reservoir-steps/s: {steps / t_b[np.float32]:.3g}   (goal >= 2.5e5)")
    flop = 2.0 * B * N * N  # per step
    for dt in (np.float32, np.float64):
        X, Wt = np.ones((B, N), dt), np.ascontiguousarray(W.T, dtype=dt)
        Y = np.empty_like(X)

        def gemm(u, X=X, Wt=Wt, Y=Y):
            for _ in range(u.size):
                np.matmul(X, Wt, out=Y)

        t_gemm = best_on(gemm, u[: min(T, 2000)], args.repeats) / min(T, 2000)
        print(f"  GEMM ({B}, {N}) x ({N}, {N}) {np.dtype(dt).name}: wrec run {flop * T / t_b[dt] / 1e9:6.1f} GFLOP/s, "
              f"bare numpy matmul loop {flop / t_gemm / 1e9:6.1f} GFLOP/s")
    del batched

    print(f"(b) {B} distinct sparse reservoirs, density 0.1, spectral radius 0.9")
    mats = [sparse(N, 0.1, spectral_radius=0.9, seed=10 + i) for i in range(B)]
    listed = {dt: ESN(mats, w_in=w_in, dtype=dt) for dt in (np.float32, np.float64)}
    t_s = {dt: best_on(lambda u, m=m: run(m, u), u, args.repeats) for dt, m in listed.items()}
    t_srpy = best_on(rpy_loop(mats, w_in), u, args.repeats) if Reservoir else None
    report("wrec list of sparse W, float32", t_s[np.float32], steps)
    report("wrec list of sparse W, float64", t_s[np.float64], steps)
    if t_srpy:
        report("reservoirpy Reservoir.run one at a time", t_srpy, steps)
        print(f"  ratio = reservoirpy / wrec:   float64 {t_srpy / t_s[np.float64]:.2f}, "
              f"float32 {t_srpy / t_s[np.float32]:.2f}   (goal >= 1.5)")


if __name__ == "__main__":
    main()
