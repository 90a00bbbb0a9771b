"""Capacities of many targets from one decomposition of the centred states.

C(z) = zᵀX(XᵀX)⁺Xᵀz / zᵀz = ‖U_rᵀ z‖² / ‖z‖²  (X, z centred; U_r the left singular vectors kept by the rank
rule): the in-sample R² of the least-squares readout with intercept (Dambre et al., Sci. Rep. 2012).
One SVD of X, then one GEMM U_rᵀZ per block of targets; never (XᵀX)⁻¹, whose rounding errors (the square of
the condition number) reach 10⁻³ per target on rank-deficient states. XᵀX serves only CholeskyQR2 (``decompose``),
which is taken where κ(X) ≤ 10⁷ and gives the SVD's numbers to rounding; the rest go to LAPACK's SVD.

The state columns are standardised first (``standardize=True``): R² does not depend on a column's scale, so
neither may the rank rule, and a neuron of amplitude 10⁻⁸ counts as much as one of amplitude 10⁸.

A target unrelated to the states still gets Ĉ > 0: with h_t = ‖U_r[t]‖² the leverage of row t (Σ_t h_t = r),
E[Ĉ] = Σ_t h_t σ_t² / Σ_t σ_t² · (1 + O(1/T)) for a target with E[z_t | X] = 0 and variance σ_t², which is
r/(T − 1) for homoscedastic targets (the mean of the Beta(r/2, (T−1−r)/2) null) and more when the target's
variance rises where the states are extreme (products of inputs the states remember: ≈ 10 % more for the
degree-3 targets of an ESN). ``null`` estimates it per target from the target itself,
e(z) = T/(T−1) · Σ_t h_t z̃_t² / ‖z̃‖² (z̃ centred), and the bias-corrected capacity is (Ĉ − e)/(1 − e).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import scipy.linalg

from wrec import _checks
from wrec._threads import one_blas_thread, spare_threads

RankRule = str | float
_EPS = np.finfo(np.float64).eps
BLOCK_ELEMENTS = 1 << 24  # target-block size in float64 elements (128 MiB): memory stays bounded
GROWTH_LIMIT = 1e3  # states whose RMS rises block after block by more than this have no echo-state property
GROWTH_BLOCKS = 10
# CholeskyQR2 route of ``decompose``/``nested_decompose`` (``cholesky_route``; measured in benchmarks/decompose.py)
CHOLESKY_MIN_RATIO = 10  # rows per column: below it the SVD is as fast (crossover T/L ≈ 4–12, 1 thread)
CHOLESKY_MAX_CONDITION = 1e7  # κ(X) above which the LAPACK route runs (capacities agree to 3e-13 up to 1e8)
PART_MIN_ROWS = 8192  # rows per thread of the CholeskyQR2 passes (``row_parts``)


def kept_rank(singular_values: np.ndarray, n_columns: int, rank: RankRule = "kubota") -> int:
    """Number of singular values kept.

    ``"kubota"`` (default): σ_i² > σ_1² · L · ε₆₄ (on unstandardised states it reproduces the published ranks of
    Kubota et al. 2021); ``"numpy"``: σ_i > σ_1 · max(T, L) · ε (``numpy.linalg.matrix_rank``); a float:
    σ_i > rtol · σ_1.
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


def check_bounded(states: np.ndarray) -> None:
    """Raise if the states grow without bound: their RMS rises from each tenth of the rows to the next, by more
    than ``GROWTH_LIMIT`` in all. Such a network has lost the echo-state property and has no capacity."""
    T = states.shape[0]
    if T < 2 * GROWTH_BLOCKS:
        return
    rows = np.einsum("tn,tn->t", states, states)  # overflows to inf only beyond 1e154: growth is caught long before
    edges = np.linspace(0, T, GROWTH_BLOCKS + 1).astype(int)
    rms = np.sqrt(np.add.reduceat(rows, edges[:-1]) / np.diff(edges))
    check_growth(rms)


