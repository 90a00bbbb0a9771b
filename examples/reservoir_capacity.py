"""Memory capacity and IPC of a reservoir you simulate yourself, in plain NumPy.

wrec measures any state matrix X (T, N) aligned with its input u (T,): ``X[t]`` is the state right after ``u[t]``.
Here two reservoirs share one random W: a linear one, whose memory curve has an exact value
(``wrec.capacity.theory.linear_memory_curve``: the leverage scores of the Krylov matrix), and a tanh echo state
network (Jaeger 2001), whose capacity spreads over nonlinear targets (IPC, Dambre et al. 2012).

    python examples/reservoir_capacity.py [--small] [--out DIR]

Prints MC of both, the linear theory and the tanh network's IPC by degree; saves ``reservoir_capacity.png``
(memory curves and capacity by degree) to DIR (default ``runs/examples``, or ``$WREC_EXAMPLES_OUT``).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

import wrec


# --8<-- [start:simulate]
def simulate(W: np.ndarray, w_in: np.ndarray, u: np.ndarray, nonlinearity=None) -> np.ndarray:
    """x_t = f(W x_{t−1} + w_in u_t) from x = 0; returns X (T, N) with X[t] right after u[t]."""
    x = np.zeros(W.shape[0])
    X = np.empty((len(u), W.shape[0]))
    for t, u_t in enumerate(u):
        x = W @ x + w_in * u_t
        if nonlinearity is not None:
            x = nonlinearity(x)
        X[t] = x
    return X
# --8<-- [end:simulate]


def main(small: bool = False, out: Path | None = None) -> dict[str, float]:
    """Measure both reservoirs, save the figure and return the numbers it prints."""
    n, T, washout = (40, 8_000, 500) if small else (100, 40_000, 1_000)
    rng = np.random.default_rng(0)
    W = rng.standard_normal((n, n)) / np.sqrt(n)
    W *= 0.9 / np.max(np.abs(np.linalg.eigvals(W)))  # spectral radius 0.9: fading memory
    w_in = rng.uniform(-1, 1, n)
    u = rng.uniform(-1, 1, T)  # i.i.d. U[-1, 1]: the Legendre basis is orthonormal for it

    # --8<-- [start:measure]
    max_delay = 3 * n
    X_lin = simulate(W, w_in, u)[washout:]
    X_tanh = simulate(W, 0.1 * w_in, u, np.tanh)[washout:]
    u = u[washout:]  # aligned with the states

    mc_lin = wrec.capacity.memory_capacity(X_lin, u, max_delay=max_delay)
    theory = wrec.capacity.theory.linear_memory_curve(W, w_in, max_delay)
    mc_tanh = wrec.capacity.memory_capacity(X_tanh, u, max_delay=max_delay)
    ipc = wrec.capacity.ipc(X_tanh, u, max_delay={1: max_delay, 2: 20, 3: 10})
    # --8<-- [end:measure]

    out = Path(out or os.environ.get("WREC_EXAMPLES_OUT", "runs/examples"))
    out.mkdir(parents=True, exist_ok=True)
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5), layout="constrained")
    k = np.arange(max_delay + 1)
    ax1.plot(k, mc_lin.per_delay, label=f"linear, MC = {mc_lin.total:.1f}")
    ax1.plot(k, theory, "k--", lw=1, label=f"linear theory, {theory.sum():.1f}")
    ax1.plot(k, mc_tanh.per_delay, label=f"tanh, MC = {mc_tanh.total:.1f}")
    ax1.set(xlabel="delay k", ylabel="capacity of u[t−k]", title="memory curves")
    ax1.legend(frameon=False)
    by_degree = {int(d): float(c) for d, c in ipc.by_degree.items()}  # a pandas Series: degree -> capacity
    ax2.bar([str(d) for d in by_degree], list(by_degree.values()))
    ax2.axhline(ipc.rank, color="k", lw=1, ls=":", label=f"rank {ipc.rank}")
    ax2.set(xlabel="degree", ylabel="capacity", title="tanh reservoir, IPC by degree")
    ax2.legend(frameon=False)
    figure = out / "reservoir_capacity.png"
    fig.savefig(figure, dpi=120)
    plt.close(fig)

    result = {"MC linear": mc_lin.total, "MC linear theory": float(theory.sum()), "MC tanh": mc_tanh.total,
              "IPC total tanh": ipc.total, "rank tanh": float(ipc.rank)}
    result.update({f"C_{d} tanh": c for d, c in by_degree.items()})
    for name, value in result.items():
        print(f"{name} = {value:.2f}")
    print(f"figure: {figure}")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="a few seconds: N = 40, T = 8000")
    parser.add_argument("--out", type=Path, default=None, help="folder for the figure")
    args = parser.parse_args()
    main(args.small, args.out)
