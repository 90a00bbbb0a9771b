"""Constructors of recurrent weight matrices W and input weights w_in (pure NumPy/SciPy).

Every random constructor takes ``seed`` (an int or a ``numpy.random.Generator``); the same seed gives the
same matrix. ``spectral_radius=ρ`` rescales the result so that max|λ(W)| = ρ exactly.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from wrec import _checks
from wrec._checks import Seed

__all__ = [
    "delay_line",
    "gaussian",
    "input_weights",
    "low_rank",
    "low_rank_masked",
    "low_rank_sparse_factors",
    "orthogonal",
    "ring",
    "scale_to_spectral_radius",
    "sparse",
    "spectral_radius",
    "truncate_rank",
]


def _size(n: int) -> int:
    return _checks.integer(n, "n", low=1)


def spectral_radius(W: np.ndarray | sp.sparray | sp.spmatrix) -> float:
    """max |λ_i(W)|: dense ``eigvals``, or ARPACK (fixed start vector, reproducible) for sparse W."""
    if sp.issparse(W):
        return _sparse_spectral_radius(W)
    return float(np.max(np.abs(np.linalg.eigvals(_checks.square(W)))))


def _sparse_spectral_radius(W: sp.sparray | sp.spmatrix) -> float:
    """``spectral_radius`` of a scipy.sparse W: dense ``eigvals`` up to n = 300, ARPACK above."""
    n = W.shape[0]
    if W.shape != (n, n):
        raise ValueError(f"W must be square, got shape {W.shape}")
    if not np.all(np.isfinite(W.data)):
        raise ValueError("W has non-finite entries (NaN or inf)")
    if n <= 300:
        return float(np.max(np.abs(np.linalg.eigvals(W.toarray()))))
    # Several eigenvalues and a generous Krylov space: with k=1 ARPACK can lock onto a smaller eigenvalue
    # when many crowd the edge of the spectrum (random matrices).
    k = 6
    try:
        lam = spla.eigs(W.astype(np.float64), k=k, ncv=min(n, 40), which="LM", v0=np.ones(n) / np.sqrt(n),
                        return_eigenvectors=False, tol=1e-12, maxiter=10 * n)
    except spla.ArpackNoConvergence:
        return float(np.max(np.abs(np.linalg.eigvals(W.toarray()))))
    return float(np.max(np.abs(lam)))


def scale_to_spectral_radius(W, rho: float):
    """W · ρ / max|λ(W)|, so that the result has spectral radius exactly ρ (dense or sparse W)."""
    rho = _checks.real(rho, "rho", low=0.0)
    W = W if sp.issparse(W) else _checks.square(W)
    current = spectral_radius(W)
    if current == 0.0:
        raise ValueError("W has spectral radius 0 (nilpotent or zero); it cannot be rescaled to rho")
    return W * (rho / current)


def _finish(W, spectral_radius: float | None):
    return W if spectral_radius is None else scale_to_spectral_radius(W, spectral_radius)


def gaussian(n: int, g: float = 1.0, *, spectral_radius: float | None = None, seed: Seed = None) -> np.ndarray:
    """Dense W with W_ij ~ N(0, g²/n); its spectral radius tends to g as n grows (circular law).

    With ``spectral_radius`` the draw is rescaled to that exact radius (``g`` then only sets the draw).
    Shape: (n, n).

    Examples:
        >>> import numpy as np
        >>> from wrec import weights
        >>> W = weights.gaussian(500, g=1.0, seed=0)
        >>> W.shape, round(float(W.std() * np.sqrt(500)), 2)  # entries of std g/√n
        ((500, 500), 1.0)
        >>> W = weights.gaussian(100, spectral_radius=0.9, seed=1)
        >>> round(float(np.abs(np.linalg.eigvals(W)).max()), 6)
        0.9
    """
    n = _size(n)
    g = _checks.real(g, "g", low=0.0, low_open=True)
    W = _checks.rng(seed).standard_normal((n, n)) * (g / np.sqrt(n))
    return _finish(W, spectral_radius)


def sparse(
    n: int,
    density: float,
    g: float = 1.0,
    *,
    spectral_radius: float | None = None,
    distribution: str = "gaussian",
    dense: bool = False,
    seed: Seed = None,
):
    """Sparse W: each entry nonzero with probability ``density``, nonzeros N(0, g²/(n·density)) or uniform.

    The variance is chosen so that the spectral radius tends to g; ``spectral_radius`` rescales to an exact
    value (ARPACK). Returns a ``scipy.sparse`` CSR array (``dense=True`` for an ndarray). Shape: (n, n).
    """
    n = _size(n)
    density = _checks.real(density, "density", low=0.0, high=1.0, low_open=True)
    g = _checks.real(g, "g", low=0.0, low_open=True)
    gen = _checks.rng(seed)
    draw: Callable[[int], np.ndarray]
    if distribution == "gaussian":
        draw = gen.standard_normal
    elif distribution == "uniform":
        def draw(size: int) -> np.ndarray:  # U[-√3, √3] has unit variance
            return gen.uniform(-np.sqrt(3), np.sqrt(3), size)
    else:
        raise ValueError(f"distribution must be 'gaussian' or 'uniform', got {distribution!r}")
    W = sp.random_array((n, n), density=density, format="csr", rng=gen, data_sampler=draw)
    W = W * (g / np.sqrt(n * density))
    W = _finish(W, spectral_radius)
    return W.toarray() if dense else sp.csr_array(W)


def orthogonal(n: int, spectral_radius: float = 1.0, *, seed: Seed = None) -> np.ndarray:
    """ρ · Q with Q Haar-distributed orthogonal: every eigenvalue has modulus ρ. Shape: (n, n)."""
    n = _size(n)
    rho = _checks.real(spectral_radius, "spectral_radius", low=0.0)
    if n == 1:
        return np.array([[rho * (1.0 if _checks.rng(seed).random() < 0.5 else -1.0)]])
    from scipy.stats import ortho_group  # scipy.stats is slow to import; only this constructor needs it

    return rho * ortho_group.rvs(n, random_state=_checks.rng(seed))


def ring(n: int, spectral_radius: float = 1.0) -> np.ndarray:
    """ρ · cyclic shift: x_i ← ρ x_{i−1 mod n}. Eigenvalues ρ·e^{2πik/n}. Shape: (n, n)."""
    n = _size(n)
    rho = _checks.real(spectral_radius, "spectral_radius", low=0.0)
    return rho * np.roll(np.eye(n), 1, axis=0)


def delay_line(n: int) -> np.ndarray:
    """Lower shift (no wrap): x_i ← x_{i−1}; with w_in = e₁ the state is (u_t, u_{t−1}, …, u_{t−n+1})."""
    return np.eye(_size(n), k=-1)


def truncate_rank(W: np.ndarray, rank: int) -> np.ndarray:
    """Best rank-r approximation of W (Eckart–Young): U_r Σ_r V_rᵀ from the SVD."""
    W = _checks.array(W, "W", ndim=2)
    rank = _checks.integer(rank, "rank", low=1, high=min(W.shape))
    U, s, Vt = np.linalg.svd(W, full_matrices=False)
    return (U[:, :rank] * s[:rank]) @ Vt[:rank]


def low_rank(n: int, rank: int, g: float = 1.0, *, seed: Seed = None) -> np.ndarray:
    """Rank-r W: the truncated SVD of a Gaussian W (gain g), as in low-rank RNN initialisations."""
    return truncate_rank(gaussian(n, g, seed=seed), rank)


def low_rank_masked(n: int, rank: int, density: float, g: float = 1.0, *, seed: Seed = None) -> np.ndarray:
    """(P Qᵀ) ⊙ M: a rank-r truncated SVD times a fixed Bernoulli(density) mask (sparsity = 1 − density)."""
    density = _checks.real(density, "density", low=0.0, high=1.0, low_open=True)
    gen = _checks.rng(seed)
    W = low_rank(n, rank, g, seed=gen)
    return W * (gen.random(W.shape) < density)


def low_rank_sparse_factors(
    n_out: int,
    n_in: int,
    rank: int,
    sparsity: float = 0.0,
    *,
    init: str | np.ndarray = "glorot",
    mask: str = "bernoulli",
    seed: Seed = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Factors of W = (P Qᵀ) ⊙ M (Tumma et al., ICLR 2024): P = U_r Σ_r^½, Qᵀ = Σ_r^½ V_rᵀ from the rank-r SVD of W₀.

    W₀ is ``init``: 'glorot' (U(±√(6/(n_in+n_out)))), 'orthogonal' (Haar, orthonormal rows or columns), 'uniform'
    (torch's RNN default U(±1/√n_in)) or a given (n_out, n_in) array. M has i.i.d. Bernoulli(1 − s) entries
    (``mask='bernoulli'``) or exactly round(n_out·n_in·(1 − s)) ones at random places (``'exact'``).
    Shape: P (n_out, r), Q (n_in, r), M (n_out, n_in) of 0/1.
    """
    n_out, n_in = _size(n_out), _checks.integer(n_in, "n_in", low=1)
    rank = _checks.integer(rank, "rank", low=1, high=min(n_out, n_in))
    sparsity = _checks.real(sparsity, "sparsity", low=0.0, high=1.0, high_open=True)
    gen = _checks.rng(seed)
    if isinstance(init, str):
        if init == "glorot":
            bound = np.sqrt(6.0 / (n_in + n_out))
            W0 = gen.uniform(-bound, bound, (n_out, n_in))
        elif init == "uniform":
            W0 = gen.uniform(-1.0, 1.0, (n_out, n_in)) / np.sqrt(n_in)
        elif init == "orthogonal":
            A = gen.standard_normal((max(n_out, n_in), min(n_out, n_in)))
            Qm, R = np.linalg.qr(A)
            Qm = Qm * np.sign(np.diag(R))  # the sign fix makes the draw Haar-distributed
            W0 = Qm if n_out >= n_in else Qm.T
        else:
            raise ValueError(f"init must be 'glorot', 'orthogonal', 'uniform' or an array, got {init!r}")
    else:
        W0 = _checks.array(init, "init", ndim=2)
        if W0.shape != (n_out, n_in):
            raise ValueError(f"init must have shape ({n_out}, {n_in}), got {W0.shape}")
    U, s, Vt = np.linalg.svd(W0, full_matrices=False)
    root = np.sqrt(s[:rank])
    P, Q = U[:, :rank] * root, Vt[:rank].T * root
    if mask == "bernoulli":
        M = (gen.random((n_out, n_in)) < 1.0 - sparsity).astype(np.float64)
    elif mask == "exact":
        M = np.zeros(n_out * n_in)
        M[gen.permutation(n_out * n_in)[: round(n_out * n_in * (1.0 - sparsity))]] = 1.0
        M = M.reshape(n_out, n_in)
    else:
        raise ValueError(f"mask must be 'bernoulli' or 'exact', got {mask!r}")
    return P, Q, M


def input_weights(
    n: int,
    *,
    distribution: str = "gaussian",
    density: float = 1.0,
    n_inputs: int | None = None,
    seed: Seed = None,
) -> np.ndarray:
    """Input weights w_in: N(0, 1) (default) or U[−1, 1] entries, each kept with probability ``density``.

    Shape: (n,) for one input channel, (n, n_inputs) when ``n_inputs`` is given.
    """
    n = _size(n)
    density = _checks.real(density, "density", low=0.0, high=1.0, low_open=True)
    shape = (n,) if n_inputs is None else (n, _checks.integer(n_inputs, "n_inputs", low=1))
    gen = _checks.rng(seed)
    if distribution == "gaussian":
        w = gen.standard_normal(shape)
    elif distribution == "uniform":
        w = gen.uniform(-1.0, 1.0, shape)
    else:
        raise ValueError(f"distribution must be 'gaussian' or 'uniform', got {distribution!r}")
    if density < 1.0:
        w = w * (gen.random(shape) < density)
    return w
