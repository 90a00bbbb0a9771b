"""Memory capacity against analytic oracles and ReservoirPy (held-out cross-check)."""

import numpy as np
import pytest

import wrec
from wrec.capacity import memory_capacity
from wrec.capacity.theory import linear_memory_curve, scalar_memory_curve
from wrec.reservoir import Linear, run


def delay_line_states(n, T, seed=0):
    u = np.random.default_rng(seed).uniform(-1, 1, T)
    e1 = np.eye(n)[0]
    return run(Linear(wrec.weights.delay_line(n), w_in=e1), u), u


def test_delay_line_remembers_exactly_its_length():
    N, T = 30, 5000
    X, u = delay_line_states(N, T)
    np.testing.assert_array_equal(X[100, :5], u[100:95:-1])  # the state is the last N inputs
    raw = memory_capacity(X, u, max_delay=2 * N - 1, threshold=None)
    np.testing.assert_allclose(raw.per_delay[:N], 1.0, atol=1e-9)
    tail = raw.per_delay[N:].mean()
    assert 0.5 * N / T < tail < 1.5 * N / T  # the finite-sample floor r/(T−1), nothing more
    mc = memory_capacity(X, u, max_delay=2 * N - 1)
    assert mc.total == pytest.approx(N, abs=0.02)
    assert mc.rank == N


def test_scalar_reservoir_matches_the_closed_form():
    a, T = 0.8, 100_000
    u = np.random.default_rng(1).uniform(-1, 1, T + 100)
    X = run(Linear(np.array([[a]]), w_in=np.array([1.0])), u, washout=100)
    mc = memory_capacity(X, u[100:], max_delay=30, threshold=None)
    np.testing.assert_allclose(mc.per_delay, scalar_memory_curve(a, 30), atol=0.01)
    # the per-delay sampling errors (sd ≈ 2·10⁻³ at T = 10⁵) are correlated across k, so the total is looser
    assert mc.raw_total == pytest.approx(1.0, abs=0.03)


@pytest.mark.parametrize("kind", ["orthogonal", "ring"])
def test_linear_reservoir_converges_to_the_krylov_leverage_scores(kind):
    N, rho, K = 50, 0.9, 300
    W = wrec.weights.orthogonal(N, rho, seed=2) if kind == "orthogonal" else wrec.weights.ring(N, rho)
    w_in = wrec.weights.input_weights(N, seed=3)
    exact = linear_memory_curve(W, w_in, K)
    assert exact.sum() == pytest.approx(N, abs=1e-6)  # Σ_k m_k = rank K (delays beyond 6N carry < 1e-6)
    u = np.random.default_rng(4).uniform(-1, 1, 100_000 + 1000)
    X = run(Linear(W, w_in=w_in), u, washout=1000)
    mc = memory_capacity(X, u[1000:], max_delay=K, threshold=None)
    assert np.max(np.abs(mc.per_delay - exact)) < 0.01
    short = memory_capacity(X[:20_000], u[1000:21_000], max_delay=K, threshold=None)
    assert short.adjusted_total == pytest.approx(N, abs=0.1)


def test_linear_memory_curve_of_one_node_is_the_scalar_curve():
    np.testing.assert_allclose(linear_memory_curve(np.array([[0.7]]), np.array([2.0]), 20),
                               scalar_memory_curve(0.7, 20), atol=1e-12)


def test_thresholds_and_reports():
    X, u = delay_line_states(10, 3000)
    mc = memory_capacity(X, u, max_delay=40)
    assert mc.kept[:10].all() and mc.kept.sum() <= 12
    assert 0 < mc.threshold < 0.05
    assert mc.floor == pytest.approx(41 * 10 / (mc.n_samples - 1))
    assert mc.n_samples == 3000 - 40
    chi = memory_capacity(X, u, max_delay=40, threshold=wrec.capacity.ChiSquare())
    assert chi.total == pytest.approx(10.0, abs=0.05)


