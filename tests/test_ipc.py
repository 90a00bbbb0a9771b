"""IPC against oracles: Kubota et al.'s published ESN decomposition (Phys. Rev. Research 2021), the one-node ESN,
parity, a polynomial-feature "reservoir", and the delay line."""

import numpy as np
import pytest

import wrec
from wrec.capacity import ChiSquare, ipc
from wrec.capacity.basis import orthonormal
from wrec.experiments.ipc_profile import PUBLISHED, kubota_input, kubota_reservoir
from wrec.reservoir import ESN, Linear, run


@pytest.fixture(scope="module")
def kubota():
    W, w_in = kubota_reservoir(50, seed=0)
    return W, w_in, kubota_input(110_000, seed=0)


def kubota_ipc(kubota, rho, max_delay, standardize=False):
    """Kubota's convention: the rank rule on the states as they are (``standardize=False``)."""
    W, w_in, u = kubota
    X = run(ESN(W, w_in=w_in, input_scale=0.1, recurrent_scale=rho), u, washout=10_000)
    return ipc(X, u[10_000:], max_delay=max_delay, standardize=standardize)


@pytest.mark.slow
def test_kubota_rho_0_1_total_equals_rank_and_published_values(kubota):
    res = kubota_ipc(kubota, 0.1, {1: 60, 2: 20, 3: 20})
    c1, c3, _, rank = PUBLISHED[0.1]
    assert res.rank == rank == 16
    assert res.total == pytest.approx(16.0, abs=0.1)
    assert res.by_degree[1] == pytest.approx(c1, abs=0.15)
    assert res.by_degree[3] == pytest.approx(c3, abs=0.6)
    assert res.by_degree[2] < 0.05
    assert res.spurious < 0.01 and not res.warnings


@pytest.mark.slow
def test_kubota_rho_0_1_standardised_states_resolve_more_directions_and_fill_them(kubota):
    # Kubota's rule keeps σ_i > 10⁻⁷·σ_1 on the raw states; at ρ = 0.1 the neurons' amplitudes span 10³, and
    # with each neuron scaled to unit norm 7 more directions are resolved. They carry real capacity: the total
    # is still the rank.
    res = kubota_ipc(kubota, 0.1, {1: 60, 2: 20, 3: 20}, standardize=True)
    assert res.rank == 23
    assert res.total == pytest.approx(23.0, abs=0.1)


@pytest.mark.slow
def test_kubota_contractive_total_is_the_rank_and_chaotic_total_collapses(kubota):
    res = kubota_ipc(kubota, 0.9, {1: 400, 2: 20, 3: 40})
    assert res.rank == 50
    assert 0.98 <= res.total / res.rank <= 1.03
    assert res.by_degree[1] == pytest.approx(PUBLISHED[0.9][0], abs=0.15)
    chaotic = kubota_ipc(kubota, 1.1, {1: 400, 2: 20, 3: 20})
    assert chaotic.rank == 50
    assert chaotic.total / chaotic.rank < 0.3
    assert chaotic.by_degree[1] == pytest.approx(11.30, abs=0.3)  # our probe at T = 10⁵ (published 12.07 at 10⁶)


@pytest.mark.slow
@pytest.mark.parametrize(("basis", "total", "linear"), [("hermite", 0.9965, 0.963), ("gram_schmidt", 0.9962, 0.981)])
def test_one_node_esn(basis, total, linear):
    T, w = 100_000, 1000
    rng = np.random.default_rng(0)
    u = rng.standard_normal(T + w) if basis == "hermite" else rng.uniform(-1, 1, T + w)
    X = run(ESN(np.array([[0.9]]), w_in=np.array([1.0]), input_scale=0.3), u, washout=w)
    res = ipc(X, u[w:], max_delay={1: 40, 2: 10, 3: 15, 4: 6, 5: 8}, basis=basis)
    assert res.rank == 1
    assert res.total == pytest.approx(total, abs=0.01)
    assert res.by_degree[1] == pytest.approx(linear, abs=0.01)


@pytest.fixture(scope="module")
def small_esn():
    W = wrec.weights.gaussian(50, spectral_radius=0.8, seed=0)
    u = wrec.tasks.uniform_input(21_000, seed=1)
    return W, u


