"""Target enumeration: counts against the closed form and Kubota's published target counts."""

from math import comb

import numpy as np
import pytest

from wrec.capacity import targets


def test_partitions():
    assert targets.partitions(3) == [(3,), (2, 1), (1, 1, 1)]
    assert len(targets.partitions(5)) == 7


@pytest.mark.parametrize(("degree", "max_delay", "expected"),
                         [(1, 2000, 2001), (2, 300, 45_451), (3, 50, 23_426), (4, 30, 46_376), (5, 15, 15_504)])
def test_kubota_target_counts(degree, max_delay, expected):
    sets = targets.delay_sets(degree, max_delay)
    assert sum(len(s) for s in sets) == expected
    assert sum(targets.count(s.parts, max_delay) for s in sets) == expected


def test_degree_three_with_twelve_delays_has_364_targets():
    assert sum(len(s) for s in targets.delay_sets(3, 11)) == 364


def test_targets_are_distinct_with_distinct_delays_and_right_degree():
    for s in targets.delay_sets(4, 6):
        assert np.all(s.degrees.sum(axis=1) == 4)
        for row_deg, row_del in zip(s.degrees, s.delays, strict=True):
            assert len(set(row_del)) == len(row_del)
            assert sorted(row_deg, reverse=True) == list(s.parts)
        keys = {tuple(sorted(zip(d, k, strict=True))) for d, k in zip(s.degrees, s.delays, strict=True)}
        assert len(keys) == len(s)


def test_two_factor_shape_count():
    (s,) = [s for s in targets.delay_sets(2, 9) if s.parts == (1, 1)]
    assert len(s) == comb(10, 2)
    (s,) = [s for s in targets.delay_sets(3, 9) if s.parts == (2, 1)]
    assert len(s) == 10 * 9


def test_build_and_project_agree_with_direct_products():
    rng = np.random.default_rng(0)
    basis = rng.standard_normal((4, 300))
    (s,) = [s for s in targets.delay_sets(3, 5) if s.parts == (2, 1)]
    offset = 7
    Z = targets.build(basis, s, 0, len(s), offset)
    i = 5
    (d0, d1), (k0, k1) = s.degrees[i], s.delays[i]
    t = np.arange(offset, 300)
    np.testing.assert_allclose(Z[:, i], basis[d0, t - k0] * basis[d1, t - k1])
    A = rng.standard_normal((300 - offset, 3))
    B = rng.uniform(0, 1, (300 - offset, 2))
    G, S = targets.project(basis, s.degrees, s.delays, offset, A, B)
    np.testing.assert_allclose(G, Z.T @ A, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(S, (Z**2).T @ B, rtol=1e-12)


def test_max_delays_normalisation_and_errors():
    assert targets.max_delays(3, 10) == {1: 10, 2: 10, 3: 10}
    assert targets.max_delays(None, {3: 12, 1: 100}) == {1: 100, 3: 12}
    with pytest.raises(ValueError, match="max_degree"):
        targets.max_delays(0, 5)
    with pytest.raises(ValueError, match="max_delay"):
        targets.max_delays(3, -1)
    with pytest.raises(ValueError, match=r"max_delay has degree 4 > max_degree = 3"):
        targets.max_delays(3, {4: 2})
    with pytest.raises(ValueError, match="empty"):
        targets.max_delays(None, {})
