"""The capacity profile against the separate calls it bundles, NumPy's correlations and the linear reservoir's
exact memory."""

import numpy as np
import pytest

import wrec
from wrec.capacity import capacity_by_readout, ipc, memory_capacity, profile, theory
from wrec.capacity.theory import linear_memory_curve
from wrec.reservoir import ESN, Linear, run

N, T, WASHOUT = 40, 4000, 300
DELAYS = {1: 30, 2: 6, 3: 6}  # degree 1 has the largest delay: every call uses the same rows t ≥ 30
GRID = [1, 3, 10, 20, 40]


@pytest.fixture(scope="module")
def esn():
    u = np.random.default_rng(0).uniform(-1, 1, T + WASHOUT)
    model = ESN(wrec.weights.gaussian(N, 0.9, seed=1), w_in=wrec.weights.input_weights(N, seed=2), input_scale=0.5)
    return run(model, u, washout=WASHOUT), u[WASHOUT:]


@pytest.fixture(scope="module")
def result(esn):
    X, u = esn
    return profile(X, u, GRID, max_delay=DELAYS, seed=5)


def test_profile_equals_the_separate_calls(esn, result):
    X, u = esn
    np.testing.assert_array_equal(result.order, np.random.default_rng(5).permutation(N))
    alone = capacity_by_readout(X, u, GRID, max_delay=DELAYS, order=result.order).table
    columns = ["L", "degree", "capacity", "raw", "adjusted", "floor", "spurious", "n_targets", "rank"]
    np.testing.assert_allclose(result.table[columns].to_numpy(float), alone[columns].to_numpy(float), rtol=0,
                               atol=1e-12)
    at_n = result.by_degree.loc[N]
    np.testing.assert_allclose(at_n.to_numpy(), ipc(X, u, max_delay=DELAYS).by_degree.to_numpy(), rtol=0, atol=1e-12)
    raw_mc = result.table.query("L == @N and degree == 1")["raw"].item()
    assert raw_mc == pytest.approx(memory_capacity(X, u, max_delay=DELAYS[1], threshold=None).raw_total, abs=1e-12)
    predicted = theory.subsample_prediction(theory.population_spectrum(X, u, DELAYS), GRID).by_degree
    np.testing.assert_allclose(result.table.pivot(index="L", columns="degree", values="theory").to_numpy(),
                               predicted.to_numpy(), rtol=0, atol=1e-12)
    mc = result.table[result.table.degree == 1]
    np.testing.assert_allclose(mc.independent, theory.independent_prediction(X, u, DELAYS[1], GRID), atol=1e-12)
    assert result.table[result.table.degree > 1].independent.isna().all()


def test_summary_is_taken_at_n(result):
    s = result.summary
    table = result.table[result.table.L == N].set_index("degree")
    assert s["L"] == N and s["rank"] == N
    assert s["MC"] == s["C_1"] == table.loc[1, "capacity"]
    assert [s[f"C_{d}"] for d in DELAYS] == table.capacity.tolist()
    mc = result.table[result.table.degree == 1]
    assert s["max|raw-theory|/raw"] == pytest.approx(np.max(np.abs(mc.raw - mc.theory) / mc.raw), rel=1e-15)


def test_correlations_equal_numpy(esn, result):
    X, _ = esn
    R = np.corrcoef(X, rowvar=False)
    squares = np.sum(R * R)
    assert result.mean_r2 == pytest.approx((squares - N) / (N * (N - 1)), abs=1e-12)
    assert result.participation_ratio == pytest.approx(N**2 / squares, abs=1e-12)
    assert result.summary["<r2>"] == result.mean_r2 and result.summary["PR"] == result.participation_ratio


def test_l_half_is_where_memory_falls_to_half_the_readout(esn):
    X, u = esn
    p = profile(X, u, max_delay={1: 30}, seed=6)  # the default log grid 1..N
    grid = p.memory_capacity.index.to_numpy()
    assert grid[0] == 1 and grid[-1] == N and grid.size > 10
    by_hand = next(L for L, mc in p.memory_capacity.items() if mc <= L / 2)
    assert 1 < by_hand < N  # a tanh reservoir turns sublinear inside the grid
    assert p.L_half == by_hand and p.summary["L_half/N"] == by_hand / N


def test_given_order_is_the_columns_as_they_are(esn):
    X, u = esn
    p = profile(X, u, [5, 40], max_delay={1: 10}, order="given", threshold=None)
    np.testing.assert_array_equal(p.order, np.arange(N))
    alone = capacity_by_readout(X, u, [5, 40], max_delay={1: 10}, threshold=None).table
    np.testing.assert_allclose(p.table.raw, alone.raw, rtol=0, atol=1e-12)


def test_linear_reservoir_reaches_its_exact_memory():
    n, K = 30, 240
    W, w_in = wrec.weights.orthogonal(n, 0.9, seed=2), wrec.weights.input_weights(n, seed=3)
    exact = linear_memory_curve(W, w_in, K).sum()
    assert exact == pytest.approx(n, abs=1e-3)
    u = np.random.default_rng(4).uniform(-1, 1, 20_000 + 1000)
    X = run(Linear(W, w_in=w_in), u, washout=1000)
    p = profile(X, u[1000:], [10, n], max_delay={1: K}, threshold=None, seed=0)
    top = p.table[(p.table.L == n) & (p.table.degree == 1)]
    # the bias-corrected total over K + 1 delays at T = 2·10⁴ (as in test_mc's Krylov test)
    assert top.adjusted.item() == pytest.approx(exact, abs=0.1)
    assert top.theory.item() == pytest.approx(top.raw.item(), rel=1e-9)  # the theory is exact at L ≥ r


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        (lambda X, u: (X[:, 0], u), ValueError, "states must be 2-D"),
        (lambda X, u: (np.where(np.arange(N) == 3, np.nan, X), u), ValueError, "non-finite"),
        (lambda X, u: (X.astype(complex), u), TypeError, "must be real"),
        (lambda X, u: (X[:, :1], u), ValueError, "at least 2 columns"),
        (lambda X, u: (X, u[1:]), ValueError, "must be aligned"),
        (lambda X, u: (X, np.where(np.arange(u.size) == 7, np.inf, u)), ValueError, "u has 1 non-finite"),
        (lambda X, u: ([X[:2000], X[2000:]], u), TypeError, "in-memory"),
    ],
)
def test_bad_states_and_inputs_are_rejected(esn, change, error, match):
    X, u = change(*esn)
    with pytest.raises(error, match=match):
        profile(X, u, [5], max_delay={1: 5})


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"readouts": [0, 5]}, ValueError, r"readouts must lie in 1\.\.N = 40"),
        ({"readouts": [5, 41]}, ValueError, r"readouts must lie in 1\.\.N = 40"),
        ({"max_delay": {2: 5}}, ValueError, "must include degree 1"),
        ({"max_delay": -1}, ValueError, "max_delay must be >= 0"),
        ({"order": "sorted"}, ValueError, "order must be 'random', 'given'"),
        ({"order": np.arange(10)}, ValueError, "permutation of all N = 40"),
        ({"order": "random", "seed": "a"}, TypeError, "seed must be an int"),
        ({"threshold": 0.5}, TypeError, "threshold must be"),
        ({"basis": "fourier"}, ValueError, "basis"),
    ],
)
def test_bad_arguments_are_rejected(esn, kwargs, error, match):
    X, u = esn
    with pytest.raises(error, match=match):
        profile(X, u, **{"readouts": [5], "max_delay": {1: 5}, **kwargs})
