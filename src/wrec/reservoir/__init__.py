"""Rate networks without trained recurrence: parameter records, pure steps, and the batched runner.

Examples:
    >>> import numpy as np
    >>> from wrec import reservoir, weights
    >>> from wrec.tasks import uniform_input
    >>> esn = reservoir.ESN(weights.gaussian(100, spectral_radius=0.9, seed=1), input_scale=0.5, seed=2)
    >>> u = uniform_input(1_000, seed=0)
    >>> reservoir.run(esn, u, washout=100).shape  # X[t] is the state right after u[100 + t]
    (900, 100)

    Three input streams in one loop, recording the first 10 neurons:

    >>> reservoir.run(esn, uniform_input(1_000, batch=3, seed=0), washout=100, readout=10).shape
    (3, 900, 10)

    A long run without its record: ``run_blocks`` yields the states in blocks of 250 steps from one reused buffer.

    >>> G = sum(X.T @ X for X in reservoir.run_blocks(esn, u, 250, washout=100))
    >>> X = reservoir.run(esn, u, washout=100)
    >>> bool(np.allclose(G, X.T @ X))
    True

    ``run`` iterates the pure step x_t = tanh(W x_{t−1} + σ w_in u_t) from x = 0:

    >>> x, out = reservoir.esn_step(esn, np.zeros((1, esn.n)), u[:1])
    >>> bool(np.array_equal(reservoir.run(esn, u[:1])[0], x[0]))
    True
"""

from wrec.reservoir.models import (
    ESN,
    LeakyESN,
    Linear,
    Rate,
    esn_step,
    leaky_esn_step,
    linear_step,
    rate_step,
)
from wrec.reservoir.run import run, run_blocks

__all__ = [
    "ESN",
    "LeakyESN",
    "Linear",
    "Rate",
    "esn_step",
    "leaky_esn_step",
    "linear_step",
    "rate_step",
    "run",
    "run_blocks",
]