def test_parity_no_even_capacity_without_bias_and_some_with_bias(small_esn):
    W, u = small_esn
    odd = ipc(run(ESN(W, input_scale=0.5, seed=2), u, washout=1000), u[1000:], max_delay={1: 30, 2: 10})
    assert odd.by_degree[2] < 0.05
    biased = ipc(run(ESN(W, input_scale=0.5, bias=0.2, seed=2), u, washout=1000), u[1000:], max_delay={1: 30, 2: 10})
    assert biased.by_degree[2] > 1.0


def test_polynomial_feature_states_have_exactly_their_targets():
    T = 6000
    u = np.random.default_rng(5).uniform(-1, 1, T)
    P = orthonormal(u, 3, "legendre")
    lag = lambda d, k: np.concatenate([np.zeros(k), P[d, : T - k]])  # noqa: E731
    X = np.column_stack([lag(1, 0), lag(2, 3), lag(1, 1) * lag(1, 4), lag(2, 0) * lag(1, 2)])
    res = ipc(X, u, max_degree=3, max_delay=5)
    t = res.table
    chosen = {(1, "1", "0"), (2, "2", "3"), (2, "1,1", "1,4"), (3, "2,1", "0,2")}
    is_chosen = np.array([(d, g, k) in chosen for d, g, k in zip(t.degree, t.degrees, t.delays, strict=True)])
    assert is_chosen.sum() == 4
    np.testing.assert_allclose(t.capacity[is_chosen], 1.0, atol=1e-9)
    # the others are nulls: at the floor r/(T−1) on average; a surrogate threshold (max of 200 shuffles × 1.2)
    # lets a heavy-tailed null through now and then, so the bound on their thresholded sum is the floor's scale
    others = t.capacity[~is_chosen]
    floor = res.rank / (res.n_samples - 1)
    assert others.mean() < 2 * floor
    assert t.capacity.where(t.kept, 0)[~is_chosen].sum() < 0.01
    assert res.total == pytest.approx(4.0, abs=0.01)
    assert res.rank == 4


def test_delay_line_capacity_is_all_linear():
    N, T = 20, 8000
    u = np.random.default_rng(6).uniform(-1, 1, T)
    X = run(Linear(wrec.weights.delay_line(N), w_in=np.eye(N)[0]), u)
    res = ipc(X, u, max_delay={1: 30, 2: 25, 3: 12})
    assert res.by_degree[1] == pytest.approx(N, abs=1e-6)
    assert res.by_degree[2] < 0.05 and res.by_degree[3] < 0.05


def test_result_bookkeeping(small_esn):
    W, u = small_esn
    X = run(ESN(W, input_scale=0.5, seed=2), u[:5000], washout=500)
    res = ipc(X, u[500:5000], max_degree=2, max_delay=8, threshold=ChiSquare())
    t = res.table
    assert len(t) == 9 + (9 + 36)
    assert set(t.columns) >= {"degree", "parts", "degrees", "delays", "capacity", "threshold", "kept", "adjusted"}
    assert ((t.capacity >= 0) & (t.capacity <= 1)).all()
    np.testing.assert_allclose(res.by_degree.to_numpy(), t.adjusted.where(t.kept, 0).groupby(t.degree).sum())
    np.testing.assert_allclose(res.summary["thresholded"], t.capacity.where(t.kept, 0).groupby(t.degree).sum())
    np.testing.assert_allclose(res.summary["raw"].to_numpy(), t.groupby("degree").capacity.sum())
    np.testing.assert_allclose(t.adjusted, (t.capacity - t.null) / (1 - t.null))
    assert (t.kept == (t.capacity > t.threshold * t.null * (res.n_samples - 1) / res.rank)).all()
    assert res.summary["floor"].tolist() == pytest.approx([9 * 50 / (4500 - 8 - 1), 45 * 50 / (4500 - 8 - 1)])
    assert res.n_samples == 4500 - 8
    assert res.total <= res.rank + 1e-9
    raw = ipc(X, u[500:5000], max_degree=2, max_delay=8, threshold=None)
    assert raw.total == pytest.approx(raw.summary["raw"].sum())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_degree": 0}, "max_degree must be >= 1"),
        ({"max_delay": 2000}, "max_delay must be smaller than T"),
        ({"basis": "laguerre"}, "basis must be one of"),
        ({"u_scale": 2.0}, r"u must lie in \[-1, 1\]"),
    ],
)
def test_bad_input(kwargs, match):
    rng = np.random.default_rng(0)
    X, u = rng.standard_normal((1000, 5)), rng.uniform(-1, 1, 1000) * kwargs.pop("u_scale", 1.0)
    with pytest.raises(ValueError, match=match):
        ipc(X, u, **{"max_delay": 5, **kwargs})


