"""Orthonormal bases: exact orthonormality by Gauss quadrature, empirical orthonormality, support checks."""

import numpy as np
import pytest
from numpy.polynomial import hermite_e, legendre

from wrec.capacity.basis import orthonormal


def test_legendre_is_orthonormal_under_uniform_measure():
    x, w = legendre.leggauss(20)  # exact for polynomials of degree < 40
    P = orthonormal(x, 6, "legendre", check=False)
    gram = (P * (w / 2.0)) @ P.T  # E under U[-1, 1]: density 1/2
    np.testing.assert_allclose(gram, np.eye(7), atol=1e-12)


def test_hermite_is_orthonormal_under_standard_gaussian():
    x, w = hermite_e.hermegauss(20)  # weight exp(-x²/2)
    P = orthonormal(x, 6, "hermite", check=False)
    gram = (P * (w / np.sqrt(2 * np.pi))) @ P.T
    np.testing.assert_allclose(gram, np.eye(7), atol=1e-10)


def test_low_degrees_have_the_textbook_form():
    u = np.linspace(-1, 1, 11)
    P = orthonormal(u, 2, "legendre", check=False)
    np.testing.assert_allclose(P[0], 1.0)
    np.testing.assert_allclose(P[1], np.sqrt(3) * u)
    np.testing.assert_allclose(P[2], np.sqrt(5) * (3 * u**2 - 1) / 2)
    H = orthonormal(u, 2, "hermite", check=False)
    np.testing.assert_allclose(H[2], (u**2 - 1) / np.sqrt(2))


@pytest.mark.parametrize("draw", [lambda g: g.exponential(size=5000), lambda g: g.uniform(-1, 1, 5000)])
def test_gram_schmidt_is_orthonormal_under_the_empirical_measure(draw):
    u = draw(np.random.default_rng(0))
    P = orthonormal(u, 5, "gram_schmidt")
    np.testing.assert_allclose(P @ P.T / u.size, np.eye(6), atol=1e-10)
    np.testing.assert_allclose(P[0], 1.0)
    assert np.corrcoef(P[1], u)[0, 1] > 0.999999  # degree 1 is increasing in u


def test_legendre_rejects_input_outside_its_support():
    with pytest.raises(ValueError, match=r"u must lie in \[-1, 1\].*hermite"):
        orthonormal(np.array([0.0, 1.5]), 2, "legendre")


@pytest.mark.parametrize(
    ("u", "deg", "family", "exc", "match"),
    [
        (np.ones(10), 2, "gram_schmidt", ValueError, "constant"),
        (np.array([0.0, 1.0] * 5), 2, "gram_schmidt", ValueError, "distinct values"),
        (np.zeros(10), 2, "chebyshev", ValueError, "basis must be one of"),
        (np.zeros(10), 0, "legendre", ValueError, "max_degree"),
        (np.zeros((2, 5)), 2, "legendre", ValueError, "u must be 1-D"),
        (np.array([0.0, np.nan]), 2, "hermite", ValueError, "non-finite"),
    ],
)
def test_bad_input(u, deg, family, exc, match):
    with pytest.raises(exc, match=match):
        orthonormal(u, deg, family)


@pytest.mark.parametrize(
    ("draw", "family", "match"),
    [
        (lambda g, T: g.uniform(0, 1, T), "legendre", r"does not match the legendre basis.*U\[-1, 1\].*gram_schmidt"),
        (lambda g, T: g.uniform(-0.5, 0.5, T), "legendre", "does not match the legendre basis"),
        (lambda g, T: 0.5 * g.standard_normal(T), "hermite", r"does not match the hermite basis.*N\(0, 1\)"),
        (lambda g, T: np.sin(0.1 * np.arange(T)), "legendre", "not i.i.d.: its lag-1 autocorrelation"),
        (lambda g, T: np.convolve(g.uniform(-0.5, 0.5, T + 1), [1, 1], "valid"), "gram_schmidt", "not i.i.d."),
    ],
)
def test_input_that_does_not_match_the_basis_is_rejected(draw, family, match):
    u = draw(np.random.default_rng(1), 5000)
    with pytest.raises(ValueError, match=match):
        orthonormal(u, 3, family)


@pytest.mark.parametrize("family", ["legendre", "hermite", "gram_schmidt"])
def test_matching_iid_input_passes_the_check_for_every_seed(family):
    for seed in range(200):
        g = np.random.default_rng(seed)
        u = g.standard_normal(2000) if family == "hermite" else g.uniform(-1, 1, 2000)
        orthonormal(u, 5, family)  # no false alarm in 200 draws (each < 2·10⁻⁵)
