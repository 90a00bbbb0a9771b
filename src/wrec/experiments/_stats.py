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


def detectable_difference(values: np.ndarray, *, power: float = 0.8, level: float = 0.95) -> float:
    """The smallest true mean of paired differences that a two-sided one-sample t-test at ``level`` would detect
    with probability ``power``, at the spread and number of the finite ``values``: δ with P(|T| > t_crit) = power
    for T ~ noncentral t(n − 1, δ√n/s) (NaN with fewer than 2 values, 0 if they do not vary). The size a
    "not reproduced" verdict is attached to: a real difference this large would have shown."""
    from scipy.optimize import brentq
    from scipy.stats import nct, t

    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size < 2:
        return float("nan")
    n, sd = v.size, float(np.std(v, ddof=1))
    if sd == 0:
        return 0.0
    crit = t.ppf((1 + level) / 2, n - 1)

    def missing_power(nc: float) -> float:
        lower = float(np.nan_to_num(nct.cdf(-crit, n - 1, nc)))  # vanishing for nc > 0 (scipy may give NaN)
        return float(nct.sf(crit, n - 1, nc)) + lower - power

    return brentq(missing_power, 0.0, crit + 10.0) * sd / np.sqrt(n)  # power(crit + 10) ≈ 1 for any n ≥ 2


def format_values(values: object, digits: int = 4) -> str:
    """The values (a scalar or array-like of numbers), ``", "``-joined with ``digits`` significant figures."""
    return ", ".join(f"{v:.{digits}g}" for v in np.atleast_1d(np.asarray(values, dtype=float)).ravel())


def target_row(target: str, measured: object, tolerance: str, held: object) -> dict[str, object]:
    """One row of an experiment's ``targets(results)`` table: {target, measured, tolerance, held}.

    ``measured``: a string (kept as it is) or numbers (``format_values``: 4 significant figures, comma-joined).
    ``held``: a bool, or an array-like of them that holds only if every entry does and there is at least one."""
    for name, value in (("target", target), ("tolerance", tolerance)):
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a str, got {type(value).__name__}: {value!r}")
    flags = np.asarray(held, dtype=bool)
    return {"target": target, "measured": measured if isinstance(measured, str) else format_values(measured),
            "tolerance": tolerance, "held": bool(flags.size > 0 and flags.all())}
