"""A spike coding network tracking a 2-D signal (Boerlin, Machens & Denève, PLoS Comput. Biol. 2013).

N neurons with decoder D (J, N) code a signal x (T, J) as x̂ = D r, r the leaky-filtered spike trains. A neuron
fires only when its spike lowers the coding error ‖x − Dr‖² + μ‖r‖², which fixes its feedforward weights F = Dᵀ,
its fast recurrent weights Ω = −(DᵀD + μI) and its threshold (``wrec.spiking.optimal_weights``): the recurrence
cancels the feedforward drive spike by spike (tight excitation–inhibition balance). The signal here is a slow
2-D circle, x = (sin 2πt, cos 2πt).

    python examples/spike_coding.py [--small] [--neurons N] [--out DIR]

Prints the relative decoding error ‖x − x̂‖/‖x‖ and the mean rate; saves ``spike_coding.png`` (the signal and its
readout, and the raster) to DIR (default ``runs/examples``, or ``$WREC_EXAMPLES_OUT``).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from wrec import spiking


def main(small: bool = False, neurons: int = 40, out: Path | None = None) -> dict[str, float]:
    """Simulate the network, save the figure and return the numbers it prints."""
    leak, dt, mu = 10.0, 1e-4, 1e-4  # λ (1/s), the Euler step (s), the rate cost μ
    n_steps = 10_000 if small else 30_000  # 1 s or 3 s
    neurons = 20 if small else neurons
    rng = np.random.default_rng(0)
    D = rng.standard_normal((2, neurons))
    D *= 0.1 / np.linalg.norm(D, axis=0)  # each neuron's decoding vector has norm 0.1: the size of one spike
    weights = spiking.optimal_weights(D, mu=mu, leak=leak)
    t = np.arange(n_steps + 1) * dt
    x = np.stack([np.sin(2 * np.pi * t), np.cos(2 * np.pi * t)], axis=1)  # (T + 1, 2)
    run = spiking.simulate(weights, spiking.input_current(x, leak=leak, dt=dt), spiking.SCNParams(leak=leak, dt=dt),
                           x0=x[0], seed=1)
    xhat = run.xhat  # (T, 2): the readout after step t, which codes x[t + 1]
    error = float(np.linalg.norm(x[1:] - xhat) / np.linalg.norm(x[1:]))
    rate = len(run.neurons) / (neurons * n_steps * dt)

    out = Path(out or os.environ.get("WREC_EXAMPLES_OUT", "runs/examples"))
    out.mkdir(parents=True, exist_ok=True)
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(7, 5), sharex=True, layout="constrained")
    for j, colour in enumerate(["C0", "C1"]):
        ax1.plot(t[1:], x[1:, j], color="k", lw=1, label="x" if j == 0 else None)
        ax1.plot(t[1:], xhat[:, j], color=colour, lw=0.8, label=f"x̂_{j + 1}")
    ax1.set(ylabel="signal and readout", title=f"{neurons} neurons, relative error {error:.3f}")
    ax1.legend(frameon=False, loc="upper right")
    ax2.plot(run.steps * dt, run.neurons, "|", color="k", ms=4)
    ax2.set(xlabel="time (s)", ylabel="neuron")
    figure = out / "spike_coding.png"
    fig.savefig(figure, dpi=120)
    plt.close(fig)

    result = {"relative error": error, "mean rate (Hz)": rate}
    for name, value in result.items():
        print(f"{name} = {value:.4f}")
    print(f"figure: {figure}")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="a few seconds: 20 neurons, 1 s")
    parser.add_argument("--neurons", type=int, default=40)
    parser.add_argument("--out", type=Path, default=None, help="folder for the figure")
    args = parser.parse_args()
    main(args.small, args.neurons, args.out)
