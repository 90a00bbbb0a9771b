"""A whole capacity profile in one call: MC and IPC by degree against the readout size L, with the correlation
statistics and the theory of MC(L) beside them.

Measured: C_d(L) = Σ_{z of degree d} C_L(z) for nested readouts of the first L neurons of an order, all L from
one QR (``capacity_by_readout``). Beside it: the mean squared correlation ⟨r_ij²⟩ and the participation ratio
PR = L/(1 + (L−1)⟨r_ij²⟩) of the N neurons, wrec's subsampling theory of the raw C_L(z) (``theory``) and the
correlation-free baseline MC_ind(L) = L · mean_i MC_i, as in Takasu & Aoyagi (Phys. Rev. Research 2025).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from wrec import _checks
from wrec._checks import Seed
from wrec.capacity import targets as _targets
from wrec.capacity import theory
from wrec.capacity.blocks import is_blocked
from wrec.capacity.core import readout_sizes
from wrec.capacity.ipc import aligned
from wrec.capacity.readout import ReadoutProfile, capacity_by_readout, readout_order
from wrec.capacity.thresholds import Surrogate, Threshold

READOUT_COUNT = 24  # sizes of the default log-spaced readout grid


def readout_grid(n: int, count: int = READOUT_COUNT) -> np.ndarray:
    """About ``count`` readout sizes from 1 to n, log-spaced (integers, always including 1 and n)."""
    return np.unique(np.round(np.geomspace(1, n, count)).astype(int))


@dataclass(frozen=True, eq=False)
class CapacityProfile(ReadoutProfile):
    """A ``ReadoutProfile`` with the correlation statistics and the theory of MC(L) beside it.

    Attributes:
        table: one row per (L, degree): capacity (thresholded, bias-corrected), raw, adjusted, floor, spurious,
            n_targets, rank (as ``capacity_by_readout``), theory (the predicted raw capacity of a random
            L-subset, ``theory.subsample_prediction``: compare with ``raw``) and independent (the baseline
            L · mean_i MC_i, degree 1 only, NaN otherwise).
        order: the neuron order, a permutation of the N columns; readout L uses ``order[:L]``.
        n_neurons: N.
        mean_r2: ⟨r_ij²⟩ over the pairs of the N neurons (``theory.mean_squared_correlation``).
        participation_ratio: PR = (tr R)²/tr R² of their correlation matrix R (``theory.participation_ratio``).
        warnings: the invariant checks that failed, per L (also issued as ``CapacityWarning``).
    """

    n_neurons: int = field(kw_only=True)
    mean_r2: float = field(kw_only=True)
    participation_ratio: float = field(kw_only=True)

    @property
    def L_half(self) -> float:
        """L½: the smallest L of the grid with MC(L) ≤ L/2, where memory turns sublinear (NaN if none)."""
        mc = self.memory_capacity
        half = mc.index[mc.to_numpy() <= mc.index.to_numpy() / 2]
        return int(half.min()) if half.size else np.nan

    @property
    def summary(self) -> dict[str, float]:
        """Scalars: L (the largest readout of the grid: N by default) and, there, its rank, MC and C_d for each
        degree; ⟨r²⟩, PR, L½, L½/N and the worst relative gap max_L |raw − theory|/raw of MC(L)."""
        top = self.table[self.table.L == self.table.L.max()].set_index("degree")
        mc = self.table[self.table.degree == 1]
        out = {"L": int(top["L"].iloc[0]), "rank": int(top["rank"].iloc[0]), "MC": float(top.loc[1, "capacity"])}
        out.update({f"C_{d}": float(c) for d, c in top["capacity"].items()})
        out.update({"<r2>": self.mean_r2, "PR": self.participation_ratio, "L_half": self.L_half,
                    "L_half/N": self.L_half / self.n_neurons,
                    "max|raw-theory|/raw": float(np.max(np.abs(mc.raw - mc.theory) / mc.raw))})
        return out


def _order(n: int, order: str | Sequence[int] | np.ndarray, seed: Seed) -> np.ndarray:
    """A permutation of the n neurons: ``"random"`` (seeded), ``"given"`` (0..n−1) or an index array."""
    if isinstance(order, str) and order not in ("random", "given"):
        raise ValueError(f"order must be 'random', 'given' or a permutation of the neuron indices, got {order!r}")
    idx = readout_order(n, "first" if isinstance(order, str) and order == "given" else order, seed)
    if idx.size != n:
        raise ValueError(f"order must be a permutation of all N = {n} neurons, got {idx.size} indices; to profile "
                         "a subset of neurons, pass states[:, subset]")
    return idx


def profile(
    states: np.ndarray,
    u: np.ndarray,
    readouts: Sequence[int] | np.ndarray | None = None,
    *,
    max_degree: int | None = None,
    max_delay: int | Mapping[int, int] = 100,
    order: str | Sequence[int] | np.ndarray = "random",
    seed: Seed = None,
    threshold: Threshold | None = Surrogate(),
    basis: str = "legendre",
) -> CapacityProfile:
    """MC(L) and C_d(L) for nested readouts, with ⟨r²⟩, PR, the theory of MC(L) and the correlation-free baseline.

    C_L(z) = Σ_{i≤L} (q_iᵀz)²/‖z‖² with X = QR (centred states, columns in readout order); the theory predicts
    the raw C_L(z) ≈ Σ_j w_j(z) μ_j/(μ_j + κ_L) of a random L-subset from the spectrum μ_j of all N neurons.

    Args:
        states: X, shape (T, N), an in-memory array; ``X[t]`` is the state right after ``u[t]``. The theory and
            the correlations need the whole matrix, so the out-of-memory forms of ``capacity_by_readout`` (paths,
            memmaps, dask arrays, tensors, row blocks) are refused with a ``TypeError``: load them with
            ``np.asarray`` or measure their capacities alone with ``capacity_by_readout``.
        u: the scalar i.i.d. input, shape (T,).
        readouts: the grid of readout sizes, ints in 1..N (default: about 24 log-spaced sizes from 1 to N).
            The summary is taken at the largest.
        max_degree: the highest degree of the targets, as in ``ipc`` (default 3).
        max_delay: the targets' inclusive delays, as in ``ipc``: an int for degrees 1..max_degree or
            ``{degree: max_delay}``; degree 1 (memory) must be among them.
        order: ``"random"`` (a permutation drawn from ``seed``), ``"given"`` (the columns as they are) or a
            permutation of the N column indices.
        threshold: as in ``ipc``.
        basis: as in ``ipc``.

    Shapes: states (T, N), u (T,); ``table`` has one row per (L, degree).

    Examples:
        >>> from wrec import capacity, reservoir, weights
        >>> from wrec.tasks import uniform_input
        >>> u = uniform_input(2_000, seed=0)
        >>> esn = reservoir.ESN(weights.gaussian(50, spectral_radius=0.9, seed=1), input_scale=0.1, seed=2)
        >>> X = reservoir.run(esn, u, washout=200)
        >>> p = capacity.profile(X, u[200:], [5, 25, 50], max_delay={1: 40, 3: 10}, seed=3)
        >>> p.by_degree.round(1).to_dict("index")  # MC(L) and C_3(L) of a random order
        {5: {1: 5.0, 3: 0.0}, 25: {1: 18.2, 3: 4.4}, 50: {1: 20.4, 3: 21.6}}
        >>> {k: round(v, 2) for k, v in p.summary.items() if k in ("MC", "<r2>", "PR", "L_half")}
        {'MC': 20.4, '<r2>': 0.13, 'PR': 6.64, 'L_half': 50}
    """
    X, u = _validated(states, u)
    n = X.shape[1]
    delays = _targets.max_delays(max_degree, max_delay)
    if 1 not in delays:
        raise ValueError(f"max_delay must include degree 1 (memory): the profile is built on MC(L), got {delays}")
    Ls = readout_grid(n) if readouts is None else np.unique(readout_sizes(readouts, n))
    idx = _order(n, order, seed)
    measured = capacity_by_readout(X, u, Ls, max_delay=delays, order=idx, threshold=threshold, basis=basis)
    table, grid = measured.table.copy(), Ls.tolist()
    # the theory predicts raw capacities of random L-subsets (compare with the "raw" column)
    predicted = theory.subsample_prediction(theory.population_spectrum(X, u, delays, basis=basis), grid)
    stacked = predicted.by_degree.stack()
    table["theory"] = stacked.reindex(pd.MultiIndex.from_arrays([table.L, table.degree])).to_numpy()
    independent = pd.Series(theory.independent_prediction(X, u, delays[1], grid), index=Ls)
    table["independent"] = np.where(table.degree == 1, independent.reindex(table.L).to_numpy(), np.nan)
    return CapacityProfile(table=table, order=measured.order, n_neurons=n, mean_r2=theory.mean_squared_correlation(X),
                           participation_ratio=theory.participation_ratio(X), warnings=measured.warnings)


def _validated(states: object, u: object) -> tuple[np.ndarray, np.ndarray]:
    """States (T, N ≥ 2) in memory and u (T,), finite and aligned."""
    if is_blocked(states):
        raise TypeError(f"states must be an in-memory (T, N) array for profile (the theory and the correlations "
                        f"need the whole matrix), got {type(states).__name__}: load it with np.asarray, or use "
                        "capacity_by_readout for the capacities of states that do not fit in memory")
    X = _checks.array(states, "states", ndim=2)
    if X.shape[1] < 2:
        raise ValueError(f"states must have at least 2 columns (neurons) for a correlation, got shape {X.shape}")
    return aligned(X, u, 0)