def check_growth(rms: np.ndarray) -> None:
    """Raise if the RMS of successive tenths of the rows rises every time, by more than ``GROWTH_LIMIT`` in all."""
    if rms[0] > 0.0 and np.all(np.diff(rms) > 0.0) and rms[-1] > GROWTH_LIMIT * rms[0]:
        raise ValueError(
            f"states grow without bound: their RMS rises from every tenth of the rows to the next, "
            f"×{rms[-1] / rms[0]:.3g} in all. The network has lost the echo-state property (its state does not "
            "forget its start), so capacities are not defined: lower the spectral radius (gain) or the input "
            "scale, or check the simulation")


def centred_states(states: object, *, standardize: bool = True) -> np.ndarray:
    """The states (T, L) as a float64 copy with each column centred (and scaled to unit norm if ``standardize``).

    A column constant up to rounding (max x − min x ≤ 8·ε·max|x|) is set to exactly 0: it carries nothing, and
    scaling the rounding errors of its centring up would invent a direction.
    """
    X = _checks.array(states, "states", ndim=2)
    if X.shape[1] == 0:
        raise ValueError("states has no columns (neurons)")
    check_bounded(X)
    high, low = X.max(axis=0), X.min(axis=0)
    constant = high - low <= 8.0 * _EPS * np.maximum(np.abs(high), np.abs(low))
    Xc = np.subtract(X, X.mean(axis=0), order="C")
    Xc[:, constant] = 0.0
    if standardize:
        norms = np.sqrt(np.einsum("tn,tn->n", Xc, Xc))
        Xc /= np.where(constant, 1.0, norms)
    return Xc


