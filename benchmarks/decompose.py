"""Decomposition of tall-skinny states: ``decompose`` (SVD) and ``nested_decompose`` (QR) by CholeskyQR2 (GEMM-bound)
against the LAPACK route (gesdd / Householder QR) they fall back to, timed in the same run on the same states.

States: an ESN (spectral radius 0.9, input scale 0.5, u ~ U[−1, 1]) of N = 100 and N = 500 neurons, T = 10⁵ rows
after washout. ``old`` forces the LAPACK route (``CHOLESKY_MAX_CONDITION = 0``), ``new`` is the default rule.
Both include the centring and standardisation (``centred_states``). Goal (issue 21): ratio ≥ 5 on 2 idle cores.

``--rule`` also times both routes over T/L at small sizes, the measurement behind ``CHOLESKY_MIN_RATIO``.

Every time is the minimum of ``--repeats`` calls after a warm-up call; ``ratio = old_time / new_time``. The
machine may be shared: the load average is printed before and after.

    python benchmarks/decompose.py [--quick] [--repeats 3] [--rule]
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

import numpy as np

from _timing import best  # benchmarks/ is on sys.path when a script runs
from wrec.capacity import core
from wrec.reservoir import ESN, run
from wrec.weights import gaussian, input_weights


def esn_states(N: int, T: int) -> np.ndarray:
    u = np.random.default_rng(0).uniform(-1.0, 1.0, T + 500)
    model = ESN(gaussian(N, seed=1, spectral_radius=0.9), input_scale=0.5, w_in=input_weights(N, seed=2))
    return run(model, u, washout=500)


Decomposed = core.Decomposition | core.NestedDecomposition


def old_and_new(fn: Callable[[], Decomposed], repeats: int) -> tuple[float, float, str, str]:
    """(old time, new time, old route, new route) of ``fn``: the LAPACK route forced, then the default rule."""
    saved = core.CHOLESKY_MAX_CONDITION
    core.CHOLESKY_MAX_CONDITION = 0.0
    try:
        old_route = fn().route  # also the warm-up
        old = best(fn, repeats)
    finally:
        core.CHOLESKY_MAX_CONDITION = saved
    new_route = fn().route
    return old, best(fn, repeats), old_route, new_route


def bench(N: int, T: int, repeats: int) -> None:
    X = esn_states(N, T)
    readouts = np.unique(np.linspace(1, N, 20).astype(int))
    s = core.decompose(X).singular_values
    print(f"states {T} x {N} (ESN), kappa(standardised) = {s[0] / s[-1]:.3g}")
    for name, fn in (("decompose", lambda: core.decompose(X)),
                     ("nested_decompose", lambda: core.nested_decompose(X, readouts))):
        old, new, r_old, r_new = old_and_new(fn, repeats)
        print(f"  {name:17s} old ({r_old}) {old:8.3f} s   new ({r_new}) {new:8.3f} s   ratio = {old / new:6.2f}")


def rule(repeats: int) -> None:
    """Both routes of ``decompose`` over T/L (L = 50, 200): CholeskyQR2 needs T ≥ L; from which ratio it wins."""
    print("rule: decompose time old / new over T/L (random correlated states)")
    rng = np.random.default_rng(3)
    saved = core.CHOLESKY_MIN_RATIO
    core.CHOLESKY_MIN_RATIO = 1  # time the new route below the rule's bound too
    try:
        for L in (50, 200):
            for ratio in (2.0, 4.0, 8.0, 12.0, 20.0):
                T = int(ratio * L)
                X = rng.standard_normal((T, L)) @ rng.standard_normal((L, L))
                old, new, r_old, r_new = old_and_new(lambda X=X: core.decompose(X), repeats)
                print(f"  L = {L:3d}, T/L = {ratio:4.1f}: old ({r_old}) {old * 1e3:8.2f} ms  new ({r_new}) "
                      f"{new * 1e3:8.2f} ms  ratio = {old / new:5.2f}")
    finally:
        core.CHOLESKY_MIN_RATIO = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="T = 2·10⁴ instead of 10⁵")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rule", action="store_true", help="also time both routes over T/L")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}, cores: {os.cpu_count()}")
    T = 20_000 if args.quick else 100_000
    for N in (100, 500):
        bench(N, T, args.repeats)
    if args.rule:
        rule(args.repeats)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
