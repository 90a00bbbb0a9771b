"""Information processing capacity (Dambre et al., Sci. Rep. 2, 514, 2012; Kubota et al., PRR 3, 043135, 2021).

IPC of degree d = Σ over every target z_t = Π_i P_{d_i}(u_{t−k_i}) with Σ d_i = d of C(z); for a fading-memory
system with T, delays → ∞ the total over all degrees equals the rank r of the states.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from wrec import _checks
from wrec.capacity import targets as _targets
from wrec.capacity.basis import orthonormal
from wrec.capacity.core import Decomposition, NestedDecomposition, RankRule, decompose
from wrec.capacity.thresholds import Surrogate, Threshold, as_threshold

TARGET_BLOCK = 2048  # targets projected together (G is TARGET_BLOCK × (r + 1))


@dataclass(frozen=True, eq=False)
class _Evaluated:
    """Capacities of one target shape: raw values (m,) and the shape's threshold (or (m, n_readouts), (n_readouts,))."""

    tset: _targets.TargetSet
    values: np.ndarray
    threshold: float | np.ndarray


def aligned(states: object, u: object, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate that states (T, L) and u (T,) are aligned row by row and that T > offset."""
    X = _checks.array(states, "states", ndim=2)
    u = _checks.array(u, "u", ndim=1)
    if X.shape[0] != u.shape[0]:
        raise ValueError(
            f"states has T = {X.shape[0]} rows but u has {u.shape[0]} samples; they must be aligned (X[t] is "
            "the state right after u[t]): after run(..., washout=w), pass u[w:]")
    if offset >= X.shape[0]:
        raise ValueError(f"max_delay must be smaller than T = {X.shape[0]}, got {offset}")
    return X, u


def evaluate(
    dec: Decomposition | NestedDecomposition,
    basis: np.ndarray,
    max_delay: Mapping[int, int],
    threshold: Threshold,
) -> list[_Evaluated]:
    """Capacities of every target up to the given per-degree delays, from one decomposition of the states.

    ``dec`` decomposes the state rows t ≥ offset = max delay (``decompose(X[offset:])``, or
    ``nested_decompose`` for a grid of readout sizes: then values and thresholds get a trailing readout axis).
    Targets are generated and projected in blocks of ``TARGET_BLOCK`` columns, chunk by chunk of rows, so the
    target matrix is never held whole.
    """
    offset = max(max_delay.values())
    sets = [ts for d, k in max_delay.items() for ts in _targets.delay_sets(d, k)]
    thr = threshold.thresholds(dec, basis, [ts.parts for ts in sets], offset)
    out = []
    for ts, t in zip(sets, thr, strict=True):
        values = np.empty((len(ts), *np.shape(dec.rank)))
        for start in range(0, len(ts), TARGET_BLOCK):
            stop = min(start + TARGET_BLOCK, len(ts))
            G, sq = _targets.project(basis, ts.degrees[start:stop], ts.delays[start:stop], offset, dec.augmented)
            values[start:stop] = dec.from_projections(G, sq)
        out.append(_Evaluated(ts, values, t))
    return out


@dataclass(frozen=True, eq=False)
class IPC:
    """IPC profile of a state matrix.

    Attributes:
        table: one row per target (degree, parts, degrees, delays, capacity, threshold, kept).
        by_degree: thresholded capacity per degree (pandas Series indexed by degree).
        total: Σ_d by_degree, to compare with ``rank``.
        rank: rank r of the centred states (the ceiling of the total).
        n_samples: rows T used (after dropping the first max-delay rows).
        summary: per degree: n_targets, raw sum, thresholded sum, adjusted sum, floor n_targets·r/(T−1).
    """

    table: pd.DataFrame
    by_degree: pd.Series
    total: float
    rank: int
    n_samples: int
    summary: pd.DataFrame



def ipc(
    states: np.ndarray,
    u: np.ndarray,
    max_degree: int | None = None,
    max_delay: int | Mapping[int, int] = 100,
    *,
    basis: str = "legendre",
    threshold: Threshold | None = Surrogate(),
    rank: RankRule = "kubota",
) -> IPC:
    """Information processing capacity by degree of any state matrix driven by a scalar i.i.d. input.

    Args:
        states: X, shape (T, L); ``X[t]`` is the state right after ``u[t]`` (e.g. ``run(..., washout=w)``
            with ``u[w:]``).
        u: the input, shape (T,).
        max_degree: degrees 1..max_degree are evaluated (default 3; with a ``max_delay`` mapping, default
            to the degrees it lists).
        max_delay: largest delay k (inclusive), one int for all degrees or ``{degree: max_delay}``
            (then only the listed degrees are evaluated). Targets use rows t ≥ max(max_delay).
        basis: ``"legendre"`` (u ~ U[−1, 1]), ``"hermite"`` (u ~ N(0, 1)) or ``"gram_schmidt"`` (empirical).
        threshold: ``Surrogate()`` (default), ``ChiSquare()``, or None for raw capacities.
        rank: rank rule of the state decomposition (see ``wrec.capacity.core.kept_rank``).
    """
    delays = _targets.max_delays(max_degree, max_delay)
    X, u = aligned(states, u, max(delays.values()))
    values = orthonormal(u, max(delays), basis)
    dec = decompose(X[max(delays.values()):], rank=rank)
    evaluated = evaluate(dec, values, delays, as_threshold(threshold))
    table = pd.concat([
        pd.DataFrame({
            "degree": e.tset.degree,
            "parts": ",".join(map(str, e.tset.parts)),
            "degrees": _targets.labels(e.tset.degrees),
            "delays": _targets.labels(e.tset.delays),
            "capacity": e.values,
            "threshold": float(e.threshold),
            "kept": e.values > e.threshold,
        }) for e in evaluated], ignore_index=True)
    table["adjusted"] = dec.adjusted(table["capacity"].to_numpy())
    kept_values = table["capacity"].where(table["kept"], 0.0)
    grouped = table.assign(thresholded=kept_values).groupby("degree")
    summary = pd.DataFrame({
        "n_targets": grouped.size(),
        "raw": grouped["capacity"].sum(),
        "thresholded": grouped["thresholded"].sum(),
        "adjusted": grouped["adjusted"].sum(),
        "floor": grouped.size() * dec.floor,
    })
    by_degree = summary["thresholded"].rename("capacity")
    return IPC(table=table, by_degree=by_degree, total=float(by_degree.sum()), rank=dec.rank,
               n_samples=dec.n_samples, summary=summary)