class _Basis:
    """An orthonormal basis (T, k) of the centred state columns (abstract: the projection bookkeeping).

    Subclasses (frozen dataclasses) define ``basis``, ``rank`` (r, or one r(L) per readout size), ``n_samples``
    (T) and ``leverage`` (T, w): the row leverages h_t of each basis whose capacities they report (w = 1, or one
    column per readout size).
    """

    basis: np.ndarray
    rank: Any
    n_samples: int

    @property
    def leverage(self) -> np.ndarray:
        raise NotImplementedError

    def from_projections(self, G: np.ndarray, sq: np.ndarray) -> np.ndarray:
        """Capacities from G = ZᵀA and sq = ‖z_j‖² (each subclass: one value per target, or per readout size)."""
        raise NotImplementedError

    @cached_property
    def augmented(self) -> np.ndarray:
        """A = [basis, 1, leverage] (T, k + 1 + w), C-ordered: ZᵀA gives every projection in one GEMM."""
        T = self.basis.shape[0]
        return np.hstack([self.basis, np.ones((T, 1)), self.leverage])

    @cached_property
    def squared(self) -> np.ndarray:
        """B = [leverage, 1] (T, w + 1): (Z∘Z)ᵀB gives Σ_t h_t z_t² and ‖z‖² in one GEMM."""
        return np.hstack([self.leverage, np.ones((self.basis.shape[0], 1))])

    @cached_property
    def _column_sums(self) -> np.ndarray:
        """1ᵀ basis (≈ 0: the centred states are orthogonal to 1; kept for exactness)."""
        return self.basis.sum(axis=0)

    def _centred(self, G: np.ndarray, sq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(basisᵀ(z − z̄) (m, k), ‖z − z̄‖² (m,)) from G = ZᵀA and sq = ‖z‖²: the mean removed exactly."""
        T, k = self.n_samples, self._column_sums.size
        zbar = G[:, k] / T
        proj = G[:, :k] - zbar[:, None] * self._column_sums[None, :]
        denom = sq - T * zbar * zbar
        if np.any(denom <= 0.0):
            raise ValueError("a target has zero variance on the evaluated rows; a constant has no capacity")
        return proj, denom

    def null(self, G: np.ndarray, S: np.ndarray) -> np.ndarray:
        """e(z) = T/(T−1) · Σ_t h_t (z_t − z̄)² / ‖z − z̄‖² for G = ZᵀA, S = (Z∘Z)ᵀB: the expected capacity of
        each target were it unrelated to the states (module docstring). Shape (m,) or (m, n_readouts)."""
        T, k = self.n_samples, self._column_sums.size
        w = np.size(self.rank)  # one leverage column per readout size
        zbar = G[:, k] / T
        hz2 = S[:, :w] - 2.0 * zbar[:, None] * G[:, k + 1 : k + 1 + w] + (zbar * zbar)[:, None] * self.rank
        out = T / (T - 1) * hz2 / (S[:, w] - T * zbar * zbar)[:, None]
        return np.clip(out[:, 0] if np.ndim(self.rank) == 0 else out, 0.0, 1.0)

    @property
    def floor(self) -> float | np.ndarray:
        """E[C] of one homoscedastic target independent of the states: r/(T − 1) (exact for Gaussian z)."""
        return self.rank / (self.n_samples - 1)

    def adjusted(self, values: np.ndarray, null: np.ndarray | float | None = None) -> np.ndarray:
        """Bias-corrected capacities (Ĉ − e)/(1 − e), unbiased for E[Ĉ] when e is the null mean; e defaults to
        r/(T − 1) (then 1 − (1 − Ĉ)(T − 1)/(T − 1 − r), the adjusted R²). values (m,) or (m, n_readouts)."""
        e = self.floor if null is None else null
        return (values - e) / (1.0 - e)


@dataclass(frozen=True, eq=False)
class Decomposition(_Basis):
    """An orthonormal basis U_r (T, r) of the centred state columns, with the rank r and the sample count T."""

    basis: np.ndarray
    singular_values: np.ndarray
    rank: int
    n_samples: int
    route: str = "svd"  # "cholesky-qr2" or "svd" (``decompose``)

    @cached_property
    def leverage(self) -> np.ndarray:
        """h_t = ‖U_r[t]‖², shape (T, 1); Σ_t h_t = r."""
        return np.einsum("tr,tr->t", self.basis, self.basis)[:, None]

    def capacities(self, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(C(z_j), e(z_j)) for each column of Z (T, m): capacities in [0, 1] and their null means, each (m,).

        Targets whose mean dwarfs their spread lose precision in ‖z‖² − T z̄²: centre such columns first
        (``capacities`` does).
        """
        G, S = Z.T @ self.augmented, (Z * Z).T @ self.squared
        return self.from_projections(G, S[:, -1]), self.null(G, S)

    def from_projections(self, G: np.ndarray, sq: np.ndarray) -> np.ndarray:
        """Capacities from G = ZᵀA (m, ≥ r + 1) and sq = ‖z_j‖² (m,), accumulated in any row order.

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


def row_parts(T: int) -> list[slice]:
    """Contiguous row slices of T rows, one per thread that ``spare_threads`` allows (at least ``PART_MIN_ROWS``
    rows each): CholeskyQR2's passes are row by row, so each thread takes its slice on one BLAS thread and the
    threads meet once per pass (two-thread OpenBLAS meets once per 256-row panel, ``_cholesky_qr2``)."""
    k = max(1, min(spare_threads(), T // PART_MIN_ROWS))
    cuts = np.linspace(0, T, k + 1).astype(int).tolist()
    return [slice(a, b) for a, b in itertools.pairwise(cuts)]


def over_rows(fn: Callable[[slice], Any], parts: list[slice]) -> list[Any]:
    """[fn(part) for part in parts], on one thread per part when there are several (call it under
    ``one_blas_thread``)."""
    if len(parts) == 1:
        return [fn(parts[0])]
    with ThreadPoolExecutor(len(parts)) as pool:
        return list(pool.map(fn, parts))


def cholesky_qr2(Xc: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """CholeskyQR2 of the centred states Xc (T, L) in place (Fukaya, Nakatsukasa, Yanagisawa & Yamamoto,
    ScalA 2014): R₁ from the Cholesky factor of XᵀX, Q₁ = X R₁⁻¹ (overwriting ``Xc``), R₂ from Q₁ᵀQ₁; then
    X = Q₁R₁ = Q R₂R₁ with Q = Q₁R₂⁻¹ orthonormal to rounding. Two Gram matrices and one triangular solve: GEMM-
    bound, where a Householder QR or an SVD of X is LAPACK-bound (``benchmarks/decompose.py``), and row by row,
    so they run on ``row_parts`` threads (the Gram a sum over the parts).

    Returns (R₁, R₂), or None (``Xc`` unchanged) where the route is not taken (``cholesky_route``): fewer than
    ``CHOLESKY_MIN_RATIO``·L rows, a zero column, a failed Cholesky, or κ(R₁) > ``CHOLESKY_MAX_CONDITION``.
    CholeskyQR2 loses orthogonality once κ(X) nears ε^(−1/2) ≈ 10⁸ (Yamamoto et al., ETNA 44, 2015); the
    ill-conditioned states go to the LAPACK route instead (shifted CholeskyQR3, Fukaya et al., SIAM J. Sci.
    Comput. 42, 2020, would keep them GEMM-bound too, at one more pass). As R of a QR of the first L columns is
    the leading L×L block of R (Cholesky is nested too), R₂R₁ serves the nested readouts as well.
    """
    T, L = Xc.shape
    if not cholesky_route(T, L, 1.0) or not Xc.flags.c_contiguous or Xc.dtype != np.float64:
        return None  # the in-place BLAS calls below need a C-ordered float64 array
    parts = row_parts(T)
    with one_blas_thread():
        return _cholesky_qr2(Xc, parts)


def _cholesky_qr2(Xc: np.ndarray, parts: list[slice]) -> tuple[np.ndarray, np.ndarray] | None:
    """``cholesky_qr2`` on one BLAS thread per part. Measured on 2 cores at load 4–5: the Gram of 10⁵ × 100 takes
    0.6–6.4 s on two OpenBLAS threads against 0.01–0.18 s on one (the threads meet once per 256-row panel of the
    long dimension, and each meeting waits for a descheduled thread); on idle cores one thread costs at most
    the Gram's 2× (benchmarks/decompose.py)."""
    T, L = Xc.shape
    R1, info = scipy.linalg.lapack.dpotrf(gram(Xc, parts), lower=0, clean=1, overwrite_a=1)
    if info != 0:
        return None  # a zero column (a constant neuron), or XᵀX singular to rounding
    s = scipy.linalg.svdvals(R1, check_finite=False)  # O(L³): cheap beside the O(T L²) Gram
    if not cholesky_route(T, L, s[0] / s[-1] if s[-1] > 0.0 else np.inf):
        return None
    solve_rows(R1, Xc, parts)  # Xc := Xc R₁⁻¹ in place
    R2, info = scipy.linalg.lapack.dpotrf(gram(Xc, parts), lower=0, clean=1, overwrite_a=1)
    if info != 0:  # not reached below the condition bound; restore Xc for the fallback
        over_rows(lambda rows: scipy.linalg.blas.dtrmm(1.0, R1, Xc[rows].T, side=0, lower=0, trans_a=1,
                                                        overwrite_b=1), parts)
        return None
    return R1, R2


def gram(X: np.ndarray, parts: list[slice]) -> np.ndarray:
    """XᵀX (L, L) as the sum of the parts' X[rows]ᵀX[rows] (one part: exactly ``X.T @ X``)."""
    grams = over_rows(lambda rows: X[rows].T @ X[rows], parts)
    total = grams[0]
    for g in grams[1:]:
        total += g
    return total


def solve_rows(R: np.ndarray, X: np.ndarray, parts: list[slice]) -> None:
    """X := X R⁻¹ in place (R upper triangular; X C-ordered), part by part."""
    over_rows(lambda rows: scipy.linalg.blas.dtrsm(1.0, R, X[rows].T, side=0, lower=0, trans_a=1, overwrite_b=1),
              parts)


def cholesky_route(T: int, L: int, R1_condition: float) -> bool:
    """Whether ``decompose`` and ``nested_decompose`` take CholeskyQR2: T ≥ ``CHOLESKY_MIN_RATIO``·L and
    κ(R₁) = κ(X) (to rounding) ≤ ``CHOLESKY_MAX_CONDITION`` (the rule ``cholesky_qr2`` applies)."""
    return T >= CHOLESKY_MIN_RATIO * L and R1_condition <= CHOLESKY_MAX_CONDITION


def r_factor(A: np.ndarray) -> np.ndarray:
    """R (min(T, L), L) of A (T, L) = QR, A overwritten: by CholeskyQR2 (R₂R₁, ``cholesky_qr2``) where the rule
    allows, else by LAPACK's Householder QR. The blockwise pass 1 (``wrec.capacity.blocks.scan``) takes it per
    row block."""
    factors = cholesky_qr2(A)
    if factors is not None:
        return np.triu(factors[1] @ factors[0])
    R = scipy.linalg.qr(A, mode="r", overwrite_a=True, check_finite=False)[0]
    return R[: min(R.shape)]


def decompose(states: np.ndarray, *, rank: RankRule = "kubota", standardize: bool = True) -> Decomposition:
    """SVD of the centred (by default standardised, see ``centred_states``) states (T, L) in float64, truncated
    by the rank rule (see ``kept_rank``).

    Well-conditioned tall states (``cholesky_route``) take CholeskyQR2 (``cholesky_qr2``): X = Q₁R₂R₁, the
    singular values and U_R from the SVD of the small R = R₂R₁ = U_R S Vᵀ, and U_r = Q₁·R₂⁻¹U_R[:, :r] (one
    GEMM). Otherwise (κ(X) above the bound, e.g. rank-deficient states, or short states) LAPACK's SVD of X.
    Both are backward stable: the singular values agree to rounding (ε·σ₁), hence the rank rule and the
    capacities. ``route`` says which ran.
    """
    Xc = centred_states(states, standardize=standardize)
    T, L = Xc.shape
    factors = cholesky_qr2(Xc)
    if factors is not None:
        R1, R2 = factors
        parts = row_parts(T)
        with one_blas_thread():  # L × L work: threads only wait (``_cholesky_qr2``)
            UR, s, _ = scipy.linalg.svd(R2 @ R1, check_finite=False, lapack_driver="gesdd")
            r = kept_rank(s, L, rank)
            check_samples(T, r)
            W = scipy.linalg.solve_triangular(R2, UR[:, :r], lower=False, check_finite=False)
            basis = np.empty((T, r))
            over_rows(lambda rows: np.matmul(Xc[rows], W, out=basis[rows]), parts)
        return Decomposition(basis=basis, singular_values=s, rank=r, n_samples=T, route="cholesky-qr2")
    U, s, _ = scipy.linalg.svd(Xc, full_matrices=False, check_finite=False, lapack_driver="gesdd")
    r = kept_rank(s, L, rank)
    check_samples(T, r)
    return Decomposition(basis=np.ascontiguousarray(U[:, :r]), singular_values=s, rank=r, n_samples=T)


def check_samples(T: int, r: int) -> None:
    """Raise unless T > r + 1 (a rank-r readout with intercept needs more samples than parameters)."""
    if T <= r + 1:
        raise ValueError(f"states has T = {T} samples for rank r = {r}: too short for the number of neurons; "
                         f"use more time steps (T > r + 1, and T >> r for reliable capacities)")


def readout_sizes(readouts: object, N: int) -> np.ndarray:
    """The readout sizes as an int array, each in 1..N."""
    Ls = np.asarray(readouts)
    if Ls.ndim != 1 or Ls.size == 0 or not np.issubdtype(Ls.dtype, np.integer):
        raise ValueError(f"readouts must be a non-empty 1-D sequence of ints, got {readouts!r}")
    if Ls.min() < 1 or Ls.max() > N:
        raise ValueError(f"readouts must lie in 1..N = {N} (the number of state columns), got {Ls.min()}..{Ls.max()}")
    return Ls.astype(np.int64)


def prefix_ranks(
    R: np.ndarray, readouts: np.ndarray, rank: RankRule, *, side: str
) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """r(L) for each readout size from R of X = QR, and the fallback directions of the prefixes whose R[:L, :L]
    is numerically singular (|R_ii| ≤ 100·√(L ε)·max|R_ii| for some i ≤ L): there the SVD R_LL = U S Vᵀ and
    the rank rule give r(L), and the directions are U_r (``side="left"``, applied to Qᵀz) or V_r S_r⁻¹
    (``"right"``, applied to X̃ᵀz)."""
    d = np.abs(np.diag(R))
    ranks = np.empty(readouts.size, dtype=np.int64)
    fallback = {}
    for i, L in enumerate(readouts.tolist()):
        top = d[:L].max()
        if top > 0.0 and np.all(d[:L] > 100.0 * np.sqrt(L * _EPS) * top):
            ranks[i] = L
            continue
        U, s, Vt = np.linalg.svd(R[:L, :L])
        r = ranks[i] = kept_rank(s, L, rank)
        fallback[i] = np.ascontiguousarray(U[:, :r] if side == "left" else Vt[:r].T / s[:r])
    return ranks, fallback


@dataclass(frozen=True, eq=False)
class NestedDecomposition(_Basis):
    """Capacities for a grid of nested readouts (the first L state columns, for every L in ``readouts``).

    With the unpivoted Householder QR X = QR of the centred states, the first L columns of Q span the first L
    neurons, so C_L(z) = Σ_{i≤L} (q_iᵀz)²/‖z‖²: cumulative sums of one projection. Where the prefix is
    numerically rank-deficient (|R_ii| ≤ 100·√(L ε)·max|R_ii| for some i ≤ L; with standardised columns |R_ii|
    is the distance of column i from the span of the columns before it, in units of its own norm) that L falls
    back to the SVD of R[:L, :L] (the singular values of the first L columns) with the rank rule, still from the
    same projection. ``rank`` and the results have one entry per readout size.
    """

    basis: np.ndarray
    readouts: np.ndarray
    rank: np.ndarray
    n_samples: int
    fallback: dict[int, np.ndarray]
    route: str = "householder"  # "cholesky-qr2" or "householder" (``nested_decompose``)

    @cached_property
    def leverage(self) -> np.ndarray:
        """h_t(L) of the basis each readout size uses, shape (T, n_readouts); column sums r(L)."""
        cumulative = np.cumsum(self.basis * self.basis, axis=1)
        H = cumulative[:, self.readouts - 1]
        for i, directions in self.fallback.items():
            B = self.basis[:, : directions.shape[0]] @ directions
            H[:, i] = np.einsum("tr,tr->t", B, B)
        return np.ascontiguousarray(H)

    def from_projections(self, G: np.ndarray, sq: np.ndarray) -> np.ndarray:
        """Capacities (m, n_readouts) from G = ZᵀA (m, ≥ N + 1) and sq = ‖z_j‖² (m,)."""
        proj, denom = self._centred(G, sq)
        out = np.cumsum(proj * proj, axis=1)[:, self.readouts - 1]
        for i, directions in self.fallback.items():
            p = proj[:, : directions.shape[0]] @ directions
            out[:, i] = np.einsum("jr,jr->j", p, p)
        out /= denom[:, None]
        return np.clip(out, 0.0, 1.0)


def nested_decompose(
    states: np.ndarray, readouts, *, rank: RankRule = "kubota", standardize: bool = True
) -> NestedDecomposition:
    """QR of the centred (by default standardised) states (T, N) for nested readouts of sizes ``readouts``
    (ints in 1..N, any order).

    The columns are taken in the order given: reorder them first for a random readout order. Well-conditioned
    tall states take CholeskyQR2 (``cholesky_qr2``: Q = Q₁R₂⁻¹, R = R₂R₁, the same nested R up to the signs of its
    rows), others the Householder QR; ``route`` says which ran.
    """
    X = _checks.array(states, "states", ndim=2)
    T, N = X.shape
    Ls = readout_sizes(readouts, N)
    Xc = centred_states(X, standardize=standardize)
    factors = cholesky_qr2(Xc)
    if factors is not None:
        R1, R2 = factors
        parts = row_parts(T)
        with one_blas_thread():
            solve_rows(R2, Xc, parts)  # Q = Q₁R₂⁻¹ in place
        Q, R, route = Xc, np.triu(R2 @ R1), "cholesky-qr2"
    else:
        Q, R = scipy.linalg.qr(Xc, mode="economic", check_finite=False)
        route = "householder"
    ranks, fallback = prefix_ranks(R, Ls, rank, side="left")
    check_samples(T, int(ranks.max()))
    return NestedDecomposition(basis=np.ascontiguousarray(Q), readouts=Ls.astype(np.int64), rank=ranks,
                               n_samples=T, fallback=fallback, route=route)


def _centred(Z: np.ndarray) -> np.ndarray:
    return np.asfortranarray(Z - Z.mean(axis=0))


@dataclass(frozen=True, eq=False)
class Capacities:
    """Capacities of a set of targets: raw ``values`` (m,), their null means ``null`` (m,) (the capacity each
    target would show were it unrelated to the states), the state rank r and the sample count T."""

    values: np.ndarray
    null: np.ndarray
    rank: int
    n_samples: int

    @property
    def adjusted(self) -> np.ndarray:
        """Bias-corrected capacities (Ĉ − e)/(1 − e)."""
        return (self.values - self.null) / (1.0 - self.null)


def capacities(
    states: np.ndarray, targets: np.ndarray, *, rank: RankRule = "kubota", standardize: bool = True
) -> Capacities:
    """Capacity of each target column against any state matrix (wrec's, another library's, a recording).

    Shapes: states (T, L), targets (T,) or (T, m), aligned row by row. Processed in blocks of columns so that
    memory stays bounded for many targets. ``states`` may also be states in row blocks (``wrec.capacity.blocks``).

    Examples:
        >>> import numpy as np
        >>> from wrec import capacity
        >>> u = np.random.default_rng(0).uniform(-1, 1, 1_000)
        >>> X = np.stack([u, np.roll(u, 1)], axis=1)  # states: u_t and u_{t-1}
        >>> c = capacity.capacities(X, np.stack([np.roll(u, 1), np.roll(u, 2), u**2], axis=1))
        >>> c.values.round(2).tolist(), c.rank  # u_{t-1} is read out exactly; u_{t-2} and u_t² not at all
        ([1.0, 0.0, 0.0], 2)
    """
    from wrec.capacity.blocks import capacities_of_blocks, is_blocked

    Z = _checks.array(targets, "targets", ndim=(1, 2))
    Z = Z[:, None] if Z.ndim == 1 else Z
    if is_blocked(states):
        return capacities_of_blocks(states, _centred(Z), rank=rank, standardize=standardize)
    X = _checks.array(states, "states", ndim=2)
    if Z.shape[0] != X.shape[0]:
        raise ValueError(f"targets has {Z.shape[0]} rows but states has {X.shape[0]}; they must be aligned")
    dec = decompose(X, rank=rank, standardize=standardize)
    step = max(1, BLOCK_ELEMENTS // X.shape[0])
    blocks = [dec.capacities(_centred(Z[:, i : i + step])) for i in range(0, Z.shape[1], step)]
    return Capacities(values=np.concatenate([b[0] for b in blocks]), null=np.concatenate([b[1] for b in blocks]),
                      rank=dec.rank, n_samples=dec.n_samples)