def test_memory_stays_bounded_for_many_long_targets():
    import tracemalloc

    rng = np.random.default_rng(7)
    T = 20_000
    X, u = rng.standard_normal((T, 20)), rng.uniform(-1, 1, T)
    tracemalloc.start()
    res = ipc(X, u, max_degree=3, max_delay=30, threshold=None)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    n_targets = len(res.table)
    full = 8 * T * n_targets  # bytes of the whole target matrix
    assert n_targets == 31 + (31 + 465) + (31 + 930 + 4495)
    assert peak < full / 8, (peak, full)


def null_states(T, N, seed):
    """Smooth states independent of the input (a random walk through tanh): every target is a null."""
    steps = np.random.default_rng(seed).standard_normal((T, N))
    return np.tanh(0.05 * np.cumsum(steps, axis=0))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("T", "max_delay", "n_targets"),
    [
        (1_000, {1: 99}, 100),
        (1_000, {1: 180, 2: 180, 3: 180}, 1_021_383),
        (10_000, {1: 445, 2: 445}, 100_127),
        (100_000, {1: 40, 2: 40}, 902),
        (1_000_000, {1: 99}, 100),
    ],
)
def test_null_states_have_a_total_below_the_spurious_bound(T, max_delay, n_targets):
    u = np.random.default_rng(T).uniform(-1, 1, T)
    res = ipc(null_states(T, 10, seed=1), u, max_delay=max_delay)
    assert len(res.table) == n_targets
    assert res.total < 0.5
    assert res.spurious <= 0.1 and not res.warnings


@pytest.mark.slow
@pytest.mark.parametrize(("n", "T", "max_delay", "threshold"),
                         [(50, 5_000, 40, None), (50, 5_000, 40, ChiSquare()), (200, 19_000, 100, None)])
def test_esn_total_does_not_exceed_the_rank(n, T, max_delay, threshold):
    # Before the bias correction and the family-wise bound: 52.05 (54.6 with ChiSquare) for rank 50 and 228.5 for
    # rank 200 (the README's example), from the floor r/T that each of thousands of kept targets carried.
    W = wrec.weights.gaussian(n, spectral_radius=0.9, seed=0)
    u = wrec.tasks.uniform_input(T + 1000, seed=1)
    X = run(ESN(W, input_scale=0.1, seed=2), u, washout=1000)
    res = ipc(X, u[1000:], max_degree=3, max_delay=max_delay, **({} if threshold is None else {"threshold": threshold}))
    assert res.rank == n
    assert res.total <= res.rank
    assert res.summary["thresholded"].sum() > res.rank  # the raw sum of the kept targets still overshoots
    assert not res.warnings


def test_a_total_above_the_rank_warns_with_what_to_change():
    from wrec.capacity import CapacityWarning, Surrogate

    W = wrec.weights.gaussian(50, spectral_radius=0.9, seed=0)
    u = wrec.tasks.uniform_input(3_000, seed=1)
    X = run(ESN(W, input_scale=0.1, seed=2), u, washout=1000)
    # no family-wise bound and a lax per-shape threshold: the 13 000 degree-3 targets' chance capacities pass
    lax = Surrogate(count=20, scale=0.5, max_spurious=None)
    with pytest.warns(CapacityWarning) as record:
        res = ipc(X, u[1000:], max_degree=3, max_delay=40, threshold=lax)
    assert res.total > res.rank
    messages = [str(w.message) for w in record]
    assert messages == list(res.warnings) and len(messages) == 2
    assert "exceeds the rank r = 50" in messages[0] and "more time steps" in messages[0]
    assert "expected to add" in messages[1] and "max_spurious" in messages[1]


def test_input_that_does_not_match_the_basis_is_an_error(small_esn):
    W, u = small_esn
    u01 = (u + 1) / 2
    X = run(ESN(W, input_scale=0.5, seed=2), u01, washout=1000)
    with pytest.raises(ValueError, match=r"does not match the legendre basis.*gram_schmidt"):
        ipc(X, u01[1000:], max_degree=2, max_delay=10)
    res = ipc(X, u01[1000:], max_degree=2, max_delay=10, basis="gram_schmidt")
    assert res.total <= res.rank
