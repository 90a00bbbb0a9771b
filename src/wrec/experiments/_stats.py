"""Statistics shared by the experiments' tables."""

from __future__ import annotations

import numpy as np


def bootstrap_ci(values: np.ndarray, *, level: float = 0.95, resamples: int = 10_000, seed: int = 0,
                 ) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean over replicates: the (1 ∓ level)/2 quantiles of the means of
    ``resamples`` resamples with replacement. Non-finite values are left out (a diverged run shows in the mean,
    not in the interval); with fewer than 2 finite values there is no interval: (NaN, NaN)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size < 2:
        return float("nan"), float("nan")
    means = v[np.random.default_rng(seed).integers(0, v.size, (resamples, v.size))].mean(axis=1)
    return float(np.quantile(means, (1 - level) / 2)), float(np.quantile(means, (1 + level) / 2))