def test_reservoirpy_memory_capacity_is_a_lower_bound_within_ten_percent():
    pytest.importorskip("reservoirpy")
    from reservoirpy.nodes import Reservoir, Ridge
    from reservoirpy.observables import memory_capacity as rpy_memory_capacity

    k_max = 100
    held_out = rpy_memory_capacity(Reservoir(100, sr=1, seed=1) >> Ridge(ridge=1e-4), k_max=k_max, seed=1)
    u = np.random.default_rng(0).uniform(-0.8, 0.8, 21_000)
    X = Reservoir(100, sr=1, seed=1).run(u[:, None])[1000:]
    mc = memory_capacity(X, u[1000:], max_delay=k_max, threshold=None)
    ours = (1 - (1 - mc.raw[1:]) * (mc.n_samples - 1) / (mc.n_samples - 1 - mc.rank)).sum()  # k = 1..k_max
    assert 0.9 * ours <= held_out <= ours


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"states": np.zeros((100, 3)), "u": np.zeros(90)}, ValueError, "aligned"),
        ({"states": np.zeros((100, 3)), "u": np.zeros(100), "max_delay": 100}, ValueError, "max_delay must be smaller"),
        ({"states": np.zeros((100, 3)), "u": np.zeros(100), "max_delay": -1}, ValueError, "max_delay must be >= 0"),
        ({"states": np.zeros((100, 3)), "u": np.zeros(100), "max_delay": 5}, ValueError, "u is constant"),
        ({"states": np.zeros((100, 3)), "u": np.full(100, np.inf)}, ValueError, "u has 100 non-finite"),
        ({"states": np.zeros(100), "u": np.arange(100.0)}, ValueError, "states must be 2-D"),
        ({"states": np.zeros((100, 3)), "u": np.arange(100.0), "max_delay": 5, "threshold": 0.1}, TypeError,
         "threshold must be"),
    ],
)
def test_bad_input(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        memory_capacity(**kwargs)


def test_readout_selects_neurons():
    X, u = delay_line_states(10, 2000)
    assert memory_capacity(X, u, max_delay=20, readout=4, threshold=None).per_delay[:4] == pytest.approx(1.0)
    picked = memory_capacity(X, u, max_delay=20, readout=np.array([0, 5]), threshold=None)
    assert picked.per_delay[[0, 5]] == pytest.approx(1.0) and picked.rank == 2
    with pytest.raises(ValueError, match="readout"):
        memory_capacity(X, u, max_delay=20, readout=11)


def test_total_from_gives_the_sum_from_a_later_first_delay():
    X, u = delay_line_states(10, 3000)
    mc = memory_capacity(X, u, max_delay=40)
    assert mc.total_from(0) == mc.total
    assert mc.total_from(1) == pytest.approx(mc.total - mc.per_delay[0])
    assert mc.total_from(1) == pytest.approx(9.0, abs=0.05)  # ReservoirPy's convention: k = 1..K
    with pytest.raises(ValueError, match="first_delay must be <= 40"):
        mc.total_from(41)


def test_kept_delays_count_with_their_bias_corrected_capacity():
    X, u = delay_line_states(10, 3000)
    noisy = X[:, :5] + 0.3 * np.random.default_rng(1).standard_normal((3000, 5))
    mc = memory_capacity(noisy, u, max_delay=40)
    assert mc.kept[:5].all()
    k = mc.kept
    np.testing.assert_allclose(mc.per_delay[k], (mc.raw[k] - mc.null[k]) / (1 - mc.null[k]), rtol=1e-12)
    np.testing.assert_array_less(mc.per_delay[k], mc.raw[k])  # the floor is removed, never added
    assert np.all(mc.per_delay[~k] == 0.0)
    assert mc.null == pytest.approx(np.full(41, 5 / (mc.n_samples - 1)), rel=0.2)  # ≈ r/(T−1) per delay
