"""Oracles for wrec.tasks.inputs: the i.i.d. input streams have the stated law (moments and KS against scipy)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from wrec.tasks import gaussian_input, uniform_input

T = 200_000


@pytest.mark.parametrize("low, high", [(-1.0, 1.0), (2.0, 5.0), (-0.5, -0.25)])
def test_uniform_input_range_and_moments(low, high):
    u = uniform_input(T, low=low, high=high, seed=0) if (low, high) != (-1.0, 1.0) else uniform_input(T, seed=0)
    assert u.shape == (T,) and u.dtype == np.float64
    width = high - low
    assert u.min() >= low and u.max() < high
    assert u.min() < low + 1e-3 * width and u.max() > high - 1e-3 * width  # the whole interval is covered
    # U[low, high]: mean (low+high)/2, variance w²/12, fourth central moment w⁴/80.
    se_mean = width / np.sqrt(12 * T)
    assert abs(u.mean() - (low + high) / 2) < 5 * se_mean
    assert u.var() == pytest.approx(width**2 / 12, rel=0.01)  # SE ≈ 0.27 %
    assert np.mean((u - u.mean()) ** 4) == pytest.approx(width**4 / 80, rel=0.02)
    assert stats.kstest(u, stats.uniform(loc=low, scale=width).cdf).pvalue > 1e-3


@pytest.mark.parametrize("std", [1.0, 2.5])
def test_gaussian_input_moments(std):
    u = gaussian_input(T, std=std, seed=1) if std != 1.0 else gaussian_input(T, seed=1)
    assert u.shape == (T,) and u.dtype == np.float64
    assert abs(u.mean()) < 5 * std / np.sqrt(T)
    assert u.std() == pytest.approx(std, rel=0.01)  # SE ≈ 0.16 %
    assert stats.kurtosis(u, fisher=False) == pytest.approx(3.0, abs=0.05)  # SE ≈ 0.011
    assert abs(stats.skew(u)) < 0.03  # SE ≈ 0.0055
    assert stats.kstest(u, stats.norm(scale=std).cdf).pvalue > 1e-3


@pytest.mark.parametrize("make", [uniform_input, gaussian_input])
def test_seeding(make):
    a, b, c = make(100, seed=5), make(100, seed=5), make(100, seed=6)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    np.testing.assert_array_equal(make(100, seed=np.random.default_rng(5)), a)
    gen = np.random.default_rng(5)
    first, second = make(100, seed=gen), make(100, seed=gen)  # a shared Generator advances
    assert not np.allclose(first, second)


@pytest.mark.parametrize("make", [uniform_input, gaussian_input])
def test_batch_shape_and_independent_rows(make):
    u = make(1000, batch=4, seed=2)
    assert u.shape == (4, 1000)
    corr = np.corrcoef(u)
    off = corr[~np.eye(4, dtype=bool)]
    assert np.max(np.abs(off)) < 0.15  # independent rows: |r| ~ 1/√1000 ≈ 0.03
    assert make(7, batch=1, seed=2).shape == (1, 7)
    assert make(7, seed=2).shape == (7,)


BAD = [
    (lambda: uniform_input(0), ValueError, r"^length must be >= 1"),
    (lambda: uniform_input(-5), ValueError, r"^length must be >= 1"),
    (lambda: uniform_input(10.0), TypeError, r"^length must be an int"),
    (lambda: uniform_input(10, low=1.0, high=1.0), ValueError, r"^high must be > low"),
    (lambda: uniform_input(10, low=2.0, high=1.0), ValueError, r"^high must be > low"),
    (lambda: uniform_input(10, low=np.nan), ValueError, r"^low must be finite"),
    (lambda: uniform_input(10, high=np.inf), ValueError, r"^high must be finite"),
    (lambda: uniform_input(10, batch=0), ValueError, r"^batch must be >= 1"),
    (lambda: uniform_input(10, seed="a"), TypeError, r"^seed must be"),
    (lambda: gaussian_input(0), ValueError, r"^length must be >= 1"),
    (lambda: gaussian_input(10, std=0.0), ValueError, r"^std must be > 0"),
    (lambda: gaussian_input(10, std=-1.0), ValueError, r"^std must be > 0"),
    (lambda: gaussian_input(10, batch=2.0), TypeError, r"^batch must be an int"),
]


@pytest.mark.parametrize("call, exc, match", BAD, ids=[f"{i}:{m}" for i, (_, _, m) in enumerate(BAD)])
def test_bad_input_raises_naming_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
