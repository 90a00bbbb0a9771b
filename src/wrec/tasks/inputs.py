"""I.i.d. scalar input streams u_t for capacity measurements."""

from __future__ import annotations

import numpy as np

from wrec import _checks
from wrec._checks import Seed


def _shape(length: int, batch: int | None) -> tuple[int, ...]:
    length = _checks.integer(length, "length", low=1)
    return (length,) if batch is None else (_checks.integer(batch, "batch", low=1), length)


def uniform_input(
    length: int, *, low: float = -1.0, high: float = 1.0, batch: int | None = None, seed: Seed = None
) -> np.ndarray:
    """u_t ~ U[low, high] i.i.d. (default U[−1, 1], the Legendre basis' measure). Shape: (T,) or (B, T).

    Examples:
        >>> from wrec.tasks import uniform_input
        >>> uniform_input(5, seed=0).round(3)
        array([ 0.274, -0.46 , -0.918, -0.967,  0.627])
        >>> uniform_input(1_000, low=0.0, high=2.0, batch=3, seed=1).shape
        (3, 1000)
    """
    low = _checks.real(low, "low")
    high = _checks.real(high, "high")
    if not high > low:
        raise ValueError(f"high must be > low, got low={low}, high={high}")
    return _checks.rng(seed).uniform(low, high, _shape(length, batch))


def gaussian_input(
    length: int, *, std: float = 1.0, batch: int | None = None, seed: Seed = None
) -> np.ndarray:
    """u_t ~ N(0, std²) i.i.d. (std = 1 matches the Hermite basis). Shape: (T,) or (B, T)."""
    std = _checks.real(std, "std", low=0.0, low_open=True)
    return std * _checks.rng(seed).standard_normal(_shape(length, batch))
