"""Spurious-capacity thresholds against the Beta null distribution of Ĉ."""

import numpy as np
import pytest
from scipy.stats import beta

from wrec.capacity import ChiSquare, NoThreshold, Surrogate, decompose
from wrec.capacity.basis import orthonormal
from wrec.capacity.targets import target_set
from wrec.capacity.thresholds import as_threshold, expected_spurious, family_threshold


def sets(shapes, max_delay=5):
    return [target_set(p, max_delay) for p in shapes]


@pytest.fixture(scope="module")
def setting():
    rng = np.random.default_rng(0)
    T, N = 5000, 20
    u = rng.uniform(-1, 1, T)
    X = rng.standard_normal((T, N))  # states independent of u: every target is a null
    return decompose(X[10:]), orthonormal(u, 3, "legendre"), 10


def test_chi_square_is_the_beta_quantile(setting):
    dec, basis, offset = setting
    (value,) = ChiSquare(alpha=1e-3, factor=2.0, max_spurious=None).thresholds(dec, basis, sets([(1,)]), offset)
    T, r = dec.n_samples, dec.rank
    assert value == pytest.approx(2.0 * beta.ppf(1 - 1e-3, r / 2, (T - 1 - r) / 2), rel=1e-12)


def test_chi_square_threshold_at_r50_t1e5_is_about_8_7e_4():
    from wrec.capacity.core import Decomposition

    dec = Decomposition(basis=np.zeros((100_000, 50)), singular_values=np.ones(50), rank=50, n_samples=100_000)
    (value,) = ChiSquare(max_spurious=None).thresholds(dec, np.zeros((2, 10)), sets([(1,)]), 0)
    assert value == pytest.approx(8.7e-4, rel=0.02)


def test_surrogate_threshold_is_distributed_as_the_max_of_null_capacities(setting):
    dec, basis, offset = setting
    T, r, count = dec.n_samples, dec.rank, 100
    shapes = [(1,), (2,), (1, 1), (2, 1)]
    # If the surrogates are nulls, F(threshold)^count is uniform on [0, 1] (F the Beta(r/2, (T−1−r)/2) cdf of Ĉ).
    surrogates = [Surrogate(count=count, scale=1.0, seed=s, max_spurious=None) for s in range(30)]
    q = np.array([beta.cdf(sur.thresholds(dec, basis, sets(shapes), offset),
                           r / 2, (T - 1 - r) / 2) ** count for sur in surrogates])
    assert abs(q.mean() - 0.5) < 3 * np.sqrt(1 / 12 / q.size)
    assert q.min() > 1e-4  # no threshold far below the null range


def test_surrogate_is_reproducible_and_scales(setting):
    dec, basis, offset = setting
    shapes = [(1,), (3,), (1, 1, 1)]
    a = Surrogate(count=50, seed=1, max_spurious=None).thresholds(dec, basis, sets(shapes), offset)
    b = Surrogate(count=50, seed=1, max_spurious=None).thresholds(dec, basis, sets(shapes), offset)
    c = Surrogate(count=50, scale=2.4, seed=1, max_spurious=None).thresholds(dec, basis, sets(shapes), offset)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(c, 2 * a)
    assert not np.array_equal(a, Surrogate(count=50, seed=2, max_spurious=None).thresholds(dec, basis, sets(shapes),
                                                                                          offset))


def test_none_means_no_threshold(setting):
    dec, basis, offset = setting
    assert isinstance(as_threshold(None), NoThreshold)
    np.testing.assert_array_equal(NoThreshold().thresholds(dec, basis, sets([(1,), (2,)]), offset), 0.0)


def test_family_threshold_bounds_the_expected_spurious_total(setting):
    dec = setting[0]
    T, r = dec.n_samples, dec.rank
    for m in (10**3, 10**6):
        theta = family_threshold(dec, m, 0.1)
        # m·E[Ĉ; Ĉ > θ] under the Beta null, by the identity x·f(a, b) = e₀·f(a + 1, b)
        tail = beta.sf(theta, r / 2 + 1, (T - 1 - r) / 2) * r / (T - 1)
        assert m * tail == pytest.approx(0.1, rel=1e-6)
        assert expected_spurious(dec, m, theta) <= 0.1
    assert family_threshold(dec, 10, 0.1) == 0.0  # 10 nulls add r/(T−1)·10 = 0.04 at most: no bound needed
    assert family_threshold(dec, 10**6, None) == 0.0


def test_expected_spurious_matches_monte_carlo_nulls():
    rng = np.random.default_rng(8)
    T, N, m = 400, 10, 20_000
    X = rng.standard_normal((T, N))
    dec = decompose(X)
    Z = rng.standard_normal((T, m))
    values, null = dec.capacities(Z - Z.mean(axis=0))
    theta = float(beta.ppf(0.9, N / 2, (T - 1 - N) / 2))
    kept = values > theta
    observed = dec.adjusted(values[kept], dec.floor).sum()
    expected = float(expected_spurious(dec, m, theta))
    # about 2 000 kept of 20 000: the sum's standard error is ≈ √2000 · 0.013 ≈ 0.6 against ≈ 25
    assert observed == pytest.approx(expected, rel=0.05)
    np.testing.assert_allclose(null.mean(), N / (T - 1), rtol=0.01)  # homoscedastic: the null mean is r/(T−1)


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
        (lambda: Surrogate(max_spurious=0.0), ValueError, "max_spurious must be > 0"),
        (lambda: ChiSquare(max_spurious=-1.0), ValueError, "max_spurious must be > 0"),
    ],
)
def test_bad_parameters(make, exc, match):
    with pytest.raises(exc, match=match):
        make()
