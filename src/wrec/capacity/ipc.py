"""Information processing capacity (Dambre et al., Sci. Rep. 2, 514, 2012; Kubota et al., PRR 3, 043135, 2021).

IPC of degree d = Σ over every target z_t = Π_i P_{d_i}(u_{t−k_i}) with Σ d_i = d of C(z); for a fading-memory
system with T, delays → ∞ the total over all degrees equals the rank r of the states.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from wrec import _checks
from wrec.capacity import targets as _targets
from wrec.capacity.basis import orthonormal
from wrec.capacity.blocks import RowBlocks, _BlockBasis, decompose_aligned, is_blocked
from wrec.capacity.core import Decomposition, NestedDecomposition, RankRule, decompose, nested_decompose
from wrec.capacity.thresholds import (
    MAX_SPURIOUS,
    NoThreshold,
    Surrogate,
    Threshold,
    as_threshold,
    expected_spurious,
)

TARGET_BLOCK = 2048  # targets projected together (G is TARGET_BLOCK × (r + 2))
SPURIOUS_WARNING = 0.5  # expected spurious total (capacity units) above which a result warns


class CapacityWarning(UserWarning):
    """A capacity result that breaks an invariant (total above the rank) or rests on many chance capacities."""


@dataclass(frozen=True, eq=False)
class _Evaluated:
    """Capacities of one target shape, each (m,) or (m, n_readouts) against one r(L) per readout size.

    values: raw Ĉ; null: each target's null mean e(z); threshold: the shape's threshold θ (or (n_readouts,));
    kept: Ĉ > θ·λ, λ = e(z)(T−1)/r; counted: what each target adds to a sum (its bias-corrected capacity if
    kept, else 0; the raw Ĉ without a threshold); spurious: the expected share of ``counted`` of targets
    unrelated to the states (float or (n_readouts,)).
    """

    tset: _targets.TargetSet
    values: np.ndarray
    null: np.ndarray
    threshold: float | np.ndarray
    kept: np.ndarray
    counted: np.ndarray
    spurious: float | np.ndarray


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


def decomposed(
    states: object, u: object, offset: int, *, rank: RankRule, standardize: bool,
    columns: Callable[[int], np.ndarray | slice] | None = None, readouts: np.ndarray | None = None,
) -> tuple[Any, np.ndarray]:
    """(the decomposition of the state rows t ≥ offset, u) for in-memory states or states in row blocks
    (``wrec.capacity.blocks``), checked to be aligned row by row with u (T,).

    ``columns(N)`` picks the state columns used (in that order); with ``readouts`` the decomposition is nested
    (``nested_decompose``: one basis per readout size L, the first L of the columns)."""
    if is_blocked(states):
        u = _checks.array(u, "u", ndim=1)
        if offset >= u.size:
            raise ValueError(f"max_delay must be smaller than T = {u.size}, got {offset}")
        blocks = RowBlocks(states)
        if columns is not None:
            n = blocks.n_columns
            blocks = blocks.narrowed(columns=np.arange(n)[columns(n)])
        return decompose_aligned(blocks, u, offset, rank=rank, standardize=standardize, readouts=readouts), u
    X, u = aligned(states, u, offset)
    X = X[offset:] if columns is None else X[offset:, columns(X.shape[1])]
    if readouts is not None:
        return nested_decompose(X, readouts, rank=rank, standardize=standardize), u
    return decompose(X, rank=rank, standardize=standardize), u


def evaluate(
    dec: Decomposition | NestedDecomposition | _BlockBasis,
    basis: np.ndarray,
    max_delay: Mapping[int, int],
    threshold: Threshold,
) -> list[_Evaluated]:
    """Capacities of every target up to the given per-degree delays, from one decomposition of the states.

    ``dec`` decomposes the state rows t ≥ offset = max delay (``decompose(X[offset:])``, or
    ``nested_decompose`` for a grid of readout sizes: then every array gets a trailing readout axis).
    Targets of every shape are built and projected together in blocks of ``TARGET_BLOCK`` columns, chunk by
    chunk of rows (``targets.project_many``), so the target matrix is never held whole.
    """
    offset = max(max_delay.values())
    sets = [ts for d, k in max_delay.items() for ts in _targets.delay_sets(d, k)]
    thr = threshold.thresholds(dec, basis, sets, offset)
    raw = isinstance(threshold, NoThreshold)
    e0 = np.asarray(dec.floor, dtype=float)
    per_set = [np.empty((len(ts), *np.shape(dec.rank))) for ts in sets]
    null_per_set = [np.empty_like(v) for v in per_set]
    for pieces in packed([len(ts) for ts in sets], TARGET_BLOCK):  # shapes mixed: every GEMM is TARGET_BLOCK wide
        G, S = _targets.project_many(basis, [(sets[s].degrees[a:b], sets[s].delays[a:b]) for s, a, b in pieces],
                                     offset, dec.augmented, dec.squared)
        block_values, block_null = dec.from_projections(G, S[:, -1]), dec.null(G, S)
        i = 0
        for s, a, b in pieces:
            per_set[s][a:b], null_per_set[s][a:b] = block_values[i : i + b - a], block_null[i : i + b - a]
            i += b - a
    out = []
    for ts, t, values, null in zip(sets, thr, per_set, null_per_set, strict=True):
        if raw:
            kept, counted, spurious = np.ones(values.shape, bool), values, len(ts) * e0
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                kept = (e0 > 0) & (values * e0 > t * null)  # Ĉ > θ·λ without dividing by a zero rank
            counted = np.where(kept, dec.adjusted(values, null), 0.0)
            spurious = expected_spurious(dec, len(ts), t)
        out.append(_Evaluated(ts, values, null, t, kept, counted, spurious))
    return out


def packed(sizes: list[int], block: int) -> Iterator[list[tuple[int, int, int]]]:
    """Pieces (set, start, stop) of sets of the given sizes, in order, packed into blocks of ``block`` targets."""
    pieces: list[tuple[int, int, int]] = []
    used = 0
    for s, size in enumerate(sizes):
        start = 0
        while start < size:
            stop = min(size, start + block - used)
            pieces.append((s, start, stop))
            used += stop - start
            start = stop
            if used == block:
                yield pieces
                pieces, used = [], 0
    if pieces:
        yield pieces


def sampling_variance(counted: np.ndarray, n_samples: int) -> np.ndarray:
    """Σ_j 4 c_j (1 − c_j)² / T: the variance of a sum of in-sample R² values c_j from T samples (each R² has
    asymptotic variance 4c(1 − c)²/T), errors taken as independent. Sums over the first axis."""
    c = np.clip(counted, 0.0, 1.0)
    return np.sum(4.0 * c * (1.0 - c) ** 2, axis=0) / n_samples


def diagnose(
    threshold: Threshold, total: float, rank: int, spurious: float, variance: float, n_targets: int, n_samples: int,
    *, where: str = "",
) -> tuple[str, ...]:
    """What is wrong with a thresholded capacity total, if anything, and what to change (one message each, each
    also issued as a ``CapacityWarning``, prefixed by ``where``). Raw capacities (``NoThreshold``) are not checked.

    The total may exceed the rank by the chance capacity the threshold allows (``MAX_SPURIOUS``) plus three
    standard errors of the sum (``sampling_variance``); beyond that it is an artefact of the finite sample.
    """
    if isinstance(threshold, NoThreshold):
        return ()
    found = []
    allowance = MAX_SPURIOUS + 3.0 * float(np.sqrt(variance))
    if total > rank + allowance:
        found.append(
            f"the total capacity {total:.4g} exceeds the rank r = {rank} of the states, its ceiling, by more than "
            f"its sampling error ({allowance:.2g}): finite-sample error dominates at T = {n_samples} for "
            f"{n_targets} targets. Use more time steps, fewer targets (a smaller max_delay) or a stricter threshold")
    if spurious > SPURIOUS_WARNING:
        found.append(
            f"targets unrelated to the states are expected to add {spurious:.3g} to the total ({n_targets} "
            f"targets at T = {n_samples}): use more time steps, fewer targets (a smaller max_delay) or a "
            "smaller max_spurious of the threshold")
    found = [where + message for message in found]
    for message in found:
        warnings.warn(message, CapacityWarning, stacklevel=3)
    return tuple(found)


@dataclass(frozen=True, eq=False)
class IPC:
    """IPC profile of a state matrix.

    Attributes:
        table: one row per target: degree, parts, degrees, delays, capacity (raw Ĉ), null (its null mean e),
            adjusted ((Ĉ − e)/(1 − e)), threshold (the shape's θ), kept (Ĉ > θ·e(T−1)/r).
        by_degree: per degree, the sum of the bias-corrected capacities of the kept targets (pandas Series).
        total: Σ_d by_degree, at most ``rank`` (a ``CapacityWarning`` says when not).
        rank: rank r of the centred states (the ceiling of the total).
        n_samples: rows T used (after dropping the first max-delay rows).
        spurious: the expected part of ``total`` due to targets unrelated to the states.
        summary: per degree: n_targets, raw (Σ Ĉ), thresholded (Σ Ĉ over kept targets: Kubota et al.'s
            convention), adjusted (Σ over all targets), floor n_targets·r/(T−1), spurious, capacity.
        warnings: the invariant checks that failed, each with what to change (also issued as warnings).
    """

    table: pd.DataFrame
    by_degree: pd.Series
    total: float
    rank: int
    n_samples: int
    spurious: float
    summary: pd.DataFrame
    warnings: tuple[str, ...] = ()


def ipc(
    states: np.ndarray,
    u: np.ndarray,
    max_degree: int | None = None,
    max_delay: int | Mapping[int, int] = 100,
    *,
    basis: str = "legendre",
    threshold: Threshold | None = Surrogate(),
    rank: RankRule = "kubota",
    standardize: bool = True,
) -> IPC:
    """Information processing capacity by degree of any state matrix driven by a scalar i.i.d. input.

    Args:
        states: X, shape (T, L); ``X[t]`` is the state right after ``u[t]`` (e.g. ``run(..., washout=w)``
            with ``u[w:]``). Or states that need not fit in memory: a ``.npy`` path or memmap, a dask array, a
            list of row blocks or a function returning an iterator over them (``wrec.capacity.blocks``).
        u: the input, shape (T,).
        max_degree: degrees 1..max_degree are evaluated (default 3; with a ``max_delay`` mapping, default
            to the degrees it lists).
        max_delay: largest delay k (inclusive), one int for all degrees or ``{degree: max_delay}``
            (then only the listed degrees are evaluated). Targets use rows t ≥ max(max_delay).
        basis: ``"legendre"`` (u ~ U[−1, 1]), ``"hermite"`` (u ~ N(0, 1)) or ``"gram_schmidt"`` (empirical).
        threshold: ``Surrogate()`` (default) or ``ChiSquare()``: a target counts, with its bias-corrected
            capacity (Ĉ − e)/(1 − e), when it passes the larger of the per-shape null and a family-wise bound
            that keeps the expected spurious total below ``max_spurious`` (``wrec.capacity.thresholds``).
            None: every target counts with its raw Ĉ (no threshold, no correction).
        rank: rank rule of the state decomposition (see ``wrec.capacity.core.kept_rank``).
        standardize: scale each state column to unit norm first (default), so that capacities and the rank do
            not depend on a column's scale. ``False`` with ``rank="kubota"`` reproduces the ranks Kubota et al.
            (2021) publish (their rule drops directions below 10⁻⁷ of the largest, whatever the neurons' scales).

    The basis must match the input's distribution (``wrec.capacity.basis.orthonormal`` checks it); a
    ``CapacityWarning`` says when the total exceeds the rank or chance capacities are expected to weigh.

    Examples:
        >>> from wrec import capacity, reservoir, weights
        >>> from wrec.tasks import uniform_input
        >>> u = uniform_input(2_000, seed=0)  # U[-1, 1]: the Legendre basis
        >>> esn = reservoir.ESN(weights.gaussian(50, spectral_radius=0.9, seed=1), input_scale=0.1, seed=2)
        >>> X = reservoir.run(esn, u, washout=200)
        >>> result = capacity.ipc(X, u[200:], max_degree=3, max_delay=20)
        >>> result.by_degree.round(1).to_dict(), result.rank  # tanh is odd: no even-degree capacity
        ({1: 18.6, 2: 0.0, 3: 24.3}, 50)
    """
    delays = _targets.max_delays(max_degree, max_delay)
    dec, u = decomposed(states, u, max(delays.values()), rank=rank, standardize=standardize)
    values = orthonormal(u, max(delays), basis)
    threshold = as_threshold(threshold)
    evaluated = evaluate(dec, values, delays, threshold)
    table = pd.concat([
        pd.DataFrame({
            "degree": e.tset.degree,
            "parts": ",".join(map(str, e.tset.parts)),
            "degrees": _targets.labels(e.tset.degrees),
            "delays": _targets.labels(e.tset.delays),
            "capacity": e.values,
            "null": e.null,
            "adjusted": dec.adjusted(e.values, e.null),
            "threshold": float(e.threshold),
            "kept": e.kept,
        }) for e in evaluated], ignore_index=True)
    counted = np.concatenate([e.counted for e in evaluated])
    grouped = table.assign(thresholded=table["capacity"].where(table["kept"], 0.0), counted=counted).groupby("degree")
    spurious = pd.Series([float(e.spurious) for e in evaluated], index=[e.tset.degree for e in evaluated])
    summary = pd.DataFrame({
        "n_targets": grouped.size(),
        "raw": grouped["capacity"].sum(),
        "thresholded": grouped["thresholded"].sum(),
        "adjusted": grouped["adjusted"].sum(),
        "floor": grouped.size() * dec.floor,
        "spurious": spurious.groupby(level=0).sum(),
        "capacity": grouped["counted"].sum(),
    })
    by_degree = summary["capacity"].rename("capacity")
    total, expected = float(by_degree.sum()), float(summary["spurious"].sum())
    found = diagnose(threshold, total, dec.rank, expected, float(sampling_variance(counted, dec.n_samples)),
                     len(table), dec.n_samples)
    return IPC(table=table, by_degree=by_degree, total=total, rank=dec.rank, n_samples=dec.n_samples,
               spurious=expected, summary=summary, warnings=found)
