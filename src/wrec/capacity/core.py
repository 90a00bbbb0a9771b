"""Capacities of many targets from one decomposition of the centred states.

C(z) = zᵀX(XᵀX)⁺Xᵀz / zᵀz = ‖U_rᵀ z‖² / ‖z‖²  (X, z centred; U_r the left singular vectors kept by the rank
rule): the in-sample R² of the least-squares readout with intercept (Dambre et al., Sci. Rep. 2012).
One SVD of X, then one GEMM U_rᵀZ per block of targets; never XᵀX or its inverse (spec §2).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.linalg

from wrec import _checks

RankRule = str | float
_EPS = np.finfo(np.float64).eps
BLOCK_ELEMENTS = 1 << 24  # target-block size in float64 elements (128 MiB): memory stays bounded


def kept_rank(singular_values: np.ndarray, n_columns: int, rank: RankRule = "kubota") -> int:
    """Number of singular values kept.

    ``"kubota"`` (default): σ_i² > σ_1² · L · ε₆₄ (reproduces the published ranks of Kubota et al. 2021);
    ``"numpy"``: σ_i > σ_1 · max(T, L) · ε (``numpy.linalg.matrix_rank``); a float: σ_i > rtol · σ_1.
    """
    s = singular_values
    if s.size == 0 or s[0] == 0.0:
        return 0
    rel = s / s[0]  # scale-free: no overflow for huge states
    if rank == "kubota":
        return int(np.count_nonzero(rel * rel > n_columns * _EPS))
    if rank == "numpy":
        return int(np.count_nonzero(rel > max(s.size, n_columns) * _EPS))
    if isinstance(rank, (float, int)) and not isinstance(rank, bool):
        rtol = _checks.real(rank, "rank", low=0.0, high=1.0, low_open=True)
        return int(np.count_nonzero(rel > rtol))
    raise ValueError(f"rank must be 'kubota', 'numpy' or a relative tolerance in (0, 1], got {rank!r}")


@dataclass(frozen=True, eq=False)
class _Basis:
    """An orthonormal basis (T, k) of the centred state columns (abstract: the projection bookkeeping)."""

    basis: np.ndarray

    @cached_property
    def augmented(self) -> np.ndarray:
        """[basis, 1] (T, k + 1), C-ordered, for the one-GEMM projection."""
        return np.hstack([self.basis, np.ones((self.basis.shape[0], 1))])

    @cached_property
    def _column_sums(self) -> np.ndarray:
        """1ᵀ basis (≈ 0: the centred states are orthogonal to 1; kept for exactness)."""
        return self.basis.sum(axis=0)

    def _centred(self, G: np.ndarray, sq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(basisᵀ(z − z̄) (m, k), ‖z − z̄‖² (m,)) from G = Zᵀ[basis, 1] and sq = ‖z‖²: the mean removed exactly."""
        T, k = self.basis.shape
        zbar = G[:, k] / T
        proj = G[:, :k] - zbar[:, None] * self._column_sums[None, :]
        denom = sq - T * zbar * zbar
        if np.any(denom <= 0.0):
            raise ValueError("a target has zero variance on the evaluated rows; a constant has no capacity")
        return proj, denom

    # subclasses define ``rank`` (r, or one r(L) per readout size) and ``n_samples`` (T)
    @property
    def floor(self) -> float | np.ndarray:
        """E[C] of one target independent of the states: r/(T − 1) (exact for Gaussian z, spec §2)."""
        return self.rank / (self.n_samples - 1)

    def adjusted(self, values: np.ndarray) -> np.ndarray:
        """Finite-sample bias correction Ĉ_adj = 1 − (1 − Ĉ)(T − 1)/(T − 1 − r), unbiased for E[Ĉ]
        (values (m,), or (m, n_readouts) against one r(L) per column)."""
        T, r = self.n_samples, self.rank
        return 1.0 - (1.0 - values) * (T - 1) / (T - 1 - r)


@dataclass(frozen=True, eq=False)
class Decomposition(_Basis):
    """An orthonormal basis U_r (T, r) of the centred state columns, with the rank r and the sample count T."""

    singular_values: np.ndarray
    rank: int
    n_samples: int

    def capacities(self, Z: np.ndarray) -> np.ndarray:
        """C(z_j) for each column of Z (T, m). Returns (m,) values in [0, 1].

        One GEMM Zᵀ[U_r, 1] gives U_rᵀz and Σz, then ``from_projections``. Targets whose mean dwarfs their
        spread lose precision in ‖z‖² − T z̄²: centre such columns first (``capacities`` does).
        """
        return self.from_projections(Z.T @ self.augmented, np.einsum("tj,tj->j", Z, Z))

    def from_projections(self, G: np.ndarray, sq: np.ndarray) -> np.ndarray:
        """Capacities from G = Zᵀ[U_r, 1] (m, r + 1) and sq = ‖z_j‖² (m,), accumulated in any row order.

        C = ‖U_rᵀ(z − z̄)‖² / (‖z‖² − T z̄²): the mean is removed exactly, so Z never needs centring or copying.
        """
        return np.clip(self.loadings(G, sq).sum(axis=1), 0.0, 1.0)

    def loadings(self, G: np.ndarray, sq: np.ndarray) -> np.ndarray:
        """Per-direction shares w_ji = (u_iᵀ(z_j − z̄_j))² / ‖z_j − z̄_j‖², shape (m, r); C(z_j) = Σ_i w_ji.

        For the SVD basis these are the loadings of each target on the principal directions of the states.
        """
        proj, denom = self._centred(G, sq)
        proj *= proj
        proj /= denom[:, None]
        return proj


