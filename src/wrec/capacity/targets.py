"""Enumeration of IPC targets z_t = Π_i P_{d_i}(u_{t−k_i}) (distinct delays k_i, degree Σ d_i).

For degree d: every integer partition of d (its *shape*, d_1 ≥ d_2 ≥ …) and every assignment of distinct
delays from 0..max_delay to its parts, equal parts taking increasing delays. A shape with n parts and
multiplicities m_j has (D)!/((D − n)! Π m_j!) targets, D = max_delay + 1 (Kubota et al. 2021).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations, permutations
from math import comb, factorial, prod
from typing import Any

import numpy as np

from wrec import _checks
from wrec.capacity.backend import NUMPY, backend_of
from wrec.capacity.projection import project_offsets


@dataclass(frozen=True, eq=False)
class TargetSet:
    """All targets of one shape.  Shapes: ``degrees``, ``delays`` (n_targets, n_parts); row i is target i."""

    parts: tuple[int, ...]
    degrees: np.ndarray
    delays: np.ndarray

    @property
    def degree(self) -> int:
        return sum(self.parts)

    def __len__(self) -> int:
        return self.delays.shape[0]


def labels(rows: np.ndarray) -> np.ndarray:
    """Rows of degrees or delays as text labels, e.g. [[2, 1], [1, 1]] -> ["2,1", "1,1"] (for tables)."""
    return np.array([",".join(map(str, r)) for r in rows.tolist()], dtype=object)


def partitions(degree: int) -> list[tuple[int, ...]]:
    """Integer partitions of ``degree`` with parts in non-increasing order, e.g. 3 -> (3,), (2, 1), (1, 1, 1)."""

    def gen(n: int, largest: int) -> Iterator[tuple[int, ...]]:
        if n == 0:
            yield ()
            return
        for first in range(min(n, largest), 0, -1):
            for rest in gen(n - first, first):
                yield (first, *rest)

    return list(gen(_checks.integer(degree, "degree", low=1), degree))


def count(parts: tuple[int, ...], max_delay: int) -> int:
    """Number of targets of a shape: D!/((D − n)! Π m_j!), D = max_delay + 1."""
    D, n = max_delay + 1, len(parts)
    if n > D:
        return 0
    return comb(D, n) * factorial(n) // prod(factorial(parts.count(p)) for p in set(parts))


def target_set(parts: tuple[int, ...], max_delay: int) -> TargetSet:
    """All targets of one shape with delays 0..max_delay (sorted delay tuples in lexicographic order)."""
    n = len(parts)
    orders = sorted(set(permutations(parts)), reverse=True)  # distinct assignments of parts to sorted delays
    combos = np.array(list(combinations(range(max_delay + 1), n)), dtype=np.int64).reshape(-1, n)
    delays = np.repeat(combos, len(orders), axis=0)
    degrees = np.tile(np.array(orders, dtype=np.int64).reshape(-1, n), (len(combos), 1))
    return TargetSet(parts=tuple(parts), degrees=degrees, delays=delays)


def delay_sets(degree: int, max_delay: int) -> tuple[TargetSet, ...]:
    """Every target of total ``degree`` with delays 0..max_delay, one ``TargetSet`` per partition shape."""
    max_delay = _checks.integer(max_delay, "max_delay", low=0)
    return tuple(target_set(p, max_delay) for p in partitions(degree) if len(p) <= max_delay + 1)


def max_delays(max_degree: int | None, max_delay: int | Mapping[int, int]) -> dict[int, int]:
    """Normalise ``max_delay`` (an int for every degree, or {degree: max_delay}) to a {degree: max_delay} dict."""
    if isinstance(max_delay, Mapping):
        if not max_delay:
            raise ValueError("max_delay must not be an empty mapping")
        out = {}
        for d, k in max_delay.items():
            d = _checks.integer(d, "max_delay's degree keys", low=1)
            out[d] = _checks.integer(k, f"max_delay[{d}]", low=0)
        if max_degree is not None and max(out) > max_degree:
            raise ValueError(f"max_delay has degree {max(out)} > max_degree = {max_degree}")
        return dict(sorted(out.items()))
    max_degree = 3 if max_degree is None else max_degree
    max_degree = _checks.integer(max_degree, "max_degree", low=1)
    k = _checks.integer(max_delay, "max_delay", low=0)
    return {d: k for d in range(1, max_degree + 1)}


def build(
    basis: np.ndarray, tset: TargetSet, start: int, stop: int, offset: int, out: np.ndarray | None = None
) -> np.ndarray:
    """Target columns ``start:stop`` of ``tset`` on the rows t = offset..T−1.

    ``basis`` holds P_n(u_t), shape (max_degree + 1, T). Returns a Fortran-ordered (T − offset, stop − start)
    block (each column contiguous), written into ``out`` when given. Delayed columns are slices (views) of
    the basis rows, so building costs one multiply per factor.
    """
    T = basis.shape[1]
    rows = T - offset
    Z = np.empty((rows, stop - start), order="F") if out is None else out[:, : stop - start]
    for j, i in enumerate(range(start, stop)):
        col = Z[:, j]
        degs, dels = tset.degrees[i], tset.delays[i]
        np.copyto(col, basis[degs[0], offset - dels[0] : T - dels[0]])
        for d, k in zip(degs[1:], dels[1:], strict=True):
            col *= basis[d, offset - k : T - k]
    return Z


CHUNK_ELEMENTS = 1 << 20  # target values per row chunk (8 MiB): a chunk and its GEMM stay in cache
CHUNK_ROWS = 1 << 13  # at most this many rows at once, so rows of A made on request stay small too


def project(
    basis: np.ndarray, degrees: np.ndarray, delays: np.ndarray, offset: int, A: Any, B: Any
) -> tuple[np.ndarray, np.ndarray]:
    """ZᵀA and (Z∘Z)ᵀB for the targets z_j,t = Π_f P_{degrees[j, f]}(u_{t − delays[j, f]}), t = offset..T−1.

    ``A`` (T − offset, p) and ``B`` (T − offset, q) are row-aligned with the targets (e.g. A = [U_r, 1, h] and
    B = [h, 1]: projections, Σz, Σ h z, Σ h z² and ‖z‖²). Z is never formed whole: it is built block by block
    into reused buffers and each block is projected by one GEMM (``wrec.capacity.projection``). The work runs
    where A's rows live (``wrec.capacity.backend``: NumPy, or a torch device). G and S come back as NumPy arrays.
    Shapes: degrees, delays (m, n_factors) -> (m, p), (m, q).
    """
    return project_many(basis, [(degrees, delays)], offset, A, B)


def project_many(
    basis: np.ndarray, targets: Sequence[tuple[np.ndarray, np.ndarray]], offset: int, A: Any, B: Any
) -> tuple[np.ndarray, np.ndarray]:
    """``project`` of several target groups (degrees, delays) at once (their factor counts may differ): one
    plan, one GEMM per buffer across groups. G and S hold the groups' rows one group after another."""
    if getattr(A, "distributed", False):  # states in a dask array: one task per row block
        G, S = zip(*(A.project_by_blocks(basis, d, k, offset, B) for d, k in targets), strict=True)
        return np.concatenate(G), np.concatenate(S)
    xp = backend_of(A)
    if xp is not NUMPY:
        G, S = zip(*(_project_gathered(xp, basis, d, k, offset, A, B) for d, k in targets), strict=True)
        return np.concatenate(G), np.concatenate(S)
    n_rows, T = basis.shape
    offsets = []
    for degrees, delays in targets:
        degrees, delays = np.asarray(degrees, dtype=np.int64), np.asarray(delays, dtype=np.int64)
        if degrees.size and (degrees.min() < 0 or degrees.max() >= n_rows or delays.min() < 0
                             or delays.max() > offset):
            raise ValueError(f"targets need degrees in 0..{n_rows - 1} (the basis rows) and delays in 0..{offset} "
                             f"(the offset), got degrees {degrees.min()}..{degrees.max()} and delays "
                             f"{delays.min()}..{delays.max()}")
        offsets.append(degrees * T + (offset - delays))
    flat = np.ascontiguousarray(basis, dtype=np.float64).reshape(-1)
    return project_offsets(flat, offsets, T - offset, A, B)


