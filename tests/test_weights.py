"""Oracles for wrec.weights: statistics of the draws, exact spectral radii, structure and Eckart–Young."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from wrec import weights


def radius(W) -> float:
    """Independent reference: max |λ| from dense LAPACK eigvals."""
    A = W.toarray() if sp.issparse(W) else np.asarray(W, dtype=np.float64)
    return float(np.max(np.abs(np.linalg.eigvals(A))))


def dense(W) -> np.ndarray:
    return W.toarray() if sp.issparse(W) else np.asarray(W)


# --------------------------------------------------------------------------------------------- seeding

RANDOM = {
    "gaussian": lambda seed: weights.gaussian(20, 1.3, seed=seed),
    "gaussian_rho": lambda seed: weights.gaussian(20, spectral_radius=0.9, seed=seed),
    "sparse": lambda seed: weights.sparse(20, 0.3, seed=seed),
    "sparse_uniform": lambda seed: weights.sparse(20, 0.3, distribution="uniform", seed=seed),
    "orthogonal": lambda seed: weights.orthogonal(20, 0.7, seed=seed),
    "low_rank": lambda seed: weights.low_rank(20, 3, seed=seed),
    "low_rank_masked": lambda seed: weights.low_rank_masked(20, 3, 0.5, seed=seed),
    "input_weights": lambda seed: weights.input_weights(20, density=0.5, seed=seed),
    "input_weights_uniform": lambda seed: weights.input_weights(20, distribution="uniform", seed=seed),
}


@pytest.mark.parametrize("name", sorted(RANDOM))
def test_same_seed_same_draw_different_seed_different_draw(name):
    make = RANDOM[name]
    a, b, c = dense(make(7)), dense(make(7)), dense(make(8))
    np.testing.assert_array_equal(a, b)
    assert np.max(np.abs(a - c)) > 1e-3
    # A Generator is accepted and gives the same stream as the int that seeded it.
    np.testing.assert_array_equal(dense(make(np.random.default_rng(7))), a)


# --------------------------------------------------------------------------------------------- gaussian

def test_gaussian_entry_moments_are_zero_mean_and_g2_over_n():
    n, g = 400, 1.7
    W = weights.gaussian(n, g, seed=0)
    var = g**2 / n
    # n² = 160 000 samples: SE(mean) = sqrt(var)/400, SE(var)/var = sqrt(2/160000) ≈ 0.35 %.
    assert abs(W.mean()) < 5 * np.sqrt(var) / n
    assert W.var() == pytest.approx(var, rel=0.02)


@pytest.mark.parametrize("seed", [0, 1])
def test_gaussian_spectral_radius_tends_to_gain(seed):
    # Circular law: max|λ| → g. At n = 200 the finite-size edge excess is 0–7 % (20 seeds: ρ/g ∈ [0.995, 1.068]).
    g = 0.8
    assert radius(weights.gaussian(200, g, seed=seed)) / g == pytest.approx(1.0, abs=0.1)


# --------------------------------------------------------------------------------------------- exact radius

@pytest.mark.parametrize("rho", [0.5, 0.95, 1.3])
def test_gaussian_with_spectral_radius_is_exact(rho):
    W = weights.gaussian(50, 3.0, spectral_radius=rho, seed=1)
    assert radius(W) == pytest.approx(rho, abs=1e-10)
    # It is a rescaling of the plain draw (g only fixes the draw): W = c · gaussian(50, 3.0).
    W0 = weights.gaussian(50, 3.0, seed=1)
    np.testing.assert_allclose(W, W0 * (rho / radius(W0)), rtol=1e-10, atol=0)


def test_sparse_small_uses_dense_path_and_is_exact():
    W = weights.sparse(40, 0.2, spectral_radius=0.9, seed=3)
    assert isinstance(W, sp.csr_array)
    assert radius(W) == pytest.approx(0.9, abs=1e-10)


def test_sparse_large_arpack_path_is_exact():
    W = weights.sparse(200, 0.1, spectral_radius=0.9, seed=0)  # n > 64: ARPACK
    assert isinstance(W, sp.csr_array)
    assert radius(W) == pytest.approx(0.9, abs=1e-10)
    Wd = weights.sparse(200, 0.1, spectral_radius=0.9, seed=0, dense=True)
    assert isinstance(Wd, np.ndarray)
    np.testing.assert_array_equal(Wd, W.toarray())


@pytest.mark.parametrize("n, density, seed", [(500, 0.02, 10), (400, 0.05, 1), (600, 0.05, 9)])
def test_sparse_arpack_radius_is_exact_for_edge_crowded_spectra(n, density, seed):
    W = weights.sparse(n, density, spectral_radius=0.9, seed=seed)
    assert radius(W) == pytest.approx(0.9, abs=1e-10)


def test_spectral_radius_function_matches_dense_eigvals():
    rng = np.random.default_rng(5)
    A = rng.standard_normal((80, 80)) / np.sqrt(80)
    A[0, 0] = 4.0  # isolated dominant eigenvalue near 4: ARPACK converges unambiguously
    assert weights.spectral_radius(A) == pytest.approx(radius(A), abs=1e-12)
    assert weights.spectral_radius(sp.csr_array(A)) == pytest.approx(radius(A), abs=1e-10)  # ARPACK path
    small = sp.csr_array(A[:30, :30])
    assert weights.spectral_radius(small) == pytest.approx(radius(A[:30, :30]), abs=1e-12)


def test_spectral_radius_of_known_matrices():
    # [[0, 2], [1, 0]] has eigenvalues ±√2; a rotation by θ times r has |λ| = r.
    assert weights.spectral_radius(np.array([[0.0, 2.0], [1.0, 0.0]])) == pytest.approx(np.sqrt(2), abs=1e-14)
    th, r = 0.3, 0.7
    R = r * np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    assert weights.spectral_radius(R) == pytest.approx(r, abs=1e-14)


@pytest.mark.parametrize("to_sparse", [False, True])
def test_scale_to_spectral_radius_is_exact_and_proportional(to_sparse):
    rng = np.random.default_rng(2)
    A = rng.standard_normal((30, 30))
    W = sp.csr_array(A) if to_sparse else A
    S = weights.scale_to_spectral_radius(W, 0.8)
    assert sp.issparse(S) == to_sparse
    assert radius(S) == pytest.approx(0.8, abs=1e-10)
    np.testing.assert_allclose(dense(S), A * (0.8 / radius(A)), rtol=1e-10)


def test_scale_to_spectral_radius_accepts_array_like():
    S = weights.scale_to_spectral_radius([[0.0, 2.0], [1.0, 0.0]], 1.0)
    np.testing.assert_allclose(S, np.array([[0.0, 2.0], [1.0, 0.0]]) / np.sqrt(2), rtol=1e-14)


def test_scale_to_spectral_radius_rejects_nilpotent():
    with pytest.raises(ValueError, match="spectral radius 0"):
        weights.scale_to_spectral_radius(weights.delay_line(6), 1.0)


# --------------------------------------------------------------------------------------------- sparse

@pytest.mark.parametrize("distribution", ["gaussian", "uniform"])
def test_sparse_density_and_nonzero_variance(distribution):
    n, density, g = 300, 0.1, 1.5
    W = weights.sparse(n, density, g, distribution=distribution, seed=4)
    assert W.shape == (n, n)
    assert W.nnz / n**2 == pytest.approx(density, abs=0.005)
    vals = W.data
    var = g**2 / (n * density)  # so that the spectral radius tends to g
    assert vals.var() == pytest.approx(var, rel=0.05)
    assert abs(vals.mean()) < 5 * np.sqrt(var / vals.size)
    if distribution == "uniform":
        half_width = np.sqrt(3 * var)
        assert np.max(np.abs(vals)) <= half_width * (1 + 1e-12)
        assert np.max(np.abs(vals)) > 0.98 * half_width


# --------------------------------------------------------------------------------------------- structured

@pytest.mark.parametrize("n", [1, 2, 17])
def test_orthogonal_is_rho_times_orthogonal(n):
    rho = 0.85
    Q = weights.orthogonal(n, rho, seed=9)
    np.testing.assert_allclose(Q.T @ Q, rho**2 * np.eye(n), atol=1e-12)
    np.testing.assert_allclose(np.abs(np.linalg.eigvals(Q)), rho, atol=1e-10)


def test_ring_is_cyclic_shift_with_roots_of_unity_spectrum():
    n, rho = 7, 0.6
    R = weights.ring(n, rho)
    x = np.arange(1.0, n + 1)
    np.testing.assert_array_equal(R @ x, rho * np.array([7.0, 1, 2, 3, 4, 5, 6]))  # x_i ← ρ x_{i−1 mod n}
    lam = np.linalg.eigvals(R)
    np.testing.assert_allclose(np.abs(lam), rho, atol=1e-12)
    expect = np.sort(np.angle(np.exp(2j * np.pi * np.arange(n) / n)))
    np.testing.assert_allclose(np.sort(np.angle(lam)), expect, atol=1e-10)


def test_delay_line_is_lower_shift_and_nilpotent():
    n = 6
    D = weights.delay_line(n)
    x = np.arange(1.0, n + 1)
    np.testing.assert_array_equal(D @ x, [0.0, 1, 2, 3, 4, 5])
    assert np.count_nonzero(np.linalg.matrix_power(D, n - 1)) == 1  # D^{n−1} = e_n e_1ᵀ ≠ 0
    np.testing.assert_array_equal(np.linalg.matrix_power(D, n), np.zeros((n, n)))


# --------------------------------------------------------------------------------------------- low rank

@pytest.mark.parametrize("shape, r", [((30, 30), 5), ((30, 20), 3), ((12, 12), 12)])
def test_truncate_rank_is_the_eckart_young_optimum(shape, r):
    A = np.random.default_rng(11).standard_normal(shape)
    Ar = weights.truncate_rank(A, r)
    assert np.linalg.matrix_rank(Ar) == r
    s = np.linalg.svd(A, compute_uv=False)
    assert np.linalg.norm(A - Ar) == pytest.approx(np.sqrt(np.sum(s[r:] ** 2)), abs=1e-10)
    assert np.linalg.norm(A - Ar, 2) == pytest.approx(s[r] if r < len(s) else 0.0, abs=1e-10)
    # Any other rank-r matrix (here a random one) is no better.
    other = np.random.default_rng(0).standard_normal((shape[0], r)) @ np.random.default_rng(1).standard_normal(
        (r, shape[1])
    )
    assert np.linalg.norm(A - Ar) <= np.linalg.norm(A - other)


@pytest.mark.parametrize("r", [1, 4])
def test_low_rank_has_exact_rank_and_is_truncated_gaussian(r):
    n, g = 40, 1.2
    L = weights.low_rank(n, r, g, seed=3)
    assert np.linalg.matrix_rank(L) == r
    G = weights.gaussian(n, g, seed=3)
    s = np.linalg.svd(G, compute_uv=False)
    assert np.linalg.norm(G - L) == pytest.approx(np.sqrt(np.sum(s[r:] ** 2)), abs=1e-10)


def test_low_rank_masked_is_low_rank_times_bernoulli_mask():
    n, r, density, g = 150, 3, 0.3, 1.0
    M = weights.low_rank_masked(n, r, density, g, seed=5)
    L = weights.low_rank(n, r, g, seed=5)  # the same first draw from the same stream
    kept = M != 0
    np.testing.assert_array_equal(M[kept], L[kept])  # every entry is either L_ij or 0
    assert kept.mean() == pytest.approx(density, abs=0.015)  # n² = 22 500: SE ≈ 0.003


# --------------------------------------------------------------------------------------------- input weights

def test_input_weights_gaussian_moments():
    w = weights.input_weights(20000, seed=0)
    assert w.shape == (20000,)
    assert abs(w.mean()) < 0.03  # 5 SE
    assert w.var() == pytest.approx(1.0, rel=0.05)


def test_input_weights_uniform_range_and_variance():
    w = weights.input_weights(20000, distribution="uniform", seed=0)
    assert w.min() >= -1.0 and w.max() <= 1.0
    assert w.min() < -0.99 and w.max() > 0.99
    assert w.var() == pytest.approx(1 / 3, rel=0.05)


def test_input_weights_density_and_channels():
    w = weights.input_weights(20000, density=0.25, seed=1)
    assert np.count_nonzero(w) / w.size == pytest.approx(0.25, abs=0.015)  # SE ≈ 0.003
    nz = w[w != 0]
    assert nz.var() == pytest.approx(1.0, rel=0.08)  # kept entries are still N(0, 1)
    assert weights.input_weights(5, n_inputs=3, seed=1).shape == (5, 3)


# --------------------------------------------------------------------------------------------- bad input

W_NAN = np.eye(4)
W_NAN[1, 2] = np.nan
BAD = [
    (lambda: weights.gaussian(5.0), TypeError, r"^n must be an int"),
    (lambda: weights.gaussian(True), TypeError, r"^n must be an int"),
    (lambda: weights.gaussian(0), ValueError, r"^n must be >= 1"),
    (lambda: weights.gaussian(5, -1.0), ValueError, r"^g must be > 0"),
    (lambda: weights.gaussian(5, float("nan")), ValueError, r"^g must be finite"),
    (lambda: weights.gaussian(5, seed="abc"), TypeError, r"^seed must be"),
    (lambda: weights.sparse(0, 0.5), ValueError, r"^n must be"),
    (lambda: weights.sparse(10, 0.0), ValueError, r"^density must be > 0"),
    (lambda: weights.sparse(10, 1.5), ValueError, r"^density must be <= 1"),
    (lambda: weights.sparse(10, 0.5, -2.0), ValueError, r"^g must be"),
    (lambda: weights.sparse(10, 0.5, distribution="cauchy"), ValueError, r"^distribution must be"),
    (lambda: weights.orthogonal(4, -1.0), ValueError, r"^spectral_radius must be >= 0"),
    (lambda: weights.orthogonal(2.5), TypeError, r"^n must be an int"),
    (lambda: weights.ring(0), ValueError, r"^n must be >= 1"),
    (lambda: weights.delay_line(-3), ValueError, r"^n must be >= 1"),
    (lambda: weights.spectral_radius(W_NAN), ValueError, r"^W has 1 non-finite"),
    (lambda: weights.spectral_radius(np.ones((3, 4))), ValueError, r"^W must be a non-empty square"),
    (lambda: weights.spectral_radius(sp.csr_array(np.ones((3, 4)))), ValueError, r"^W must be square"),
    (lambda: weights.spectral_radius(sp.csr_array(W_NAN)), ValueError, r"^W has non-finite"),
    (lambda: weights.scale_to_spectral_radius(W_NAN, 1.0), ValueError, r"^W has 1 non-finite"),
    (lambda: weights.scale_to_spectral_radius(np.eye(3), -0.5), ValueError, r"^rho must be >= 0"),
    (lambda: weights.truncate_rank(np.eye(5), 6), ValueError, r"^rank must be <= 5"),
    (lambda: weights.truncate_rank(np.eye(5), 0), ValueError, r"^rank must be >= 1"),
    (lambda: weights.truncate_rank(np.eye(5), 2.0), TypeError, r"^rank must be an int"),
    (lambda: weights.truncate_rank(np.ones(5), 1), ValueError, r"^W must be 2-D"),
    (lambda: weights.truncate_rank(W_NAN, 1), ValueError, r"^W has 1 non-finite"),
    (lambda: weights.low_rank(5, 6), ValueError, r"^rank must be <= 5"),
    (lambda: weights.low_rank(5, 2, -1.0), ValueError, r"^g must be"),
    (lambda: weights.low_rank_masked(5, 2, 0.0), ValueError, r"^density must be > 0"),
    (lambda: weights.low_rank_masked(5, 2, 1.01), ValueError, r"^density must be <= 1"),
    (lambda: weights.input_weights(5, distribution="laplace"), ValueError, r"^distribution must be"),
    (lambda: weights.input_weights(5, density=0.0), ValueError, r"^density must be > 0"),
    (lambda: weights.input_weights(5, n_inputs=0), ValueError, r"^n_inputs must be >= 1"),
    (lambda: weights.input_weights(5.5), TypeError, r"^n must be an int"),
]


@pytest.mark.parametrize("call, exc, match", BAD, ids=[f"{i}:{m}" for i, (_, _, m) in enumerate(BAD)])
def test_bad_input_raises_naming_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