def decompose(states: np.ndarray, *, rank: RankRule = "kubota") -> Decomposition:
    """SVD of the column-centred states (T, L) in float64, truncated by the rank rule (see ``kept_rank``)."""
    X = _checks.array(states, "states", ndim=2)
    T, L = X.shape
    if L == 0:
        raise ValueError("states has no columns (neurons)")
    Xc = X - X.mean(axis=0)
    U, s, _ = scipy.linalg.svd(Xc, full_matrices=False, check_finite=False, lapack_driver="gesdd")
    r = kept_rank(s, L, rank)
    if T <= r + 1:
        raise ValueError(f"states has T = {T} samples for rank r = {r}: too short for the number of neurons; "
                         f"use more time steps (T > r + 1, and T >> r for reliable capacities)")
    return Decomposition(basis=np.ascontiguousarray(U[:, :r]), singular_values=s, rank=r, n_samples=T)


@dataclass(frozen=True, eq=False)
class NestedDecomposition(_Basis):
    """Capacities for a grid of nested readouts (the first L state columns, for every L in ``readouts``).

    With the unpivoted Householder QR X = QR of the centred states, the first L columns of Q span the first L
    neurons, so C_L(z) = Σ_{i≤L} (q_iᵀz)²/‖z‖²: cumulative sums of one projection (spec §7). Where the prefix is
    numerically rank-deficient (|R_ii| < 100·√(L ε)·max|R_ii| for some i ≤ L) that L falls back to the SVD of
    R[:L, :L] (the singular values of the first L columns) with the rank rule, still from the same projection.
    ``rank`` and the results have one entry per readout size.
    """

    readouts: np.ndarray
    rank: np.ndarray
    n_samples: int
    fallback: dict[int, np.ndarray]

    def from_projections(self, G: np.ndarray, sq: np.ndarray) -> np.ndarray:
        """Capacities (m, n_readouts) from G = Zᵀ[Q, 1] (m, N + 1) and sq = ‖z_j‖² (m,)."""
        proj, denom = self._centred(G, sq)
        out = np.cumsum(proj * proj, axis=1)[:, self.readouts - 1]
        for i, directions in self.fallback.items():
            p = proj[:, : directions.shape[0]] @ directions
            out[:, i] = np.einsum("jr,jr->j", p, p)
        out /= denom[:, None]
        return np.clip(out, 0.0, 1.0)


def nested_decompose(states: np.ndarray, readouts, *, rank: RankRule = "kubota") -> NestedDecomposition:
    """QR of the centred states (T, N) for nested readouts of sizes ``readouts`` (ints in 1..N, any order).

    The columns are taken in the order given: reorder them first for a random readout order.
    """
    X = _checks.array(states, "states", ndim=2)
    T, N = X.shape
    Ls = np.asarray(readouts)
    if Ls.ndim != 1 or Ls.size == 0 or not np.issubdtype(Ls.dtype, np.integer):
        raise ValueError(f"readouts must be a non-empty 1-D sequence of ints, got {readouts!r}")
    if Ls.min() < 1 or Ls.max() > N:
        raise ValueError(f"readouts must lie in 1..N = {N} (the number of state columns), got {Ls.min()}..{Ls.max()}")
    Xc = X - X.mean(axis=0)
    Q, R = scipy.linalg.qr(Xc, mode="economic", check_finite=False)
    d = np.abs(np.diag(R))
    ranks = np.empty(Ls.size, dtype=np.int64)
    fallback = {}
    for i, L in enumerate(Ls.tolist()):
        if np.all(d[:L] >= 100.0 * np.sqrt(L * _EPS) * d[:L].max()):
            ranks[i] = L
            continue
        U, s, _ = np.linalg.svd(R[:L, :L])
        ranks[i] = kept_rank(s, L, rank)
        fallback[i] = np.ascontiguousarray(U[:, : ranks[i]])
    if T <= ranks.max() + 1:
        raise ValueError(f"states has T = {T} samples for rank r = {ranks.max()}: too short for the number of "
                         "neurons; use more time steps (T > r + 1, and T >> r for reliable capacities)")
    return NestedDecomposition(basis=np.ascontiguousarray(Q), readouts=Ls.astype(np.int64), rank=ranks,
                               n_samples=T, fallback=fallback)


def _centred(Z: np.ndarray) -> np.ndarray:
    return np.asfortranarray(Z - Z.mean(axis=0))


@dataclass(frozen=True, eq=False)
class Capacities:
    """Capacities of a set of targets: ``values`` (m,), the state rank r and the sample count T."""

    values: np.ndarray
    rank: int
    n_samples: int


def capacities(states: np.ndarray, targets: np.ndarray, *, rank: RankRule = "kubota") -> Capacities:
    """Capacity of each target column against any state matrix (wrec's, another library's, a recording).

    Shapes: states (T, L), targets (T,) or (T, m), aligned row by row. Processed in blocks of columns so that
    memory stays bounded for many targets.
    """
    X = _checks.array(states, "states", ndim=2)
    Z = _checks.array(targets, "targets", ndim=(1, 2))
    Z = Z[:, None] if Z.ndim == 1 else Z
    if Z.shape[0] != X.shape[0]:
        raise ValueError(f"targets has {Z.shape[0]} rows but states has {X.shape[0]}; they must be aligned")
    dec = decompose(X, rank=rank)
    step = max(1, BLOCK_ELEMENTS // X.shape[0])
    values = np.concatenate([dec.capacities(_centred(Z[:, i : i + step]))
                             for i in range(0, Z.shape[1], step)])
    return Capacities(values=values, rank=dec.rank, n_samples=dec.n_samples)
