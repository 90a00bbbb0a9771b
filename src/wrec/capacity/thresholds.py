"""Spurious-capacity thresholds: a target counts in a sum only if its capacity passes (kept in tables either way,
with ``kept=False``).

A target unrelated to the states still gets Ĉ ≈ r/(T−1); summed over thousands of targets this floor dominates,
and a per-target test lets the many small chance capacities of a large family through. So every threshold has
two parts, and a target counts when Ĉ/λ exceeds the larger:

* a per-shape null: shuffle surrogates (``Surrogate``, Kubota et al. 2021) or the Beta quantile (``ChiSquare``);
* a family-wise bound: θ_F such that the expected capacity that targets unrelated to the states add to the
  total, over the whole family of m targets, is at most ``max_spurious`` (below).

λ = e(z)(T−1)/r scales the null to each target's own null mean e(z) (``wrec.capacity.core``): 1 for a target
whose variance does not depend on the state.

Null model: Ĉ ~ Beta(a, b), a = r/2, b = (T−1−r)/2 (exact for Gaussian targets independent of the states),
mean e₀ = r/(T−1). Since x·f_{a,b}(x) = e₀·f_{a+1,b}(x), a kept null target adds in expectation
E[Ĉ; Ĉ > θ] = e₀·(1 − I_θ(a+1, b)), and its bias-corrected value (Ĉ − e₀)/(1 − e₀) adds
e₀·(I_θ(a, b) − I_θ(a+1, b))/(1 − e₀) (I the regularised incomplete beta function). θ_F solves
m·e₀·(1 − I_θ(a+1, b)) = max_spurious, a bound on either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import betainc, betaincinv

from wrec import _checks
from wrec.capacity.core import _Basis
from wrec.capacity.targets import TargetSet, project_many

SHUFFLED_ELEMENTS = 1 << 24  # shuffled basis copies held at once (128 MiB)
MAX_SPURIOUS = 0.1  # default bound on the expected spurious total over a target family (capacity units)

Dec = _Basis  # any decomposition: in memory, nested readouts, or states in row blocks


def _null_shape(dec: Dec) -> tuple[np.ndarray, np.ndarray]:
    """(a = r/2, b = (T−1−r)/2) of the Beta null, r as a float array (one entry per readout size if nested)."""
    r = np.asarray(dec.rank, dtype=float)
    return r / 2, (dec.n_samples - 1 - r) / 2


def family_threshold(dec: Dec, n_targets: int, max_spurious: float | None) -> np.ndarray:
    """θ_F with n_targets·e₀·(1 − I_θ(r/2 + 1, (T−1−r)/2)) = max_spurious (0 where no bound is needed)."""
    a, b = _null_shape(dec)
    if max_spurious is None or n_targets == 0:
        return np.zeros_like(a)
    e0 = 2 * a / (dec.n_samples - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(a > 0, max_spurious / (n_targets * e0), 1.0)
        return np.where(q < 1.0, betaincinv(a + 1, b, 1.0 - np.minimum(q, 1.0)), 0.0)


def expected_spurious(dec: Dec, n_targets: int, threshold: np.ndarray) -> np.ndarray:
    """Expected bias-corrected capacity that n_targets unrelated to the states add to a sum thresholded at θ:
    n·e₀·(I_θ(a, b) − I_θ(a+1, b))/(1 − e₀) (module docstring). Shape of the rank."""
    a, b = _null_shape(dec)
    e0 = 2 * a / (dec.n_samples - 1)
    theta = np.asarray(threshold, dtype=float)
    with np.errstate(invalid="ignore"):
        tail = np.where(a > 0, betainc(a, b, theta) - betainc(a + 1, b, theta), 0.0)
    return n_targets * e0 * tail / (1.0 - e0)


def _max_spurious(value: float | None) -> None:
    if value is not None:
        _checks.real(value, "max_spurious", low=0.0, low_open=True)


@dataclass(frozen=True)
class Surrogate:
    """Shuffle surrogates (default; Kubota et al. 2021): for each target shape (d_1, …, d_n), the capacity of
    Π_j P_{d_j}(ũ_{t−j}) for ``count`` random time-permutations ũ of the input (shared across shapes);
    threshold = ``scale`` × the largest surrogate capacity. No Gaussian assumption. ``max_spurious``: the
    family-wise bound (module docstring); None leaves the surrogate threshold alone (Kubota's convention).
    """

    count: int = 200
    scale: float = 1.2
    seed: int = 0
    max_spurious: float | None = MAX_SPURIOUS

    def __post_init__(self) -> None:
        _checks.integer(self.count, "count", low=1)
        _checks.real(self.scale, "scale", low=0.0, low_open=True)
        _max_spurious(self.max_spurious)

    def thresholds(self, dec: Dec, basis: np.ndarray, sets: Sequence[TargetSet], offset: int) -> np.ndarray:
        """One threshold per target set (n_sets,), or (n_sets, n_readouts) for a nested decomposition."""
        gen = np.random.default_rng(self.seed)
        shapes = [np.asarray(ts.parts) for ts in sets]
        best = np.zeros((len(shapes), *np.shape(dec.rank)))  # one threshold per readout size if nested
        rows, T = basis.shape
        ones = np.ones((dec.n_samples, 1))  # surrogates need only ‖z‖², not the leverage sums
        batch = max(1, min(self.count, SHUFFLED_ELEMENTS // ((rows - 1) * T)))
        stacked = np.empty((rows - 1, batch, T))  # stacked[d − 1, c] = P_d(ũ_c) (P_0 = 1 is no factor)
        for first in range(0, self.count, batch):
            size = min(batch, self.count - first)
            for c in range(size):
                perm = gen.permutation(T)
                for d in range(1, rows):  # row by row into place: 4× faster than basis[:, perm]
                    np.take(basis[d], perm, out=stacked[d - 1, c], mode="clip")
            # every surrogate of every shape in one projection: P_{d_j}(ũ_{t−j}) is row (d_j − 1)·batch + c,
            # delay j, so the copies of one shape step by one row: one run, one GEMM across shapes
            copies = np.arange(size)[:, None]
            groups = [((parts - 1) * batch + copies, np.broadcast_to(np.arange(parts.size), (size, parts.size)))
                      for parts in shapes]
            G, S = project_many(stacked.reshape(-1, T), groups, offset, dec.augmented, ones)
            caps = dec.from_projections(G, S[:, 0]).reshape(len(shapes), size, *best.shape[1:])
            np.maximum(best, caps.max(axis=1), out=best)
        family = family_threshold(dec, sum(len(ts) for ts in sets), self.max_spurious)
        return np.maximum(self.scale * best, family)


@dataclass(frozen=True)
class ChiSquare:
    """Deterministic threshold ``factor`` · F⁻¹(1 − α) of Beta(r/2, (T−1−r)/2), the null distribution of Ĉ
    for a Gaussian target independent of the states (≈ factor · χ²_{r, 1−α} / T). Dambre-lineage code uses
    α = 10⁻³ with factor 2 or 6. ``max_spurious``: the family-wise bound (module docstring), None for none.
    """

    alpha: float = 1e-3
    factor: float = 1.0
    max_spurious: float | None = MAX_SPURIOUS

    def __post_init__(self) -> None:
        _checks.real(self.alpha, "alpha", low=0.0, high=1.0, low_open=True, high_open=True)
        _checks.real(self.factor, "factor", low=0.0, low_open=True)
        _max_spurious(self.max_spurious)

    def thresholds(self, dec: Dec, basis: np.ndarray, sets: Sequence[TargetSet], offset: int) -> np.ndarray:
        a, b = _null_shape(dec)
        with np.errstate(invalid="ignore"):
            value = np.where(a > 0, self.factor * betaincinv(a, b, 1.0 - self.alpha), 0.0)
        value = np.maximum(value, family_threshold(dec, sum(len(ts) for ts in sets), self.max_spurious))
        return np.broadcast_to(value, (len(sets), *value.shape)).copy()


@dataclass(frozen=True)
class NoThreshold:
    """Raw capacities: every target counts with its raw Ĉ, uncorrected (``threshold=None`` means this)."""

    def thresholds(self, dec: Dec, basis: np.ndarray, sets: Sequence[TargetSet], offset: int) -> np.ndarray:
        return np.zeros((len(sets), *np.shape(dec.rank)))


Threshold = Surrogate | ChiSquare | NoThreshold


def as_threshold(threshold: Threshold | None) -> Threshold:
    """The threshold object itself, ``NoThreshold()`` for None (raw capacities), a ``TypeError`` for anything else."""
    if threshold is None:
        return NoThreshold()
    if not hasattr(threshold, "thresholds"):
        raise TypeError(f"threshold must be Surrogate(...), ChiSquare(...), NoThreshold() or None, "
                        f"got {type(threshold).__name__}")
    return threshold
