"""Univariate polynomials orthonormal under the input's distribution (the IPC basis, Dambre et al. 2012).

E[P_i(u) P_j(u)] = δ_ij:
* ``"legendre"``: √(2n+1)·P_n(u) for u ~ U[−1, 1];
* ``"hermite"``: He_n(u)/√(n!) (probabilists') for u ~ N(0, 1);
* ``"gram_schmidt"``: orthonormal under the *empirical* distribution of the given u (any input): a
  Legendre Vandermonde of u rescaled to [−1, 1], orthonormalised by QR (never raw powers).
"""

from __future__ import annotations

import numpy as np
from numpy.polynomial import hermite_e, legendre
from scipy.special import gammaln

from wrec import _checks

FAMILIES = ("legendre", "hermite", "gram_schmidt")
MISMATCH_Z = 6.0  # standard errors beyond which a moment of the input contradicts the basis


def check_matches(values: np.ndarray, u: np.ndarray, family: str) -> None:
    """Raise ValueError unless u looks i.i.d. from the family's distribution.

    The basis is orthonormal only for that distribution, and targets at different delays are orthogonal only for
    independent inputs; otherwise the same capacity is counted again at other degrees and delays (U[0, 1] input
    with the Legendre basis doubles a reservoir's total). Test: the lag-1 autocorrelation of u = 0, then the
    moments E[P_i(u) P_j(u)] = δ_ij for 0 ≤ i ≤ j ≤ 2, (i, j) ≠ (0, 0) (the input's first four moments: higher
    products of Hermite polynomials are too heavy-tailed to test by their mean), each as a z-score of its
    sample mean; any |z| > ``MISMATCH_Z`` fails. For a matching i.i.d. input a false alarm has a normal-tail
    chance below 10⁻⁸ per moment; a moment off by d of its standard deviation is detected once d·√T > 7.6 with
    probability 0.95 (measured over 200 draws: U[0, 1] input with Legendre from T = 30, U[−0.9, 0.9] from T = 400).
    """
    if u.size < 3:
        return
    v = u - u.mean()
    z = _z_score(v[1:] * v[:-1] / max(float(np.mean(v * v)), np.finfo(float).tiny), 0.0)
    if abs(z) > MISMATCH_Z:
        raise ValueError(
            f"u is not i.i.d.: its lag-1 autocorrelation is {np.mean(v[1:] * v[:-1]) / np.mean(v * v):.3g} "
            f"({abs(z):.1f} standard errors from 0), so targets at different delays are not orthogonal and capacities "
            "would be counted twice. IPC needs an independent input at every step (e.g. wrec.tasks.uniform_input)")
    n = min(values.shape[0], 3)
    for i in range(n):
        for j in range(max(i, 1), n):
            z = _z_score(values[i] * values[j], float(i == j))
            if abs(z) > MISMATCH_Z:
                want = {"legendre": "i.i.d. U[-1, 1]", "hermite": "i.i.d. N(0, 1)"}.get(family, "the input")
                raise ValueError(
                    f"u does not match the {family} basis, which assumes {want}: E[P_{i}(u) P_{j}(u)] is "
                    f"{np.mean(values[i] * values[j]):.4g} where it should be {float(i == j):g} ({abs(z):.1f} standard "
                    f"errors off). Rescale u to that distribution, or use basis='gram_schmidt' (orthonormal "
                    f"under u's own distribution)")


def _z_score(x: np.ndarray, expected: float) -> float:
    sd = float(np.std(x))
    diff = float(np.mean(x)) - expected
    if sd == 0.0:
        return 0.0 if abs(diff) <= 1e-12 else np.inf
    return diff / (sd / np.sqrt(x.size))


def orthonormal(u: np.ndarray, max_degree: int, family: str = "legendre", *, check: bool = True) -> np.ndarray:
    """Values P_n(u_t) for n = 0..max_degree.  Shape: u (T,) -> (max_degree + 1, T).

    Raises ValueError when u lies outside the family's support (Legendre needs u in [−1, 1]) or does not look
    i.i.d. from the family's distribution (``check_matches``; ``check=False`` skips that test, e.g. to evaluate
    the polynomials at quadrature nodes).
    """
    u = _checks.array(u, "u", ndim=1)
    max_degree = _checks.integer(max_degree, "max_degree", low=1)
    if family == "legendre":
        lo, hi = float(u.min()), float(u.max())
        if lo < -1.0 or hi > 1.0:
            raise ValueError(
                f"u must lie in [-1, 1] for the Legendre basis, got values in [{lo:.4g}, {hi:.4g}]; rescale "
                "U[a, b] input to [-1, 1], or use basis='hermite' (Gaussian input) or 'gram_schmidt' (any input)")
        V = legendre.legvander(u, max_degree)
        V *= np.sqrt(2 * np.arange(max_degree + 1) + 1)
        values = np.ascontiguousarray(V.T)
        if check:
            check_matches(values, u, family)
        return values
    if family == "hermite":
        V = hermite_e.hermevander(u, max_degree)
        n = np.arange(max_degree + 1)
        V *= np.exp(-0.5 * gammaln(n + 1))
        values = np.ascontiguousarray(V.T)
        if check:
            check_matches(values, u, family)
        return values
    if family == "gram_schmidt":
        lo, hi = float(u.min()), float(u.max())
        if hi <= lo:
            raise ValueError("u is constant; an input with no variance has no polynomial basis")
        if np.unique(u).size <= max_degree:
            raise ValueError(f"u takes only {np.unique(u).size} distinct values; the empirical basis of degree "
                             f"{max_degree} needs more than {max_degree}")
        V = legendre.legvander(2.0 * (u - lo) / (hi - lo) - 1.0, max_degree)
        Q, R = np.linalg.qr(V)
        Q *= np.sign(np.diag(R)) * np.sqrt(u.size)  # positive leading coefficients, mean square 1
        values = np.ascontiguousarray(Q.T)
        if check:  # orthonormal by construction: only independence is tested
            check_matches(values, u, family)
        return values
    raise ValueError(f"basis must be one of {FAMILIES}, got {family!r}")
