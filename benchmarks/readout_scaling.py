"""Nested readouts: MC for every L of a grid from one QR, against a fresh decomposition per L.

MC(L) of a tanh ESN (N = 1000, g = 0.9, σ = 0.5, T = 2·10⁴, delays 0..100, default surrogate thresholds) for 30
readout sizes log-spaced from 1 to N: ``capacity_by_readout`` (one Householder QR, cumulative sums of one
projection of targets and surrogates) against ``memory_capacity`` on the first L neurons for each L (one SVD and
one projection per L). Both give the same raw numbers (checked).
Goal: ratio ≥ 10. ``ratio = baseline_time / wrec_time``, each the minimum of ``--repeats`` runs.
Both a log-spaced grid (the experiment's) and an evenly spaced one are timed: re-solving costs Σ_L T·L², so
the ratio depends on how many grid points lie near N (log grid: few, so at most ≈ 2.5 × SVD/QR cost).

    python benchmarks/readout_scaling.py [--quick] [--repeats 1]
"""

from __future__ import annotations

import argparse

import numpy as np

from _timing import best  # benchmarks/ is on sys.path when a script runs
from wrec.capacity import capacity_by_readout, memory_capacity
from wrec.experiments.readout_scaling import readout_grid
from wrec.reservoir import ESN, run
from wrec.tasks import uniform_input
from wrec.weights import gaussian


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 300, T = 10⁴")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    n, T, K, points = (300, 10_000, 100, 30) if args.quick else (1000, 20_000, 100, 30)
    u = uniform_input(T + 1000, seed=1)
    X = run(ESN(gaussian(n, 0.9, seed=0), input_scale=0.5, seed=2), u, washout=1000)
    u = u[1000:]
    print(f"N = {n}, T = {T}, delays 0..{K}, default surrogate thresholds")
    for name, Ls in (("log", readout_grid(n, points)), ("even", np.linspace(n / points, n, points).astype(int))):
        nested = best(lambda Ls=Ls: capacity_by_readout(X, u, Ls, max_degree=1, max_delay=K), args.repeats)
        per_l = best(lambda Ls=Ls: [memory_capacity(X[:, :L], u, max_delay=K) for L in Ls], args.repeats)
        a = capacity_by_readout(X, u, Ls, max_degree=1, max_delay=K, threshold=None).table["raw"].to_numpy()
        b = np.array([memory_capacity(X[:, :L], u, max_delay=K, threshold=None).raw_total for L in Ls])
        print(f"{name} grid, {Ls.size} sizes from {Ls[0]} to {Ls[-1]}: nested QR {nested:.2f} s, one SVD per L "
              f"{per_l:.2f} s, max |ΔMC| {np.max(np.abs(a - b)):.1e}, ratio = {per_l / nested:.1f}  (goal >= 10)")


if __name__ == "__main__":
    main()
