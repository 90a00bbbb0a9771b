"""Spike coding network simulation: one batched run of B trials against a loop of B one-trial runs.

Optimal autoencoder (no learning), N = 400 neurons, J = 3, random decoders of norm 0.1, μ = ν = 1e-3,
λ = 10, dt = 1e-4, sequential spiking, smoothed white-noise input (width 200 steps, amplitude 3000; ~10 Hz), only
spikes recorded. Goals (issue 5): ≥ 5× batched vs loop and ≥ 10⁷ neuron-steps/s for N = 400.
Every time is the minimum of ``--repeats`` runs after a warm-up on a short input, all in this one process;
``ratio = loop_time / batched_time``.

    python benchmarks/scn.py [--quick] [--repeats 3] [--batch 32] [--neurons 400]
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from _timing import best  # benchmarks/ is on sys.path when a script runs
from wrec.spiking import SCNParams, optimal_weights, simulate
from wrec.tasks import smoothed_white_noise


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="500 steps instead of 2000")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--neurons", type=int, default=400)
    args = ap.parse_args()
    n, j, b = args.neurons, 3, args.batch
    steps = 500 if args.quick else 2000
    rng = np.random.default_rng(0)
    D = rng.standard_normal((j, n))
    D = 0.1 * D / np.linalg.norm(D, axis=0)
    w = optimal_weights(D, mu=1e-3, nu=1e-3)
    p = SCNParams(leak=10.0, dt=1e-4, mu=1e-3, nu=1e-3)
    c = smoothed_white_noise(steps, j, width=200, amplitude=3000, block=None, batch=b, seed=1)

    def batched():
        return simulate(w, c, p, record=("spikes",))

    def loop():
        return [simulate(w, c[i], p, record=("spikes",)) for i in range(b)]

    simulate(w, c[:, :50], p, record=("spikes",))  # warm-up
    simulate(w, c[0, :50], p, record=("spikes",))
    t_batch = best(batched, args.repeats)
    t_loop = best(loop, args.repeats)
    rate = batched().neurons.size / (b * n * steps * p.dt)
    work = b * n * steps
    print(f"SCN simulation: N = {n}, J = {j}, B = {b} trials, T = {steps} steps, mean rate {rate:.1f} Hz; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"  loop of {b} one-trial runs : {t_loop:8.3f} s  {work / t_loop:12.3e} neuron-steps/s")
    print(f"  one batched run (B = {b})  : {t_batch:8.3f} s  {work / t_batch:12.3e} neuron-steps/s")
    print(f"ratio = {t_loop / t_batch:.2f}  (goal >= 5; batched neuron-steps/s goal >= 1e7)")


if __name__ == "__main__":
    main()
