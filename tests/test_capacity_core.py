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


@pytest.fixture(scope="module")
def esn_states():
    import wrec

    W = wrec.weights.gaussian(50, spectral_radius=0.9, seed=0)
    u = wrec.tasks.uniform_input(6_000, seed=1)
    return wrec.reservoir.run(wrec.reservoir.ESN(W, input_scale=0.1, seed=2), u, washout=1000), u[1000:]


def test_zero_and_constant_states_have_rank_0_and_no_capacity():
    from wrec.capacity import capacity_by_readout, memory_capacity

    u = np.random.default_rng(0).uniform(-1, 1, 2000)
    for X in (np.zeros((2000, 20)), np.full((2000, 20), 3.7), np.outer(np.ones(2000), np.linspace(-1e8, 1e8, 20))):
        mc = memory_capacity(X, u, max_delay=10, threshold=None)
        assert mc.rank == 0 and mc.raw_total == 0.0 and mc.total == 0.0
        prof = capacity_by_readout(X, u, [1, 5, 20], max_degree=1, max_delay=10, threshold=None)
        assert prof.rank.tolist() == [0, 0, 0]
        assert prof.table["raw"].tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("scale", [1e-8, 1e-4, 1e4, 1e8])
def test_capacities_do_not_depend_on_a_column_scale(esn_states, scale):
    from wrec.capacity import capacity_by_readout, ipc, memory_capacity

    X, u = esn_states
    Y = X.copy()
    Y[:, 7] *= scale
    a, b = memory_capacity(X, u, max_delay=60, threshold=None), memory_capacity(Y, u, max_delay=60, threshold=None)
    assert a.rank == b.rank == 50
    np.testing.assert_allclose(b.raw, a.raw, rtol=0, atol=1e-8)
    delays = {1: 30, 2: 6, 3: 6}
    np.testing.assert_allclose(ipc(Y, u, max_delay=delays).table.capacity, ipc(X, u, max_delay=delays).table.capacity,
                               rtol=0, atol=1e-8)
    Ls = [1, 7, 8, 30, 50]
    pa = capacity_by_readout(X, u, Ls, max_degree=1, max_delay=60, threshold=None)
    pb = capacity_by_readout(Y, u, Ls, max_degree=1, max_delay=60, threshold=None)
    np.testing.assert_allclose(pb.table["raw"], pa.table["raw"], rtol=0, atol=1e-8)
    assert pb.rank.tolist() == pa.rank.tolist() == Ls


def test_growing_states_are_an_error_that_names_the_echo_state_property():
    import wrec
    from wrec.capacity import memory_capacity

    W = wrec.weights.gaussian(50, spectral_radius=1.02, seed=0)
    u = wrec.tasks.uniform_input(5000, seed=1)
    X = wrec.reservoir.run(wrec.reservoir.Linear(W, seed=2), u, washout=1000)
    assert np.all(np.isfinite(X)) and np.abs(X).max() > 1e20  # exploding, not yet overflowed
    with pytest.raises(ValueError, match=r"grow without bound.*echo-state property"):
        memory_capacity(X, u[1000:], max_delay=50)
    stable = wrec.reservoir.run(wrec.reservoir.Linear(W / 1.02 * 0.95, seed=2), u, washout=1000)
    assert memory_capacity(stable, u[1000:], max_delay=50).total > 5
