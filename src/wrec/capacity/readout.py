"""Capacities as a function of the number L of readout neurons, for a whole grid of L from one QR.

C_L(z) = Σ_{i≤L} (q_iᵀz)²/‖z‖² with X = QR (centred states, columns in readout order): every L of the grid
costs one cumulative sum of the same projection, not a fresh solve.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from wrec import _checks
from wrec._checks import Seed
from wrec.capacity import targets as _targets
from wrec.capacity.basis import orthonormal
from wrec.capacity.core import RankRule
from wrec.capacity.ipc import decomposed, diagnose, evaluate, sampling_variance
from wrec.capacity.thresholds import Surrogate, Threshold, as_threshold


@dataclass(frozen=True, eq=False)
class ReadoutProfile:
    """Capacity by degree for each readout size L.

    Attributes:
        table: one row per (L, degree): capacity (sum of the bias-corrected capacities of the kept targets),
            raw, adjusted, floor, spurious, n_targets, rank.
        order: the neuron order; readout L uses ``order[:L]``.
        warnings: the invariant checks that failed, per L (also issued as ``CapacityWarning``).
    """

    table: pd.DataFrame
    order: np.ndarray
    warnings: tuple[str, ...] = ()

    @property
    def by_degree(self) -> pd.DataFrame:
        """Thresholded capacity, one row per L, one column per degree."""
        return self.table.pivot(index="L", columns="degree", values="capacity")

    @property
    def memory_capacity(self) -> pd.Series:
        """MC(L): the degree-1 capacity for each L."""
        return self.by_degree[1].rename("MC")

    @property
    def rank(self) -> pd.Series:
        return self.table.groupby("L")["rank"].first()


def readout_order(n: int, order: str | Sequence[int] | np.ndarray | None = None, seed: Seed = None) -> np.ndarray:
    """Neuron order: ``None`` or ``"first"`` (0..N−1), ``"random"`` (a seeded permutation), or an index array."""
    if order is None or (isinstance(order, str) and order == "first"):
        return np.arange(n)
    if isinstance(order, str):
        if order != "random":
            raise ValueError(f"order must be None, 'first', 'random' or an index array, got {order!r}")
        return _checks.rng(seed).permutation(n)
    idx = np.asarray(order)
    if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer) or np.unique(idx).size != idx.size:
        raise ValueError("order must be a 1-D array of distinct neuron indices")
    if idx.size == 0 or idx.min() < 0 or idx.max() >= n:
        raise ValueError(f"order indices must lie in [0, {n}), got {idx.min() if idx.size else 'none'}..")
    return idx


def capacity_by_readout(
    states: object,
    u: np.ndarray,
    readouts: Sequence[int] | np.ndarray,
    *,
    max_degree: int | None = None,
    max_delay: int | Mapping[int, int] = 100,
    order: str | Sequence[int] | np.ndarray | None = None,
    seed: Seed = None,
    basis: str = "legendre",
    threshold: Threshold | None = Surrogate(),
    rank: RankRule = "kubota",
    standardize: bool = True,
) -> ReadoutProfile:
    """MC and IPC by degree for readouts of the first L neurons of ``order``, for every L in ``readouts``.

    Same conventions as ``ipc`` (aligned states (T, N) and u (T,), inclusive ``max_delay``, thresholds per
    target shape — here per L, since the null distribution depends on r(L); the same bias correction, the same
    ``CapacityWarning`` for each L whose total exceeds r(L)). ``max_degree=1`` gives MC(L).

    Examples:
        >>> from wrec import capacity, reservoir, weights
        >>> from wrec.tasks import uniform_input
        >>> u = uniform_input(2_000, seed=0)
        >>> esn = reservoir.ESN(weights.gaussian(50, spectral_radius=0.9, seed=1), input_scale=0.1, seed=2)
        >>> X = reservoir.run(esn, u, washout=200)
        >>> profile = capacity.capacity_by_readout(X, u[200:], [10, 25, 50], max_degree=1, max_delay=60)
        >>> profile.memory_capacity.round(1).to_dict()  # MC(L) of the first L neurons
        {10: 10.1, 25: 18.3, 50: 20.4}
    """
    delays = _targets.max_delays(max_degree, max_delay)
    Ls = np.unique(np.asarray(readouts))
    chosen: list[np.ndarray] = []

    def columns(n: int) -> np.ndarray:
        idx = readout_order(n, order, seed)
        if Ls.size and Ls.max() > idx.size:
            raise ValueError(f"readouts must be <= the number of neurons in order ({idx.size}), got {Ls.max()}")
        chosen.append(idx)
        return idx

    dec, u = decomposed(states, u, max(delays.values()), rank=rank, standardize=standardize, columns=columns,
                        readouts=Ls)
    idx = chosen[0]
    threshold = as_threshold(threshold)
    evaluated = evaluate(dec, orthonormal(u, max(delays), basis), delays, threshold)
    frames = []
    for degree in delays:
        group = [e for e in evaluated if e.tset.degree == degree]
        values = np.concatenate([e.values for e in group])  # (m, n_readouts)
        null = np.concatenate([e.null for e in group])
        counted = np.concatenate([e.counted for e in group])
        frames.append(pd.DataFrame({
            "L": dec.readouts, "degree": degree, "capacity": counted.sum(axis=0),
            "raw": values.sum(axis=0), "adjusted": dec.adjusted(values, null).sum(axis=0),
            "floor": values.shape[0] * dec.floor, "spurious": sum(np.asarray(e.spurious) for e in group),
            "n_targets": values.shape[0], "rank": dec.rank,
            "variance": sampling_variance(counted, dec.n_samples),
        }))
    table = pd.concat(frames, ignore_index=True).sort_values(["L", "degree"], ignore_index=True)
    found = [message for L, rows in table.groupby("L") for message in diagnose(
        threshold, float(rows.capacity.sum()), int(rows["rank"].iloc[0]), float(rows.spurious.sum()),
        float(rows.variance.sum()), int(rows.n_targets.sum()), dec.n_samples, where=f"L = {L}: ")]
    return ReadoutProfile(table=table.drop(columns="variance"), order=idx, warnings=tuple(found))
