"""Linear memory capacity (Jaeger 2001): m_k = C(u_{t−k}), MC = Σ_{k=0}^{K} m_k ≤ r.

Delays start at k = 0: X[t] is the state right after u[t], so m_0 is the capacity to report the current input.
ReservoirPy's ``memory_capacity`` (and Jaeger's original sum) start at k = 1; ``MemoryCapacity.total_from(1)``
gives that sum for comparisons.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wrec import _checks
from wrec.capacity.core import RankRule
from wrec.capacity.ipc import decomposed, diagnose, evaluate, sampling_variance
from wrec.capacity.thresholds import Surrogate, Threshold, as_threshold


@dataclass(frozen=True, eq=False)
class MemoryCapacity:
    """Memory curve of a state matrix.

    Attributes:
        per_delay: m_k for k = 0..max_delay: the bias-corrected capacity (m̂_k − e_k)/(1 − e_k) where m̂_k passed
            the threshold, else 0 (the raw m̂_k when ``threshold=None``). Shape (K+1,).
        raw: m̂_k, the in-sample R², before thresholding. Shape (K+1,).
        null: e_k, the m̂_k each delay would show were it unrelated to the states (≈ r/(T−1)). Shape (K+1,).
        kept: whether each m̂_k passed the threshold. Shape (K+1,).
        total: Σ_k per_delay (the MC).
        raw_total: Σ_k raw.
        adjusted_total: Σ_k of the bias-corrected (m̂_k − e_k)/(1 − e_k) over every delay.
        threshold: the threshold θ applied (0 without thresholding).
        floor: (K+1)·r/(T−1), the expected raw sum over K+1 delays that carry no memory at all.
        spurious: the expected part of ``total`` due to delays that carry no memory.
        rank: rank r of the centred states; n_samples: rows T used.
        warnings: the invariant checks that failed (also issued as ``CapacityWarning``).
    """

    per_delay: np.ndarray
    raw: np.ndarray
    null: np.ndarray
    kept: np.ndarray
    total: float
    raw_total: float
    adjusted_total: float
    threshold: float
    floor: float
    spurious: float
    rank: int
    n_samples: int
    warnings: tuple[str, ...] = ()

    def total_from(self, first_delay: int) -> float:
        """Σ_{k ≥ first_delay} m_k: ``total_from(1)`` is the sum ReservoirPy and Jaeger (2001) report."""
        first_delay = _checks.integer(first_delay, "first_delay", low=0, high=self.per_delay.size - 1)
        return float(self.per_delay[first_delay:].sum())


def memory_capacity(
    states: np.ndarray,
    u: np.ndarray,
    max_delay: int = 100,
    *,
    readout: int | np.ndarray | None = None,
    threshold: Threshold | None = Surrogate(),
    rank: RankRule = "kubota",
    standardize: bool = True,
) -> MemoryCapacity:
    """Memory curve m_k = C(u_{t−k}) of any state matrix, k = 0..max_delay, on the rows t ≥ max_delay.

    Shapes: states (T, N), u (T,), aligned (``X[t]`` is the state right after ``u[t]``). Any input
    distribution: the capacity of u_{t−k} does not depend on an affine map of u. ``readout``: all neurons
    (None), the first L (an int) or these neuron indices; for a whole grid of L at once (one QR) use
    ``capacity_by_readout(..., max_degree=1)``. ``threshold``, ``rank`` and ``standardize`` as in ``ipc``.

    Examples:
        >>> from wrec import capacity, reservoir, weights
        >>> from wrec.tasks import uniform_input
        >>> u = uniform_input(2_000, seed=0)
        >>> esn = reservoir.ESN(weights.gaussian(50, spectral_radius=0.9, seed=1), input_scale=0.1, seed=2)
        >>> X = reservoir.run(esn, u, washout=200)  # X[t] follows u[200 + t]
        >>> mc = capacity.memory_capacity(X, u[200:], max_delay=60)
        >>> round(mc.total, 1), mc.rank, mc.per_delay[[0, 10, 15, 40]].round(2).tolist()
        (20.4, 50, [1.0, 0.98, 0.84, 0.0])
    """
    max_delay = _checks.integer(max_delay, "max_delay", low=0)
    columns = None if readout is None else lambda n: _checks.readout_index(readout, n)
    dec, u = decomposed(states, u, max_delay, rank=rank, standardize=standardize, columns=columns)
    sd = u.std()
    if sd == 0.0:
        raise ValueError("u is constant; memory of an input with no variance is undefined")
    basis = np.vstack([np.ones_like(u), (u - u.mean()) / sd])
    threshold = as_threshold(threshold)
    (e,) = evaluate(dec, basis, {1: max_delay}, threshold)
    total = float(e.counted.sum())
    found = diagnose(threshold, total, dec.rank, float(e.spurious),
                     float(sampling_variance(e.counted, dec.n_samples)), e.values.size, dec.n_samples)
    return MemoryCapacity(
        per_delay=e.counted, raw=e.values, null=e.null, kept=e.kept, total=total, raw_total=float(e.values.sum()),
        adjusted_total=float(dec.adjusted(e.values, e.null).sum()), threshold=float(e.threshold),
        floor=float((max_delay + 1) * dec.floor), spurious=float(e.spurious), rank=dec.rank, n_samples=dec.n_samples,
        warnings=found)
