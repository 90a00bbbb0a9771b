"""ReservoirPy nodes and models in wrec: ``state_matrix`` takes them (states from their ``run``), and wrec's memory
capacity of a ReservoirPy reservoir is ReservoirPy's own ``observables.memory_capacity`` where both define it alike.

Oracles: wrec's ``LeakyESN`` on the same W, Win, bias and leak (ReservoirPy's update is
x_t = (1 − lr) x_{t−1} + lr f(W x_{t−1} + Win u_t + bias), wrec's is x_t = (1 − a) x_{t−1} + a tanh(s·W x_{t−1} +
σ w_in u_t + b): the same with Win = σ w_in, lr = a, s = 1), a NumPy loop for a deep model, and ReservoirPy's
``memory_capacity``.
"""

import numpy as np
import pytest

from wrec import reservoir, weights
from wrec.capacity import memory_capacity
from wrec.states import state_matrix

rpy = pytest.importorskip("reservoirpy")
from reservoirpy.nodes import Reservoir, Ridge  # noqa: E402
from reservoirpy.observables import memory_capacity as rpy_memory_capacity  # noqa: E402

N, SIGMA, LEAK = 40, 0.5, 0.3


def uniform(T, seed=0, high=1.0):
    return np.random.default_rng(seed).uniform(-high, high, T)


def same_reservoir(leak=LEAK, bias=True):
    """(ReservoirPy node, wrec LeakyESN) with one W, w_in, bias and leak."""
    W = weights.gaussian(N, spectral_radius=0.9, seed=1)
    w_in = weights.input_weights(N, seed=2)
    b = 0.1 * weights.input_weights(N, seed=3) if bias else 0.0
    node = Reservoir(W=W, Win=SIGMA * w_in[:, None], bias=b, lr=leak)
    return node, reservoir.LeakyESN(W, w_in=w_in, input_scale=SIGMA, bias=b, leak=leak)


@pytest.mark.parametrize("leak", [1.0, LEAK])
def test_a_reservoirpy_reservoir_has_the_states_of_wrecs_leaky_esn(leak):
    node, esn = same_reservoir(leak)
    u = uniform(3000)
    X = state_matrix(node, u, washout=100)
    assert X.shape == (2900, N) and X.dtype == np.float64
    np.testing.assert_allclose(X, reservoir.run(esn, u, washout=100), rtol=0, atol=1e-12)


def test_the_users_node_is_unchanged_and_the_run_starts_from_rest():
    node, esn = same_reservoir()
    u = uniform(500)
    node.run(uniform(50, seed=9)[:, None])  # the node has moved away from rest
    before = node.state["out"].copy()
    X = state_matrix(node, u)
    np.testing.assert_array_equal(node.state["out"], before)
    np.testing.assert_allclose(X, reservoir.run(esn, u), rtol=0, atol=1e-12)


def test_an_uninitialised_node_stays_so_and_its_states_are_those_its_own_first_run_gives():
    node = Reservoir(30, sr=0.9, lr=0.5, seed=4)
    u = uniform(400)
    X = state_matrix(node, u, washout=20)
    assert not node.initialized
    np.testing.assert_array_equal(X, node.run(u[:, None])[20:])  # the copy drew the weights the node draws


def test_a_deep_model_gives_its_last_reservoirs_states():
    W1, Win1 = weights.gaussian(20, spectral_radius=0.8, seed=5), weights.input_weights(20, n_inputs=1, seed=6)
    W2, Win2 = weights.gaussian(10, spectral_radius=0.8, seed=7), weights.input_weights(10, n_inputs=20, seed=8)
    u = uniform(300)
    X = state_matrix(Reservoir(W=W1, Win=Win1) >> Reservoir(W=W2, Win=0.3 * Win2, lr=0.6), u)
    x1, x2, expect = np.zeros(20), np.zeros(10), np.empty((300, 10))
    for t in range(300):  # tanh reservoirs, r1 feeding r2 within the step
        x1 = np.tanh(W1 @ x1 + Win1 @ u[t:t + 1])
        x2 = 0.4 * x2 + 0.6 * np.tanh(W2 @ x2 + 0.3 * Win2 @ x1)
        expect[t] = x2
    np.testing.assert_allclose(X, expect, rtol=0, atol=1e-12)


def test_a_model_with_several_outputs_gives_them_side_by_side_in_the_models_order():
    r1 = Reservoir(6, seed=1, name="a")
    r2, r3 = Reservoir(4, seed=2, name="b"), Reservoir(3, seed=3, name="c")
    model = r1 >> [r2, r3]
    u = uniform(50)
    X = state_matrix(model, u, washout=5)
    out = model.run(u[:, None])
    np.testing.assert_array_equal(X, np.hstack([out["b"], out["c"]])[5:])


def test_a_model_ending_in_a_readout_is_refused():
    node, _ = same_reservoir()
    with pytest.raises(ValueError, match=r"outputs a trained readout \(Ridge\), not states"):
        state_matrix(node >> Ridge(ridge=1e-6), uniform(100))


