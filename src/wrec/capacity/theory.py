"""Analytic memory curves (exact results; each is also a test oracle).

Linear reservoir x_t = W x_{t−1} + w_in u_t with i.i.d. input (Gonon, Grigoryeva & Ortega 2020; Ballarin et
al. 2023): with the Krylov matrix K = [w_in, W w_in, W² w_in, …] (N × M, M ≥ 5N) the state covariance is
Γ ∝ KKᵀ and m_k = (W^k w_in)ᵀ Γ⁻¹ (W^k w_in) · var(u) = the leverage score of column k of K = Σ_i V_ki² from
the SVD K = UΣVᵀ; Σ_k m_k = rank K.
"""

from __future__ import annotations

import numpy as np

from wrec import _checks
from wrec.capacity.core import RankRule, kept_rank


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
