"""Linear memory capacity (Jaeger 2001): m_k = C(u_{t−k}), MC = Σ_{k=0}^{K} m_k ≤ r."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wrec import _checks
from wrec.capacity.core import RankRule, decompose
from wrec.capacity.ipc import aligned, evaluate
from wrec.capacity.thresholds import Surrogate, Threshold, as_threshold


@dataclass(frozen=True, eq=False)
class MemoryCapacity:
    """Memory curve of a state matrix.

    Attributes:
        per_delay: m_k for k = 0..max_delay after thresholding (values below threshold set to 0). Shape (K+1,).
        raw: m_k before thresholding. Shape (K+1,).
        kept: whether each m_k passed the threshold. Shape (K+1,).
        total: Σ_k per_delay (the MC).
        raw_total: Σ_k raw.
        adjusted_total: Σ_k of the bias-corrected 1 − (1 − m_k)(T−1)/(T−1−r), unbiased for Σ_k m_k.
        threshold: the threshold applied (0 without thresholding).
        floor: (K+1)·r/(T−1), the expected raw sum over K+1 delays that carry no memory at all.
        rank: rank r of the centred states; n_samples: rows T used.
    """

    per_delay: np.ndarray
    raw: np.ndarray
    kept: np.ndarray
    total: float
    raw_total: float
    adjusted_total: float
    threshold: float
    floor: float
    rank: int
    n_samples: int


def memory_capacity(
    states: np.ndarray,
    u: np.ndarray,
    max_delay: int = 100,
    *,
    readout: int | np.ndarray | None = None,
    threshold: Threshold | None = Surrogate(),
    rank: RankRule = "kubota",
) -> MemoryCapacity:
    """Memory curve m_k = C(u_{t−k}) of any state matrix, k = 0..max_delay, on the rows t ≥ max_delay.

    Shapes: states (T, N), u (T,), aligned (``X[t]`` is the state right after ``u[t]``). Any input
    distribution: the capacity of u_{t−k} does not depend on an affine map of u. ``readout``: all neurons
    (None), the first L (an int) or these neuron indices; for a whole grid of L at once (one QR) use
    ``capacity_by_readout(..., max_degree=1)``.
    """
    max_delay = _checks.integer(max_delay, "max_delay", low=0)
    X, u = aligned(states, u, max_delay)
    X = X[:, _checks.readout_index(readout, X.shape[1])]
    sd = u.std()
    if sd == 0.0:
        raise ValueError("u is constant; memory of an input with no variance is undefined")
    basis = np.vstack([np.ones_like(u), (u - u.mean()) / sd])
    dec = decompose(X[max_delay:], rank=rank)
    (e,) = evaluate(dec, basis, {1: max_delay}, as_threshold(threshold))
    kept = e.values > e.threshold
    per_delay = np.where(kept, e.values, 0.0)
    return MemoryCapacity(
        per_delay=per_delay, raw=e.values, kept=kept, total=float(per_delay.sum()),
        raw_total=float(e.values.sum()), adjusted_total=float(dec.adjusted(e.values).sum()),
        threshold=float(e.threshold), floor=(max_delay + 1) * dec.floor, rank=dec.rank, n_samples=dec.n_samples)
