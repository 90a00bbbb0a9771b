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


def orthonormal(u: np.ndarray, max_degree: int, family: str = "legendre") -> np.ndarray:
    """Values P_n(u_t) for n = 0..max_degree.  Shape: u (T,) -> (max_degree + 1, T).

    Raises ValueError when u lies outside the family's support (Legendre needs u in [−1, 1]).
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
        return np.ascontiguousarray(V.T)
    if family == "hermite":
        V = hermite_e.hermevander(u, max_degree)
        n = np.arange(max_degree + 1)
        V *= np.exp(-0.5 * gammaln(n + 1))
        return np.ascontiguousarray(V.T)
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
        return np.ascontiguousarray(Q.T)
    raise ValueError(f"basis must be one of {FAMILIES}, got {family!r}")
