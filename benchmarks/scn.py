"""Spike coding network simulation (one batched run of B trials against a loop of B one-trial runs) and learning.

Optimal autoencoder (no learning), N = 400 neurons, J = 3, random decoders of norm 0.1, μ = ν = 1e-3,
λ = 10, dt = 1e-4, sequential spiking, smoothed white-noise input (width 200 steps, amplitude 3000; ~10 Hz), only
spikes recorded. Goals: ≥ 5× batched vs loop and ≥ 10⁷ neuron-steps/s for N = 400.
Every time is the minimum of ``--repeats`` runs after a warm-up on a short input, all in this one process;
``ratio = loop_time / batched_time``.

Learning (preset ``"brendel2020_fig2"``, N = 20, J = 2, ``"single"`` mode): ``learn_autoencoder``'s in-place kernel
against the loop over the pure ``autoencoder_step`` (``dynamics.run``; learn_autoencoder's previous implementation)
and the naive loop over the public pure functions (``scn.step`` + ``learning.autoencoder_update``, which validate every
call and copy the weights at every spike), all three the same numbers bit for bit; µs per learning step (goal <= 15,
a separate NumPy simulation's 10–15 µs), repeats interleaved so that the shared cores' load falls on all three alike.
Learning is one trial at a time (the weights change at every spike); replicates run in parallel as sweep tasks.

    python benchmarks/scn.py [--quick] [--repeats 3] [--batch 32] [--neurons 400]
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from _timing import best  # benchmarks/ is on sys.path when a script runs
from wrec import dynamics
from wrec.spiking import SCN, SCNParams, initial_state, optimal_weights, simulate, step
from wrec.spiking.learning import (
    AutoencoderInput,
    AutoencoderLearning,
    AutoencoderState,
    autoencoder_step,
    autoencoder_update,
    initial_weights,
    learn_autoencoder,
)
from wrec.tasks import smoothed_white_noise
from wrec.tasks.signals import leaky_integral


def problem(n: int, j: int, b: int, steps: int) -> tuple:
    """(weights, params, input (b, steps, j)): the optimal autoencoder of N = n random unit-norm × 0.1 decoders,
    driven by smoothed white noise — the simulation every SCN timing uses."""
    D = np.random.default_rng(0).standard_normal((j, n))
    w = optimal_weights(0.1 * D / np.linalg.norm(D, axis=0), mu=1e-3, nu=1e-3)
    p = SCNParams(leak=10.0, dt=1e-4, mu=1e-3, nu=1e-3)
    c = smoothed_white_noise(steps, j, width=200, amplitude=3000, block=None, batch=b, seed=1)
    return w, p, c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="500 steps instead of 2000")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--neurons", type=int, default=400)
    args = ap.parse_args()
    n, j, b = args.neurons, 3, args.batch
    steps = 500 if args.quick else 2000
    w, p, c = problem(n, j, b, steps)

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
    learning(steps=5 * steps, repeats=args.repeats)


def learning(steps: int, repeats: int) -> None:
    rule = AutoencoderLearning()

    def fast():
        return learn_autoencoder(rule, steps, seed=0, checkpoints=[0, steps])

    def pure_step():  # the previous learn_autoencoder: the loop over the pure autoencoder_step
        rng_init, rng_input, rng_noise = np.random.default_rng(0).spawn(3)
        w = initial_weights(rule, rng_init)
        n = rule.n
        state = AutoencoderState(np.zeros((1, n)), np.zeros((1, n)), np.full(1, -1, dtype=np.int64), w, 0, 0, 0)
        return dynamics.run(autoencoder_step, rule, state, AutoencoderInput(rule, rng_input), steps,
                            rng=rng_noise).state.weights

    def naive():
        rng_init, rng_input, rng_noise = np.random.default_rng(0).spawn(3)
        w = initial_weights(rule, rng_init)
        c = smoothed_white_noise(steps, rule.j, seed=rng_input)
        x = leaky_integral(c, rule.leak, rule.dt)
        state, params = initial_state(w), rule.scn_params()
        for t in range(steps):
            def hook(_b, k, V, r, t=t):
                nonlocal w
                w = autoencoder_update(w, k, V, r, x[t], rule)
                return w

            state, _ = step(SCN(w, params), state, c[t], rng=rng_noise, on_spike=hook)
        return w

    learned = fast().weights
    np.testing.assert_array_equal(learned.fast, naive().fast)  # the same learning, bit for bit
    np.testing.assert_array_equal(learned.fast, pure_step().fast)
    # interleaved repeats (the cores are shared: each time is the best of its repeats, taken side by side)
    times = {"fast": np.inf, "pure": np.inf, "naive": np.inf}
    for _ in range(repeats):
        times["fast"] = min(times["fast"], best(fast, 1))
        times["pure"] = min(times["pure"], best(pure_step, 1))
        times["naive"] = min(times["naive"], best(naive, 1))
    us = {k: 1e6 * v / steps for k, v in times.items()}
    print(f"SCN learning (brendel2020_fig2 preset, N = {rule.n}, J = {rule.j}, {steps} steps; load average "
          f"{os.getloadavg()[0]:.2f}): learn_autoencoder {us['fast']:.1f} µs/step (goal <= 15), loop over the pure "
          f"autoencoder_step (its previous implementation) {us['pure']:.1f} µs/step, naive public-API loop "
          f"{us['naive']:.1f} µs/step")
    print(f"ratio = {times['pure'] / times['fast']:.2f}  (pure-step loop / learn_autoencoder; "
          f"naive / learn_autoencoder = {times['naive'] / times['fast']:.2f})")


if __name__ == "__main__":
    main()