def test_w_in_maps_u_onto_a_node_with_several_inputs():
    W = weights.gaussian(N, spectral_radius=0.9, seed=1)
    Win = weights.input_weights(N, n_inputs=3, seed=2)
    node, w = Reservoir(W=W, Win=Win), np.array([1.0, -0.5, 2.0])
    u = uniform(200)
    np.testing.assert_array_equal(state_matrix(node, u, w_in=w), Reservoir(W=W, Win=Win).run(u[:, None] * w))
    with pytest.raises(ValueError, match=r"K = 3 input channels: pass w_in of shape \(3,\)"):
        state_matrix(node, u)
    with pytest.raises(ValueError, match="layers does not apply to a ReservoirPy node or model"):
        state_matrix(node, u, layers="all", w_in=w)


def test_a_reservoir_that_blows_up_is_an_error_naming_the_step():
    node = Reservoir(W=2.0 * np.eye(5), Win=np.ones((5, 1)), activation="identity")
    with pytest.raises(ValueError, match=r"blew up: its state became non-finite by step 10\d\d of 2000"):
        state_matrix(node, np.ones(2000))


def test_memory_capacity_equals_reservoirpys_where_both_define_it_alike():
    """wrec's memory curve of a ReservoirPy reservoir against ``reservoirpy.observables.memory_capacity``.

    Where the definitions agree, the numbers agree: both fit a linear readout with an intercept (ReservoirPy's
    Ridge centres the states; wrec projects the centred states) and measure the squared correlation of u_{t−k}
    with it (Jaeger 2001). So ReservoirPy's curve is reproduced to 1e-8 from wrec's ``state_matrix`` of the node by
    ReservoirPy's own protocol. Where they differ, the two curves differ by sampling error only:

    * delays: ReservoirPy sums k = 1..k_max; wrec's curve starts at k = 0 (the current input), so the comparison
      uses ``total_from(1)``;
    * rows: ReservoirPy fits on the first 80 % of the series (after a k_max-step warmup) and scores on the last 20 %
      (held out, so biased low by about r/T_train per delay); wrec fits and scores on every row t >= K (in-sample)
      and removes its finite-sample floor e_k ≈ r/(T − 1) (the bias-corrected (m̂_k − e_k)/(1 − e_k));
    * ridge: ReservoirPy's Ridge(ridge) penalises the readout (1e-10 here: none to speak of); wrec's is least
      squares on the rank-r states;
    * thresholds: wrec zeroes delays below a shuffle-surrogate threshold (``threshold=None`` keeps them);
    * input: ReservoirPy draws U[−0.8, 0.8] of length 10 k_max unless given ``series``; both get the same series.

    Tolerance: the held-out estimate of one delay has s.d. ≈ √(4R²(1 − R²)²/T_test) ≤ 0.77/√T_test (≈ 0.012 at
    T_test = 4000); each delay within 4 s.d. of wrec's, and the sums within 1 %.
    """
    K, T = 100, 20_000
    node, _ = same_reservoir(leak=1.0, bias=False)
    u = uniform(T, seed=3, high=0.8)
    curve = rpy_memory_capacity(node >> Ridge(ridge=1e-10), k_max=K, series=u[:, None], as_list=True)
    assert curve.shape == (K,)

    # ReservoirPy's protocol on wrec's states: its series rows are (u_t, u_{t−1}, .., u_{t−K}) for t >= K, its
    # reservoir runs from rest on u[K:], fits after a K-step warmup, continues onto the last 20 % and scores there
    X = state_matrix(node, u[K:])  # X[i]: the state after u[K + i]
    lags = np.stack([u[K - k:T - k] for k in range(K + 1)], 1)  # lags[i, k] = u_{K+i−k}
    test = round(T * 0.2)
    train = slice(K, X.shape[0] - test)
    Xc, Yc = X[train] - X[train].mean(0), lags[train, 1:] - lags[train, 1:].mean(0)
    w = np.linalg.solve(Xc.T @ Xc + 1e-10 * np.eye(N), Xc.T @ Yc)
    pred = X[-test:] @ w
    ours_held_out = [np.corrcoef(pred[:, k], lags[-test:, k + 1])[0, 1] ** 2 for k in range(K)]
    np.testing.assert_allclose(ours_held_out, curve, rtol=0, atol=1e-8)

    # wrec's own definition on the whole series
    states = state_matrix(node, u)
    raw = memory_capacity(states, u, K, threshold=None)
    adjusted = (raw.raw - raw.null) / (1 - raw.null)
    sd = np.sqrt(4 * curve * (1 - curve) ** 2 / test) + 1 / test  # + 1/T_test: a delay with no memory
    assert np.all(np.abs(adjusted[1:] - curve) <= 4 * sd)
    mc = memory_capacity(states, u, K)  # the default, thresholded
    assert mc.total_from(1) == pytest.approx(curve.sum(), rel=0.01)
    assert curve.sum() > 10  # a reservoir with memory to compare
