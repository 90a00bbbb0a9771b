"""The capacity projection against a bare GEMM of the same shape.

Once the states are decomposed (Q, T × r), every IPC target y (a product of orthonormal polynomials of delayed
inputs) is built and projected: C = ‖Qᵀy‖² / ‖y‖² (Dambre et al., Sci. Rep. 2, 514, 2012). The projection's
floor is the GEMM Qᵀ[y_1 … y_m]; what it adds is building the targets, their norms, and the shuffle surrogates
of the default threshold (Kubota et al., PRR 3, 043135, 2021). Measured: ``ipc.evaluate`` (targets, GEMMs,
norms, surrogates, thresholds) on a decomposition made beforehand, N = 100 tanh ESN, T = 10⁵, degrees ≤ 3,
against a bare float64 GEMM (T × r)ᵀ(T × m) of random numbers, timed in the same run (the faster of one BLAS
thread and the default; for m > 2048 a (T × 2048) GEMM scaled by m/2048, the GEMM being linear in m).

``fraction = bare GEMM time / projection time`` (goal ≥ 0.5 from ≈ 200 targets up), counted twice: against
the m targets, and against every column projected (the m targets and the ``count`` × n_shapes surrogates).
Every time is the minimum of ``--repeats`` calls after a warm-up; the load average is printed (the machine may
be shared).

    python benchmarks/projection.py [--delays 8 12 20 30 50] [--repeats 3] [--threshold surrogate|none]
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
from threadpoolctl import threadpool_limits

from _timing import best  # benchmarks/ is on sys.path when a script runs
from wrec.capacity import Surrogate
from wrec.capacity.basis import orthonormal
from wrec.capacity.core import decompose
from wrec.capacity.ipc import evaluate
from wrec.capacity.targets import delay_sets
from wrec.capacity.thresholds import NoThreshold

GOAL = 0.5
GEMM_COLUMNS = 2048  # widest bare GEMM timed; wider ones are scaled from it


def esn_states(N: int, T: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """States (T, N) of a tanh ESN (ρ = 0.9, input weights U[−0.5, 0.5]) driven by u ~ U[−1, 1], and u."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((N, N))
    W *= 0.9 / np.max(np.abs(np.linalg.eigvals(W)))
    w_in = rng.uniform(-0.5, 0.5, N)
    washout = 200
    u = rng.uniform(-1.0, 1.0, T + washout)
    X, x = np.empty((T + washout, N)), np.zeros(N)
    for t in range(T + washout):
        x = np.tanh(W @ x + w_in * u[t])
        X[t] = x
    return X[washout:], u[washout:]


def bare_gemm(Q: np.ndarray, n_columns: int, repeats: int) -> tuple[float, int]:
    """(time of Qᵀ Z for Z (T, n_columns), BLAS threads of the faster run): the faster of one thread and the
    default, each the minimum over repeats."""
    width = min(n_columns, GEMM_COLUMNS)
    Z = np.random.default_rng(1).standard_normal((Q.shape[0], width))
    times = {}
    for threads in (1, None):
        with threadpool_limits(limits=threads, user_api="blas"):
            times[threads or 0] = best(lambda: Q.T @ Z, repeats, warmup=lambda: Q.T @ Z) * n_columns / width
    fastest = min(times, key=lambda k: times[k])
    return times[fastest], fastest


def measure(K: int, *, N: int = 100, T: int = 100_000, repeats: int = 3, surrogates: bool = True,
            states: tuple[np.ndarray, np.ndarray] | None = None) -> dict:
    """The projection of every target of degree ≤ 3 and delay ≤ K, and a bare GEMM of the same shape.

    Returns a dict: shape (T rows, r, m targets, surrogate columns), projection_s, gemm_s (for the m targets),
    gemm_all_s (for every projected column), fraction = gemm_s / projection_s, fraction_all, gemm_threads
    (0 = BLAS default), goal, load (1-minute load average at the end).
    """
    X, u = esn_states(N, T) if states is None else states
    dec = decompose(X[K:])
    basis = orthonormal(u, 3)
    delays = {1: K, 2: K, 3: K}
    m = sum(len(ts) for d in delays for ts in delay_sets(d, K))
    threshold = Surrogate() if surrogates else NoThreshold()
    n_shapes = sum(len(delay_sets(d, K)) for d in delays)
    n_surrogate = threshold.count * n_shapes if surrogates else 0
    t_proj = best(lambda: evaluate(dec, basis, delays, threshold), repeats,
                  warmup=lambda: evaluate(dec, basis, delays, threshold))
    t_gemm, threads = bare_gemm(dec.basis, m, repeats)
    t_all = t_gemm * (m + n_surrogate) / m
    return {"T": T - K, "r": dec.rank, "targets": m, "surrogate_columns": n_surrogate, "projection_s": t_proj,
            "gemm_s": t_gemm, "gemm_all_s": t_all, "fraction": t_gemm / t_proj, "fraction_all": t_all / t_proj,
            "gemm_threads": threads, "goal": GOAL, "load": os.getloadavg()[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--delays", type=int, nargs="+", default=[8, 12, 20, 30, 50])
    ap.add_argument("--N", type=int, default=100)
    ap.add_argument("--T", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threshold", choices=("surrogate", "none"), default="surrogate")
    args = ap.parse_args()
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; N = {args.N}, T = {args.T}, degrees <= 3, "
          f"threshold {args.threshold}; goal: fraction >= {GOAL}")
    states = esn_states(args.N, args.T)
    print(f"{'max delay':>9} {'rows':>7} {'r':>4} {'targets':>8} {'surr.':>6} {'projection s':>13} {'GEMM s':>8} "
          f"{'fraction':>9} {'GEMM(all) s':>12} {'fraction(all)':>14} {'load':>5}")
    for K in args.delays:
        f = measure(K, N=args.N, T=args.T, repeats=args.repeats, surrogates=args.threshold == "surrogate",
                    states=states)
        print(f"{K:9d} {f['T']:7d} {f['r']:4d} {f['targets']:8d} {f['surrogate_columns']:6d} "
              f"{f['projection_s']:13.3f} {f['gemm_s']:8.3f} {f['fraction']:9.2f} {f['gemm_all_s']:12.3f} "
              f"{f['fraction_all']:14.2f} {f['load']:5.1f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