CHUNK_ELEMENTS = 1 << 20  # target values per row chunk (8 MiB) of the gathered (torch) route
CHUNK_ROWS = 1 << 13  # at most this many rows at once, so rows of A made on request stay small too


def _project_gathered(
    xp: Any, basis: np.ndarray, degrees: np.ndarray, delays: np.ndarray, offset: int, A: Any, B: Any
) -> tuple[np.ndarray, np.ndarray]:
    """``project`` on a torch device: the targets gathered chunk by chunk of rows from a sliding-window view of
    the basis (vectorised gathers suit a GPU), each chunk multiplied at once."""
    T = basis.shape[1]
    rows = T - offset
    windows = xp.windows(xp.asarray(basis), rows)  # windows[d, j] = basis[d, j : j + rows]
    degrees, starts = xp.index(degrees), xp.index(offset - delays)
    m = degrees.shape[0]
    G = xp.zeros((m, A.shape[1]))
    S = xp.zeros((m, B.shape[1]))
    chunk = min(CHUNK_ROWS, max(64, CHUNK_ELEMENTS // max(m, 1)))
    for t0 in range(0, rows, chunk):
        t1 = min(t0 + chunk, rows)
        Zt = windows[degrees[:, 0], starts[:, 0], t0:t1]  # (m, chunk)
        for f in range(1, degrees.shape[1]):
            Zt *= windows[degrees[:, f], starts[:, f], t0:t1]
        G += Zt @ xp.asarray(A[t0:t1])
        Zt *= Zt
        S += Zt @ xp.asarray(B[t0:t1])
    return xp.to_numpy(G), xp.to_numpy(S)
