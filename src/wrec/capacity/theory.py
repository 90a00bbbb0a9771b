"""Analytic and semi-analytic capacity theory: exact results (test oracles) and wrec's subsampling theory.

EXACT results:

* Linear reservoir x_t = W x_{t−1} + w_in u_t with i.i.d. input (Gonon, Grigoryeva & Ortega 2020; Ballarin et
  al. 2023): with the Krylov matrix K = [w_in, W w_in, W² w_in, …] (N × M, M ≥ 5N) the state covariance is
  Γ ∝ KKᵀ and m_k = (W^k w_in)ᵀ Γ⁻¹ (W^k w_in) · var(u) = the leverage score of column k of K = Σ_i V_ki² from
  the SVD K = UΣVᵀ; Σ_k m_k = rank K (``linear_memory_curve``, ``scalar_memory_curve``).
* The per-delay identity m_k = s_k/(1 + s_k) with its correlation lower bound (``per_delay_identity``) and the
  participation ratio PR = L/(1 + (L−1)⟨r_ij²⟩) (``participation_ratio``): exact identities of least squares on
  correlated columns.

APPROXIMATION (``population_spectrum``, ``subsample_prediction``): the capacity of a random L-subset of neurons
from the empirical spectrum of all N, C_L(z) ≈ Σ_j w_j(z) μ_j/(μ_j + κ_L) — the deterministic equivalent of a
randomly sketched pseudoinverse (LeJeune et al., "Asymptotics of the sketched pseudoinverse", SIAM J. Math. Data
Sci. 2024) applied to neuron subsampling. It is wrec's own, derived for this library: it is NOT the closed form
of Takasu & Aoyagi (Phys. Rev. Research 2025), which uses the two-site cavity method of Clark, Abbott &
Litwin-Kumar (PRL 131, 118401, 2023) for L = O(√N) and O(1/√N) correlations; that formula is not available to
us and is not implemented here. ``independent_prediction`` is the correlation-free baseline L · mean MC_i.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.linalg
from scipy.optimize import brentq

from wrec import _checks
from wrec.capacity import targets as _targets
from wrec.capacity.basis import orthonormal
from wrec.capacity.core import RankRule, decompose, kept_rank
from wrec.capacity.ipc import TARGET_BLOCK, aligned


def linear_memory_curve(
    W: np.ndarray, w_in: np.ndarray, max_delay: int, *, n_terms: int | None = None, rank: RankRule = "kubota"
) -> np.ndarray:
    """Exact memory curve m_k, k = 0..max_delay, of the linear reservoir x_t = W x_{t−1} + w_in u_t.

    ``n_terms`` M Krylov columns are used (default: max(6N, max_delay + 1) and enough for ρ^{2M} < 10⁻¹⁸, so the
    truncated tail W^M is negligible); W must have spectral radius ρ < 1. The input scale does not matter.
    Shape: (max_delay + 1,).
    """
    W = _checks.square(W)
    n = W.shape[0]
    w = _checks.array(w_in, "w_in", ndim=1)
    if w.shape[0] != n:
        raise ValueError(f"w_in must have N = {n} entries, got {w.shape[0]}")
    max_delay = _checks.integer(max_delay, "max_delay", low=0)
    rho = float(np.max(np.abs(np.linalg.eigvals(W))))
    if rho >= 1.0:
        raise ValueError(f"W must have spectral radius < 1 (fading memory) for the Krylov memory curve, got {rho:.4g}")
    if n_terms is None:
        tail = int(np.ceil(np.log(1e-18) / (2 * np.log(rho)))) if rho > 0 else 1
        M = max(6 * n, max_delay + 1, tail)
    else:
        M = _checks.integer(n_terms, "n_terms", low=max_delay + 1)
    K = np.empty((n, M))
    K[:, 0] = w
    for k in range(1, M):
        K[:, k] = W @ K[:, k - 1]
    _, s, Vt = np.linalg.svd(K, full_matrices=False)
    r = kept_rank(s, n, rank)
    return np.einsum("ik,ik->k", Vt[:r, : max_delay + 1], Vt[:r, : max_delay + 1])


def scalar_memory_curve(a: float, max_delay: int) -> np.ndarray:
    """m_k = (1 − a²) a^{2k} of the scalar reservoir x_t = a x_{t−1} + u_t, |a| < 1 (total 1)."""
    a = _checks.real(a, "a", low=-1.0, high=1.0, low_open=True, high_open=True)
    k = np.arange(_checks.integer(max_delay, "max_delay", low=0) + 1)
    return (1.0 - a * a) * a ** (2 * k)


# ---------------------------------------------------------------------------------------------------------------
# Correlations: exact identities of least squares
# ---------------------------------------------------------------------------------------------------------------


def _standardised(states: object) -> np.ndarray:
    """Centred columns of unit Euclidean norm (so XᵀX is the correlation matrix R); errors name ``states``."""
    X = _checks.array(states, "states", ndim=2)
    if X.shape[0] < 2 or X.shape[1] == 0:
        raise ValueError(f"states must have at least 2 rows and 1 column, got shape {X.shape}")
    Xc = X - X.mean(axis=0)
    norms = np.linalg.norm(Xc, axis=0)
    if np.any(norms == 0.0):
        raise ValueError(f"states has {int(np.count_nonzero(norms == 0.0))} constant column(s); a correlation "
                         "with a neuron that never varies is undefined: drop those columns")
    return Xc / norms


def correlation_matrix(states: np.ndarray) -> np.ndarray:
    """R_ij = corr(x_i, x_j) over the rows of ``states`` (EXACT sample correlation). Shape (T, L) -> (L, L)."""
    Xs = _standardised(states)
    R = Xs.T @ Xs
    np.fill_diagonal(R, 1.0)
    return R


def mean_squared_correlation(states: np.ndarray) -> float:
    """⟨r_ij²⟩ = (1/(L(L−1))) Σ_{i≠j} corr(x_i, x_j)² of the L columns of ``states`` (EXACT; needs L ≥ 2)."""
    R = correlation_matrix(states)
    L = R.shape[0]
    if L < 2:
        raise ValueError("states must have at least 2 columns for a pairwise correlation")
    return float((np.einsum("ij,ij->", R, R) - L) / (L * (L - 1)))


def participation_ratio(states: np.ndarray) -> float:
    """PR = (tr R)² / tr R² of the L×L correlation matrix R of the columns of ``states`` (EXACT).

    Identity: PR = L / (1 + (L − 1)⟨r_ij²⟩) (tr R = L, tr R² = L + Σ_{i≠j} r_ij²), so 1 ≤ PR ≤ L. A
    diagnostic of how many directions carry the variance, **not** an MC predictor.
    Shape: states (T, L).
    """
    R = correlation_matrix(states)
    return float(np.trace(R) ** 2 / np.einsum("ij,ij->", R, R))


@dataclass(frozen=True, eq=False)
class PerDelay:
    """The per-delay identity m_k = s_k/(1 + s_k) and its correlation lower bound, for each requested delay.

    Fields are floats for one delay and arrays (K,) for a sequence of K delays.

    Attributes:
        capacity: m_k = s_k/(1 + s_k), the in-sample R² of u_{t−k} from the states (EXACT).
        s: s_k = b_kᵀ Ẽ_k⁺ b_k (∞ when u_{t−k} lies exactly in the span of the states).
        bound: ‖b_k‖⁴/(b_kᵀẼ_kb_k) = Lβ_k/(1 + (L−1)ρ̄_k) ≤ s_k (Cauchy–Schwarz).
        capacity_bound: bound/(1 + bound) ≤ capacity.
        beta: β_k = ‖b_k‖²/L, the mean squared signal-to-residual ratio.
        rho_bar: ρ̄_k = Σ_{i≠j} b_ik b_jk Ẽ_k,ij / ((L−1)‖b_k‖²), the signal-weighted mean residual correlation
            (0 for L = 1).
    """

    capacity: float | np.ndarray
    s: float | np.ndarray
    bound: float | np.ndarray
    capacity_bound: float | np.ndarray
    beta: float | np.ndarray
    rho_bar: float | np.ndarray


def _one_delay(Xc: np.ndarray, z: np.ndarray, rank: RankRule) -> tuple[float, float, float, float]:
    """(s, bound, beta, rho_bar) for centred states Xc (T, L) and a centred target z (T,)."""
    L = Xc.shape[1]
    n = float(z @ z)
    a = (Xc.T @ z) / n  # regression of each neuron on the target
    E = Xc - np.outer(z, a)  # residuals e_i, orthogonal to z
    e_norm = np.linalg.norm(E, axis=0)
    x_norm = np.linalg.norm(Xc, axis=0)
    if np.any(e_norm <= 1e-13 * x_norm):  # a neuron is an exact copy of the target
        return np.inf, np.inf, np.inf, 0.0
    b = (Xc.T @ z) / (np.sqrt(n) * e_norm)  # b_i = Cov(x_i, z)/(sd z · sd e_i); sample moments, 1/T cancels
    En = E / e_norm  # unit columns: Ẽ = EnᵀEn is the residual correlation matrix
    # Ẽ⁺ through the SVD of En (conditioning κ(En), not κ(En)² as a solve with the Gram Ẽ would have)
    _, sv, Qt = scipy.linalg.svd(En, full_matrices=False, check_finite=False, lapack_driver="gesdd")
    r = kept_rank(sv, L, rank)
    c = Qt[:r] @ b
    bb = float(b @ b)
    if bb - float(c @ c) > 1e-10 * bb:  # b outside the residuals' span: z is a linear function of the states
        s = np.inf
    else:
        s = float(np.sum((c / sv[:r]) ** 2))
    bEb = float(np.sum((sv * (Qt @ b)) ** 2))  # bᵀẼb = ‖En b‖²
    bound = bb * bb / bEb
    rho_bar = (bEb / bb - 1.0) / (L - 1) if L > 1 else 0.0
    return s, bound, bb / L, rho_bar


def per_delay_identity(
    states: np.ndarray,
    u: np.ndarray,
    delay: int | Sequence[int],
    *,
    max_delay: int | None = None,
    rank: RankRule = "kubota",
) -> PerDelay:
    """Memory m_k of u_{t−k} from the states through the per-delay identity (EXACT).

    Regress each neuron on the target z = u_{t−k}: x_i = a_i z + e_i. With b_ik = Cov(x_i, z)/(sd(z)·sd(e_ik))
    and Ẽ_k the correlation matrix of the residuals e_ik, Sherman–Morrison on XᵀX = n a aᵀ + EᵀE gives

        m_k = s_k/(1 + s_k),   s_k = b_kᵀ Ẽ_k⁻¹ b_k  ≥  ‖b_k‖⁴/(b_kᵀẼ_kb_k) = Lβ_k/(1 + (L−1)ρ̄_k)

    (the bound by Cauchy–Schwarz; it is the classic saturation-by-correlation form, here only a LOWER BOUND).
    Ẽ_k⁻¹ is applied through the SVD of the normalised residuals (a pseudoinverse with the rank rule), never
    inverted. Sample moments on the rows t ≥ ``max_delay`` (default: the largest requested delay), so that
    ``per_delay_identity(X, u, range(K + 1)).capacity`` equals ``memory_capacity(X, u, K, threshold=None).raw``.
    Cost: one SVD of a (T, L) matrix per delay.

    Shapes: states (T, L), u (T,) aligned (``X[t]`` has seen ``u[t]``); delay an int or a sequence of K ints.
    """
    scalar = not isinstance(delay, (Sequence, np.ndarray))
    delays = [_checks.integer(k, "delay", low=0) for k in ([delay] if scalar else list(delay))]  # type: ignore[arg-type]
    if not delays:
        raise ValueError("delay must be an int or a non-empty sequence of ints")
    top = max(delays)
    offset = top if max_delay is None else _checks.integer(max_delay, "max_delay", low=top)
    X, u = aligned(states, u, offset)
    T = X.shape[0]
    Xr = X[offset:]
    x_std = Xr.std(axis=0)
    if np.any(x_std == 0.0):
        raise ValueError(f"states has {int(np.count_nonzero(x_std == 0.0))} constant column(s) on the rows "
                         f"t >= {offset}; a constant neuron carries no memory: drop it")
    Xc = Xr - Xr.mean(axis=0)
    out = []
    for k in delays:
        z = u[offset - k : T - k]
        z = z - z.mean()
        if not np.any(z):
            raise ValueError(f"u is constant on the rows used for delay {k}; memory of it is undefined")
        out.append(_one_delay(Xc, z, rank))
    s, bound, beta, rho_bar = (np.array(v) for v in zip(*out, strict=True))
    with np.errstate(invalid="ignore"):
        capacity = np.where(np.isinf(s), 1.0, s / (1.0 + s))
        capacity_bound = np.where(np.isinf(bound), 1.0, bound / (1.0 + bound))
    fields: tuple[np.ndarray | float, ...] = (capacity, s, bound, capacity_bound, beta, rho_bar)
    if scalar:
        fields = tuple(float(f[0]) for f in fields)  # type: ignore[index]
    return PerDelay(*fields)


# ---------------------------------------------------------------------------------------------------------------
# Predictive theory: capacity of a random L-subset from the population spectrum (APPROXIMATION)
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Spectrum:
    """Population spectrum of all N neurons and each target's loadings on it (see ``population_spectrum``).

    Attributes:
        mu: μ_j, the eigenvalues of the centred covariance XᵀX/T kept by the rank rule, descending. Shape (r,).
        loadings: w_j(z) = (ψ_jᵀz)²/‖z‖² (z centred), ψ_j the principal time courses. Shape (m, r).
        table: one row per target: degree, parts, degrees, delays, capacity (C_N(z) = Σ_j w_j(z), raw).
        n_neurons: N, the number of state columns. n_samples: T, the rows used (t ≥ the largest delay).
    """

    mu: np.ndarray
    loadings: np.ndarray
    table: pd.DataFrame
    n_neurons: int
    n_samples: int

    @property
    def rank(self) -> int:
        """r, the number of principal directions kept."""
        return int(self.mu.size)

    @property
    def degree(self) -> np.ndarray:
        """Degree of each target. Shape (m,)."""
        return self.table["degree"].to_numpy()



def population_spectrum(
    states: np.ndarray,
    u: np.ndarray,
    max_delay: int | Mapping[int, int],
    *,
    max_degree: int | None = None,
    basis: str = "legendre",
    rank: RankRule = "kubota",
) -> Spectrum:
    """Spectrum μ_j of the full population and the loadings w_j(z) of every target on it (EXACT bookkeeping).

    C = XᵀX/T = Σ_j μ_j v_jv_jᵀ (X centred; μ_j kept by the rank rule), ψ_j = Xv_j/√(Tμ_j) (the left singular
    vectors U_r of ``decompose``), w_j(z) = (ψ_jᵀz)²/‖z‖² for each centred target z, so that C_N(z) = Σ_j w_j(z)
    is the raw (unthresholded) capacity of z from all N neurons. Targets as in ``ipc``: degrees 1..max_degree
    with delays 0..max_delay (an int, or ``{degree: max_delay}``); default degree 1 only (memory) for an int.
    They are generated and projected in blocks (``targets.project``), never held whole; memory m·r·8 bytes.

    Shapes: states (T, N), u (T,) aligned; rows t ≥ the largest delay are used.
    """
    if max_degree is None and not isinstance(max_delay, Mapping):
        max_degree = 1
    delays = _targets.max_delays(max_degree, max_delay)
    offset = max(delays.values())
    X, u = aligned(states, u, offset)
    top = max(delays)
    if top == 1:  # degree 1 is basis-free (P_1 is affine in u): standardise, as memory_capacity does, any input
        sd = u.std()
        if sd == 0.0:
            raise ValueError("u is constant; capacities of an input with no variance are undefined")
        values = np.vstack([np.ones_like(u), (u - u.mean()) / sd])
    else:
        values = orthonormal(u, top, basis)
    dec = decompose(X[offset:], rank=rank, standardize=False)  # the covariance spectrum of the neurons as they are
    sets = [ts for d, k in delays.items() for ts in _targets.delay_sets(d, k)]
    blocks, frames = [], []
    for ts in sets:
        for start in range(0, len(ts), TARGET_BLOCK):
            stop = min(start + TARGET_BLOCK, len(ts))
            G, S = _targets.project(values, ts.degrees[start:stop], ts.delays[start:stop], offset, dec.augmented,
                                    dec.squared)
            blocks.append(dec.loadings(G, S[:, -1]))
        frames.append(pd.DataFrame({"degree": ts.degree, "parts": ",".join(map(str, ts.parts)),
                                    "degrees": _targets.labels(ts.degrees), "delays": _targets.labels(ts.delays)}))
    loadings = np.vstack(blocks) if blocks else np.zeros((0, dec.rank))
    table = pd.concat(frames, ignore_index=True)
    table["capacity"] = np.clip(loadings.sum(axis=1), 0.0, 1.0)
    mu = dec.singular_values[: dec.rank] ** 2 / dec.n_samples
    return Spectrum(mu=mu, loadings=loadings, table=table, n_neurons=X.shape[1], n_samples=dec.n_samples)


def covariance_spectrum(covariance: np.ndarray, cross_covariance: np.ndarray, target_variance=1.0, *,
                        rank: RankRule = "kubota") -> Spectrum:
    """The population spectrum from second moments alone (EXACT: the T → ∞ limit of ``population_spectrum``).

    C = Cov(x) = Σ_j μ_j v_jv_jᵀ (``eigh``; μ_j kept by the rank rule), b_z = Cov(x, z):
    w_j(z) = (v_jᵀ b_z)² / (μ_j var z), so that Σ_j w_j(z) = b_zᵀC⁺b_z / var z, the population capacity.
    Shapes: covariance (N, N), cross_covariance (N, m), target_variance scalar or (m,). The table has one row
    per target (``degree`` 1, ``delays`` its column index); ``n_samples`` is 0 (a population, not a sample).
    """
    C = _checks.square(covariance, "covariance")
    if not np.allclose(C, C.T, rtol=1e-10, atol=1e-12 * np.abs(C).max()):
        raise ValueError("covariance must be symmetric")
    B = _checks.array(cross_covariance, "cross_covariance", ndim=(1, 2))
    B = B[:, None] if B.ndim == 1 else B
    if B.shape[0] != C.shape[0]:
        raise ValueError(f"cross_covariance must have N = {C.shape[0]} rows, got {B.shape[0]}")
    var = np.broadcast_to(_checks.array(target_variance, "target_variance", ndim=(0, 1)), (B.shape[1],))
    if np.any(var <= 0):
        raise ValueError("target_variance must be > 0")
    mu, V = np.linalg.eigh(C)
    mu, V = mu[::-1], V[:, ::-1]
    r = kept_rank(np.sqrt(np.clip(mu, 0.0, None)), C.shape[0], rank)
    mu, V = mu[:r], V[:, :r]
    loadings = (B.T @ V) ** 2 / (mu[None, :] * var[:, None])
    table = pd.DataFrame({"degree": 1, "delays": np.arange(B.shape[1]).astype(str),
                          "capacity": np.clip(loadings.sum(axis=1), 0.0, 1.0)})
    return Spectrum(mu=mu, loadings=loadings, table=table, n_neurons=C.shape[0], n_samples=0)


def linear_spectrum(W: np.ndarray, w_in: np.ndarray, max_delay: int, *, n_terms: int | None = None) -> Spectrum:
    """The population spectrum of the linear reservoir x_t = W x_{t−1} + w_in u_t for the targets u_{t−k},
    k = 0..max_delay, from the model alone (EXACT): C = Σ_{k<M} W^k w_in w_inᵀ W^kᵀ, b_k = W^k w_in (unit input
    variance; the input scale cancels). Feed it to ``subsample_prediction`` for MC(L) of random L-subsets.
    """
    W = _checks.square(W)
    w = _checks.array(w_in, "w_in", ndim=1)
    if w.shape[0] != W.shape[0]:
        raise ValueError(f"w_in must have N = {W.shape[0]} entries, got {w.shape[0]}")
    max_delay = _checks.integer(max_delay, "max_delay", low=0)
    rho = float(np.max(np.abs(np.linalg.eigvals(W))))
    if rho >= 1.0:
        raise ValueError(f"W must have spectral radius < 1 (fading memory), got {rho:.4g}")
    tail = int(np.ceil(np.log(1e-18) / (2 * np.log(rho)))) if rho > 0 else 1
    M = max(6 * W.shape[0], max_delay + 1, tail) if n_terms is None else _checks.integer(
        n_terms, "n_terms", low=max_delay + 1)
    K = np.empty((W.shape[0], M))
    K[:, 0] = w
    for k in range(1, M):
        K[:, k] = W @ K[:, k - 1]
    return covariance_spectrum(K @ K.T, K[:, : max_delay + 1])


def _readout_sizes(L: int | Sequence[int], n: int) -> np.ndarray:
    Ls = [L] if not isinstance(L, (Sequence, np.ndarray)) else list(np.asarray(L).ravel())
    if not Ls:
        raise ValueError("L must be an int or a non-empty sequence of ints")
    return np.array([_checks.integer(v, "L", low=1, high=n) for v in Ls], dtype=np.int64)


def subsample_kappa(mu: np.ndarray, L: int) -> float:
    """κ_L > 0 solving Σ_j μ_j/(μ_j + κ_L) = L, or 0 when L ≥ r = len(μ) (EXACT root; ``brentq`` in log κ).

    The root is bracketed by μ_min(r−L)/L ≤ κ_L ≤ μ_max(r−L)/L (flat μ: κ_L = μ(r−L)/L exactly).
    """
    mu = _checks.array(mu, "mu", ndim=1)
    if mu.size == 0 or np.any(mu <= 0.0):
        raise ValueError("mu must be a non-empty vector of positive eigenvalues")
    r = mu.size
    L = _checks.integer(L, "L", low=1)
    if L >= r:
        return 0.0
    lo, hi = np.log(mu.min() * (r - L) / L), np.log(mu.max() * (r - L) / L)

    def excess(x: float) -> float:
        return float(np.sum(mu / (mu + np.exp(x)))) - L

    if hi <= lo or excess(lo) <= 0.0:
        return float(np.exp(lo))
    if excess(hi) >= 0.0:
        return float(np.exp(hi))
    return float(np.exp(brentq(excess, lo, hi, xtol=1e-14, rtol=4 * np.finfo(float).eps)))


@dataclass(frozen=True, eq=False)
class Prediction:
    """Predicted raw capacities of random L-subsets of neurons (``subsample_prediction``).

    Attributes:
        L: readout sizes, shape (n_L,). kappa: κ_L, shape (n_L,).
        values: predicted C_L(z) per readout size and target, shape (n_L, m), targets as in the spectrum's table.
        degree: degree of each target, shape (m,).
    """

    L: np.ndarray
    kappa: np.ndarray
    values: np.ndarray
    degree: np.ndarray

    @property
    def by_degree(self) -> pd.DataFrame:
        """Σ of predicted capacities per degree: rows indexed by L, one column per degree."""
        degrees = np.unique(self.degree)
        sums = np.stack([self.values[:, self.degree == d].sum(axis=1) for d in degrees], axis=1)
        return pd.DataFrame(sums, index=pd.Index(self.L, name="L"), columns=pd.Index(degrees, name="degree"))

    @property
    def mc(self) -> np.ndarray:
        """Predicted MC(L) = Σ of the degree-1 targets, shape (n_L,)."""
        if not np.any(self.degree == 1):
            raise ValueError("the spectrum has no degree-1 targets; build it with degree 1 for MC")
        return self.values[:, self.degree == 1].sum(axis=1)


def subsample_prediction(spectrum: Spectrum, L: int | Sequence[int]) -> Prediction:
    """Predicted capacity of a random L-subset of the N neurons, for each target (APPROXIMATION):

        C_L(z) ≈ Σ_j w_j(z) · μ_j/(μ_j + κ_L),   Σ_j μ_j/(μ_j + κ_L) = L   (κ_L = 0 if L ≥ r).

    The first-order deterministic equivalent of a randomly sketched pseudoinverse (LeJeune, Patil, Javanmard,
    Baraniuk & Tibshirani, SIAM J. Math. Data Sci. 2024) applied to neuron subsampling; it assumes delocalised
    principal directions (random W) and predicts the mean over random subsets. EXACT at L ≥ r (C_N) and for a
    flat spectrum (C_L = (L/r)·C_N). It predicts **raw** capacities (``threshold=None``), not thresholded ones:
    a target that the states do not carry still has loadings ≈ 1/T on every direction, which the formula maps to
    Σ_j μ_j/(μ_j+κ_L)/T = L/T, the finite-sample floor of a raw L-neuron capacity; a threshold is a nonlinear
    cut the loadings know nothing about. Compare with ``memory_capacity(..., threshold=None).raw_total`` or the
    ``raw`` column of ``ipc(..., threshold=None).summary`` on the same rows (same largest delay).

    ``L``: an int or a sequence of ints in [1, N]; results always carry a leading L axis.
    """
    if not isinstance(spectrum, Spectrum):
        raise TypeError(f"spectrum must be a Spectrum (from population_spectrum), got {type(spectrum).__name__}")
    Ls = _readout_sizes(L, spectrum.n_neurons)
    mu = spectrum.mu
    kappa = np.array([subsample_kappa(mu, int(v)) for v in Ls])
    shares = mu[None, :] / (mu[None, :] + kappa[:, None])  # (n_L, r)
    values = shares @ spectrum.loadings.T
    return Prediction(L=Ls, kappa=kappa, values=values, degree=spectrum.degree)


def single_neuron_memory(states: np.ndarray, u: np.ndarray, max_delay: int) -> np.ndarray:
    """Raw MC of each neuron alone, MC_i = Σ_{k=0}^{K} corr(x_i,t, u_{t−k})² on the rows t ≥ K (EXACT).

    One projection of all K + 1 delayed inputs on all centred neurons (``targets.project``). Shape (N,).
    """
    max_delay = _checks.integer(max_delay, "max_delay", low=0)
    X, u = aligned(states, u, max_delay)
    Xr = X[max_delay:]
    Xc = Xr - Xr.mean(axis=0)
    x_sq = np.einsum("tn,tn->n", Xc, Xc)
    if np.any(x_sq == 0.0):
        raise ValueError(f"states has {int(np.count_nonzero(x_sq == 0.0))} constant column(s) on the rows "
                         f"t >= {max_delay}; a constant neuron carries no memory: drop it")
    sd = u.std()
    if sd == 0.0:
        raise ValueError("u is constant; memory of an input with no variance is undefined")
    values = np.vstack([np.ones_like(u), (u - u.mean()) / sd])
    ks = np.arange(max_delay + 1)[:, None]
    A = np.hstack([Xc, np.ones((Xc.shape[0], 1))])
    G, S = _targets.project(values, np.ones_like(ks), ks, max_delay, A, np.ones((Xc.shape[0], 1)))
    sq = S[:, 0]
    T = Xc.shape[0]
    zbar = G[:, -1] / T
    z_sq = sq - T * zbar * zbar  # ‖z − z̄‖²; Xc is centred so Xcᵀz = Xcᵀ(z − z̄)
    return np.sum(G[:, :-1] ** 2 / (z_sq[:, None] * x_sq[None, :]), axis=0)


def independent_prediction(
    states: np.ndarray, u: np.ndarray, max_delay: int, L: int | Sequence[int]
) -> float | np.ndarray:
    """Correlation-free baseline MC_ind(L) = L · mean_i MC_i (APPROXIMATION: exact only for uncorrelated neurons
    with independent memory), MC_i the raw single-neuron memory (``single_neuron_memory``).

    Linear in L and unbounded by the rank: the line the measured MC(L) bends away from. Returns a float for an
    int L, an array (n_L,) for a sequence.
    """
    per_neuron = single_neuron_memory(states, u, max_delay)
    Ls = _readout_sizes(L, per_neuron.size)
    out = Ls * float(per_neuron.mean())
    return float(out[0]) if not isinstance(L, (Sequence, np.ndarray)) else out
