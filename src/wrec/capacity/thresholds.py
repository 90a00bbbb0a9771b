"""Spurious-capacity thresholds: capacities below them are set to 0 in sums (kept in tables, ``kept=False``).

A target independent of the states still gets Ĉ ≈ r/T; summed over thousands of targets this floor
dominates (spec §2), so every capacity sum is thresholded by default.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import betaincinv

from wrec import _checks
from wrec.capacity.core import Decomposition
from wrec.capacity.targets import project

SHUFFLED_ELEMENTS = 1 << 23  # shuffled basis copies held at once (64 MiB)


@dataclass(frozen=True)
class Surrogate:
    """Shuffle surrogates (default; Kubota et al. 2021): for each target shape (d_1, …, d_n), the capacity of
    Π_j P_{d_j}(ũ_{t−j}) for ``count`` random time-permutations ũ of the input (shared across shapes);
    threshold = ``scale`` × the largest surrogate capacity. No Gaussian assumption.
    """

    count: int = 200
    scale: float = 1.2
    seed: int = 0

    def __post_init__(self) -> None:
        _checks.integer(self.count, "count", low=1)
        _checks.real(self.scale, "scale", low=0.0, low_open=True)

    def thresholds(
        self, dec: Decomposition, basis: np.ndarray, shapes: Sequence[tuple[int, ...]], offset: int
    ) -> np.ndarray:
        gen = np.random.default_rng(self.seed)
        groups = {}  # surrogates with the same number of factors are projected together
        for s, parts in enumerate(shapes):
            groups.setdefault(len(parts), []).append(s)
        best = np.zeros((len(shapes), *np.shape(dec.rank)))  # one threshold per readout size if nested
        rows, T = basis.shape
        batch = max(1, min(self.count, SHUFFLED_ELEMENTS // basis.size))
        for first in range(0, self.count, batch):
            size = min(batch, self.count - first)
            # shuffled copies of the basis stacked as rows: every surrogate of the batch is one target of one GEMM
            stacked = np.concatenate([basis[:, gen.permutation(T)] for _ in range(size)])
            offsets = rows * np.arange(size)[:, None, None]
            for n, members in groups.items():
                degrees = (offsets + np.array([shapes[s] for s in members])[None]).reshape(-1, n)
                delays = np.broadcast_to(np.arange(n), degrees.shape)
                G, sq = project(stacked, degrees, delays, offset, dec.augmented)
                caps = dec.from_projections(G, sq).reshape(size, len(members), *best.shape[1:])
                best[members] = np.maximum(best[members], caps.max(axis=0))
        return self.scale * best


@dataclass(frozen=True)
class ChiSquare:
    """Deterministic threshold ``factor`` · F⁻¹(1 − α) of Beta(r/2, (T−1−r)/2), the null distribution of Ĉ
    for a Gaussian target independent of the states (≈ factor · χ²_{r, 1−α} / T). Dambre-lineage code uses
    α = 10⁻³ with factor 2 or 6.
    """

    alpha: float = 1e-3
    factor: float = 1.0

    def __post_init__(self) -> None:
        _checks.real(self.alpha, "alpha", low=0.0, high=1.0, low_open=True, high_open=True)
        _checks.real(self.factor, "factor", low=0.0, low_open=True)

    def thresholds(
        self, dec: Decomposition, basis: np.ndarray, shapes: Sequence[tuple[int, ...]], offset: int
    ) -> np.ndarray:
        T, r = dec.n_samples, np.asarray(dec.rank, dtype=float)
        with np.errstate(invalid="ignore"):
            value = np.where(r > 0, self.factor * betaincinv(r / 2, (T - 1 - r) / 2, 1.0 - self.alpha), 0.0)
        return np.broadcast_to(value, (len(shapes), *value.shape)).copy()


@dataclass(frozen=True)
class NoThreshold:
    """Raw capacities: every target counts (``threshold=None`` means this)."""

    def thresholds(
        self, dec: Decomposition, basis: np.ndarray, shapes: Sequence[tuple[int, ...]], offset: int
    ) -> np.ndarray:
        return np.zeros((len(shapes), *np.shape(dec.rank)))


Threshold = Surrogate | ChiSquare | NoThreshold


def as_threshold(threshold: Threshold | None) -> Threshold:
    if threshold is None:
        return NoThreshold()
    if not hasattr(threshold, "thresholds"):
        raise TypeError(f"threshold must be Surrogate(...), ChiSquare(...), NoThreshold() or None, "
                        f"got {type(threshold).__name__}")
    return threshold
