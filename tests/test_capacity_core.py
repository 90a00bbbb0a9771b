"""The capacity engine against float64 least squares, invariances, bounds and the null distribution."""

import numpy as np
import pytest

from wrec.capacity import capacities, decompose
from wrec.capacity.core import kept_rank


@pytest.fixture(scope="module")
def states_and_targets():
    rng = np.random.default_rng(0)
    T, N = 3000, 20
    X = rng.standard_normal((T, N)) @ rng.standard_normal((N, N)) + 5.0  # correlated, non-centred
    Z = np.column_stack([X[:, :3] @ rng.standard_normal(3) + rng.standard_normal(T) for _ in range(6)])
    Z = np.column_stack([Z, np.tanh(X[:, 0]) * 3 + 100.0, rng.standard_normal(T)])
    return X, Z


def r_squared_lstsq(X, z):
    A = np.column_stack([np.ones(len(z)), X])
    coef, *_ = np.linalg.lstsq(A, z, rcond=None)
    resid = z - A @ coef
    return 1.0 - resid @ resid / np.sum((z - z.mean()) ** 2)


def test_equals_least_squares_r2_with_intercept(states_and_targets):
    X, Z = states_and_targets
    got = capacities(X, Z).values
    want = [r_squared_lstsq(X, Z[:, j]) for j in range(Z.shape[1])]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)


def test_invariant_under_invertible_map_permutation_and_duplication(states_and_targets):
    X, Z = states_and_targets
    rng = np.random.default_rng(1)
    base = capacities(X, Z).values
    M = rng.standard_normal((X.shape[1], X.shape[1])) + 3 * np.eye(X.shape[1])
    for Y in (X @ M, X[:, rng.permutation(X.shape[1])], np.column_stack([X, X[:, 4]])):
        res = capacities(Y, Z)
        assert res.rank == X.shape[1]
        np.testing.assert_allclose(res.values, base, atol=1e-8)


def test_bounds_and_sum_over_a_complete_orthogonal_target_set_is_the_rank():
    rng = np.random.default_rng(2)
    T, N = 400, 7
    X = rng.standard_normal((T, N))
    Q, _ = np.linalg.qr(np.column_stack([np.ones(T), rng.standard_normal((T, T - 1))]))
    res = capacities(X, Q[:, 1:])  # T-1 orthonormal directions orthogonal to the constant
    assert np.all((res.values >= 0) & (res.values <= 1))
    assert res.values.sum() == pytest.approx(N, abs=1e-9)


def test_null_targets_average_the_floor_r_over_t_minus_1():
    rng = np.random.default_rng(3)
    T, N = 2000, 30
    X = rng.standard_normal((T, N))
    values = capacities(X, rng.standard_normal((T, 500))).values
    floor = N / (T - 1)
    se = values.std(ddof=1) / np.sqrt(values.size)
    assert abs(values.mean() - floor) < 3 * se
    assert decompose(X).floor == pytest.approx(floor)


def test_adjusted_capacity_is_unbiased_for_null_targets():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((1000, 40))
    dec = decompose(X)
    values = capacities(X, rng.standard_normal((1000, 400))).values
    adj = dec.adjusted(values)
    assert abs(adj.mean()) < 3 * adj.std(ddof=1) / np.sqrt(adj.size)


def test_rank_rules_on_rank_deficient_states():
    rng = np.random.default_rng(5)
    B = rng.standard_normal((2000, 5))
    X = np.column_stack([B, B @ rng.standard_normal((5, 5))])  # rank 5 in 10 columns
    assert decompose(X).rank == 5
    assert decompose(X, rank="numpy").rank == 5
    assert decompose(X, rank=1e-3).rank == 5
    s = np.array([1.0, 2e-7, 1e-8])
    assert kept_rank(s, 50, "kubota") == 2  # σ_i² > σ_1²·L·ε = 1.1e-14: 4e-14 kept, 1e-16 dropped
    assert kept_rank(s, 50, "numpy") == 3  # σ_i > σ_1·max(T, L)·ε = 1.1e-14: both kept
    with pytest.raises(ValueError, match="rank must be"):
        kept_rank(s, 50, "svd")


@pytest.mark.parametrize(
    ("states", "targets", "match"),
    [
        (np.zeros(100), np.zeros(100), "states must be 2-D"),
        (np.full((100, 2), np.nan), np.zeros(100), "states has .* non-finite"),
        (np.random.default_rng(0).standard_normal((100, 2)), np.zeros(90), "targets has 90 rows but states has 100"),
        (np.random.default_rng(0).standard_normal((5, 10)), np.arange(5.0), "too short"),
        (np.random.default_rng(0).standard_normal((100, 2)), np.ones(100), "zero variance"),
        (np.random.default_rng(0).standard_normal((100, 2)), np.array(["a"] * 100), "targets must hold real numbers"),
    ],
)
def test_bad_input(states, targets, match):
    with pytest.raises((ValueError, TypeError), match=match):
        capacities(states, targets)
