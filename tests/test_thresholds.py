"""Spurious-capacity thresholds against the Beta null distribution of Ĉ."""

import numpy as np
import pytest
from scipy.stats import beta

from wrec.capacity import ChiSquare, NoThreshold, Surrogate, decompose
from wrec.capacity.basis import orthonormal
from wrec.capacity.thresholds import as_threshold


@pytest.fixture(scope="module")
def setting():
    rng = np.random.default_rng(0)
    T, N = 5000, 20
    u = rng.uniform(-1, 1, T)
    X = rng.standard_normal((T, N))  # states independent of u: every target is a null
    return decompose(X[10:]), orthonormal(u, 3, "legendre"), 10


def test_chi_square_is_the_beta_quantile(setting):
    dec, basis, offset = setting
    (value,) = ChiSquare(alpha=1e-3, factor=2.0).thresholds(dec, basis, [(1,)], offset)
    T, r = dec.n_samples, dec.rank
    assert value == pytest.approx(2.0 * beta.ppf(1 - 1e-3, r / 2, (T - 1 - r) / 2), rel=1e-12)


def test_chi_square_at_r50_t1e5_matches_the_spec_probe():
    from wrec.capacity.core import Decomposition

    dec = Decomposition(basis=np.zeros((100_000, 50)), singular_values=np.ones(50), rank=50, n_samples=100_000)
    (value,) = ChiSquare().thresholds(dec, np.zeros((2, 10)), [(1,)], 0)
    assert value == pytest.approx(8.7e-4, rel=0.02)


def test_surrogate_threshold_is_distributed_as_the_max_of_null_capacities(setting):
    dec, basis, offset = setting
    T, r, count = dec.n_samples, dec.rank, 100
    shapes = [(1,), (2,), (1, 1), (2, 1)]
    # If the surrogates are nulls, F(threshold)^count is uniform on [0, 1] (F the Beta(r/2, (T−1−r)/2) cdf of Ĉ).
    q = np.array([beta.cdf(Surrogate(count=count, scale=1.0, seed=s).thresholds(dec, basis, shapes, offset),
                           r / 2, (T - 1 - r) / 2) ** count for s in range(30)])
    assert abs(q.mean() - 0.5) < 3 * np.sqrt(1 / 12 / q.size)
    assert q.min() > 1e-4  # no threshold far below the null range


def test_surrogate_is_reproducible_and_scales(setting):
    dec, basis, offset = setting
    shapes = [(1,), (3,), (1, 1, 1)]
    a = Surrogate(count=50, seed=1).thresholds(dec, basis, shapes, offset)
    b = Surrogate(count=50, seed=1).thresholds(dec, basis, shapes, offset)
    c = Surrogate(count=50, scale=2.4, seed=1).thresholds(dec, basis, shapes, offset)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(c, 2 * a)
    assert not np.array_equal(a, Surrogate(count=50, seed=2).thresholds(dec, basis, shapes, offset))


def test_none_means_no_threshold(setting):
    dec, basis, offset = setting
    assert isinstance(as_threshold(None), NoThreshold)
    np.testing.assert_array_equal(NoThreshold().thresholds(dec, basis, [(1,), (2,)], offset), 0.0)


@pytest.mark.parametrize(
    ("make", "exc", "match"),
    [
        (lambda: Surrogate(count=0), ValueError, "count must be >= 1"),
        (lambda: Surrogate(scale=0.0), ValueError, "scale must be > 0"),
        (lambda: Surrogate(count=2.5), TypeError, "count must be an int"),
        (lambda: ChiSquare(alpha=0.0), ValueError, "alpha must be > 0"),
        (lambda: ChiSquare(alpha=1.0), ValueError, "alpha must be < 1"),
        (lambda: ChiSquare(factor=-1.0), ValueError, "factor must be > 0"),
        (lambda: as_threshold("surrogate"), TypeError, "threshold must be"),
    ],
)
def test_bad_parameters(make, exc, match):
    with pytest.raises(exc, match=match):
        make()
