"""The adding problem (Hochreiter & Schmidhuber 1997; the form of Le, Jaitly & Hinton 2015 and Arjovsky et al.
2016): a long-memory regression task for recurrent networks.

Each sequence has two channels: values v_t ~ U(0, 1) and a marker m_t ∈ {0, 1} that is 1 at exactly two steps,
one drawn uniformly in the first half [0, ⌊T/2⌋) and one in the second [⌊T/2⌋, T). The target is the sum of
the two marked values. It has mean 1 and variance 1/6, so predicting the constant 1 gives MSE 1/6 — the
baseline a network must beat.
"""

from __future__ import annotations

import numpy as np

from wrec import _checks
from wrec._checks import Seed

CONSTANT_PREDICTOR_MSE = 1.0 / 6.0  # Var(v_a + v_b) = 2 · 1/12


def adding_problem(batch: int, length: int, *, seed: Seed = None) -> tuple[np.ndarray, np.ndarray]:
    """A batch of adding-problem sequences: inputs[b, t] = (v_t, m_t), targets[b] = Σ_t v_t m_t.

    Shape: inputs (B, T, 2) float64 (batch first); targets (B,). ``length`` T ≥ 2.
    """
    batch = _checks.integer(batch, "batch", low=1)
    length = _checks.integer(length, "length", low=2)
    rng = _checks.rng(seed)
    values = rng.uniform(0.0, 1.0, (batch, length))
    half = length // 2
    first = rng.integers(0, half, batch)
    second = rng.integers(half, length, batch)
    markers = np.zeros((batch, length))
    rows = np.arange(batch)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    targets = values[rows, first] + values[rows, second]
    return np.stack([values, markers], axis=-1), targets
