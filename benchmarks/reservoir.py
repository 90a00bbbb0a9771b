"""Reservoir simulation: the loop against a plain in-place NumPy loop, streaming, batched runs, reservoirpy 0.4.

(0) The loop: N = 500, B = 64 ESNs sharing W (a grid of s), T = 1 500, ``run`` against the plain in-place NumPy
    loop doing the same work (GEMM into a buffer, input term in place, ``np.tanh(out=)``, copy into the record),
    timed alternately in this process. Goals: ratio = loop / run ≥ 1.4 in float64 (GEMM-bound), ≥ 1.25 in float32.
    Then ``run_blocks`` at T = 10⁴ (blocks of 1 000 steps, no full record) against ``run`` at T = 1 500: goal no
    drop in reservoir-steps/s. ``loop_figures()`` returns these figures as a dict.

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

    python benchmarks/reservoir.py [--quick] [--repeats 3] [--loop-only]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from _timing import best  # benchmarks/ is on sys.path when a script runs
from wrec.reservoir import ESN, run, run_blocks
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


GOALS = {"float64": 1.4, "float32": 1.25}


def numpy_loop(W: np.ndarray, rhos: np.ndarray, w_in: np.ndarray, dtype):
    """The plain in-place NumPy loop of ``ESN(W, recurrent_scale=rhos)``: fn(u) -> states (B, T, N)."""
    Wt, s, wi = np.ascontiguousarray(W.T, dtype), rhos.astype(dtype)[:, None], w_in.astype(dtype)
    B, N = len(rhos), len(w_in)

    def go(u):
        x, pre, drive = np.zeros((B, N), dtype), np.empty((B, N), dtype), np.empty((B, N), dtype)
        states = np.empty((B, len(u), N), dtype)
        for t, ut in enumerate(u.astype(dtype)):
            np.matmul(x, Wt, out=pre)
            np.multiply(pre, s, out=pre)
            np.multiply(ut, wi, out=drive)
            pre += drive
            np.tanh(pre, out=x)
            states[:, t] = x
        return states

    return go


def alternating_best(fns: dict, repeats: int) -> dict:
    """Minimum wall time of each fn() over ``repeats`` rounds that take the fns in turn (so load hits all alike)."""
    times = {k: float("inf") for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[k] = min(times[k], time.perf_counter() - start)
    return times


def stream(model, u: np.ndarray, block: int) -> None:
    """Run through ``run_blocks``, touching each block (a sum) as a consumer would."""
    for X in run_blocks(model, u, block):
        X.sum()


def loop_figures(N: int = 500, B: int = 64, T: int = 1_500, T_long: int = 10_000, block: int = 1_000,
                 repeats: int = 3) -> dict:
    """Section (0) as a dict: per dtype, the NumPy loop's and ``run``'s seconds at T, reservoir-steps/s, the ratio
    and its goal, and ``run_blocks``' reservoir-steps/s at T_long against ``run``'s at T (goal: ratio ≥ 1)."""
    rng = np.random.default_rng(0)
    W, w_in = gaussian(N, seed=0, spectral_radius=1.0), input_weights(N, seed=1)
    rhos = np.linspace(0.1, 1.3, B)
    u, u_long = rng.uniform(-1.0, 1.0, T), rng.uniform(-1.0, 1.0, T_long)
    figures: dict = {"N": N, "B": B, "T": T, "T_long": T_long, "block": block, "load": os.getloadavg()[0],
                     "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS", "unset")}
    for dtype in (np.float64, np.float32):
        model, loop = ESN(W, recurrent_scale=rhos, w_in=w_in, dtype=dtype), numpy_loop(W, rhos, w_in, dtype)
        loop(u[:50]), run(model, u[:50]), stream(model, u[:50], block)  # warm-up
        X, Wt, Y = np.ones((B, N), dtype), np.ascontiguousarray(W.T, dtype), np.empty((B, N), dtype)

        def gemm(X=X, Wt=Wt, Y=Y):
            for _ in range(T):
                np.matmul(X, Wt, out=Y)

        t = alternating_best({"loop": lambda f=loop: f(u), "run": lambda m=model: run(m, u), "gemm": gemm}, repeats)
        t_long = alternating_best({"stream": lambda m=model: stream(m, u_long, block)},
                                  max(1, repeats // 2))["stream"]
        name = np.dtype(dtype).name
        figures[name] = {"numpy_loop_s": t["loop"], "run_s": t["run"], "numpy_loop_steps_per_s": B * T / t["loop"],
                         "run_steps_per_s": B * T / t["run"], "ratio": t["loop"] / t["run"], "goal": GOALS[name],
                         "gemm_share": t["gemm"] / t["loop"], "ceiling": t["loop"] / t["gemm"],
                         "stream_steps_per_s": B * T_long / t_long,
                         "stream_over_run": (B * T_long / t_long) / (B * T / t["run"])}
    return figures


def print_loop_figures(f: dict) -> None:
    print(f"(0) the loop: N = {f['N']}, B = {f['B']} (shared W, grid of s), T = {f['T']}; load average "
          f"{f['load']:.1f}, OPENBLAS_NUM_THREADS={f['OPENBLAS_NUM_THREADS']}")
    for name in ("float64", "float32"):
        g = f[name]
        print(f"  {name}: in-place NumPy loop {g['numpy_loop_steps_per_s']:9.3g} steps/s, wrec run "
              f"{g['run_steps_per_s']:9.3g} steps/s, ratio {g['ratio']:.2f} (goal >= {g['goal']}); the GEMM alone is "
              f"{g['gemm_share']:.0%} of the loop, so no loop with this GEMM passes {g['ceiling']:.2f}")
        print(f"  {name}: run_blocks at T = {f['T_long']} (blocks of {f['block']}) {g['stream_steps_per_s']:9.3g} "
              f"steps/s = {g['stream_over_run']:.2f} x run at T = {f['T']} (goal >= 1)")


def report(label: str, seconds: float, steps: int) -> None:
    print(f"  {label:<44} {seconds:8.2f} s  {steps / seconds:10.3g} reservoir-steps/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (CI smoke test)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--loop-only", action="store_true", help="section (0) only")
    args = ap.parse_args()
    print_loop_figures(loop_figures(N=200, B=16, T=500, T_long=2_000, block=250, repeats=args.repeats)
                       if args.quick else loop_figures(repeats=args.repeats))
    if args.loop_only:
        return
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
