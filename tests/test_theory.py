"""Correlation theory of capacity : exact facts to 1e-10, the subsampling theory against simulation."""

import numpy as np
import pandas as pd
import pytest

import wrec
from wrec.capacity import ipc, memory_capacity
from wrec.capacity import theory as th
from wrec.reservoir import ESN, Linear, run


def esn_states(n, g, sigma, T, *, washout=1000, seed=0):
    u = wrec.tasks.uniform_input(T + washout, seed=seed + 1)
    X = run(ESN(wrec.weights.gaussian(n, g, seed=seed), input_scale=sigma, seed=seed + 2), u, washout=washout)
    return X, u[washout:]


@pytest.fixture(scope="module")
def small():
    """A tanh ESN, N = 60, with correlated neurons (g = 0.9, σ = 0.5), T = 5000."""
    return esn_states(60, 0.9, 0.5, 5000, washout=500, seed=10)


# --- fact 4: participation ratio ------------------------------------------------------------------------------


def test_participation_ratio_is_the_mean_squared_correlation_identity(small):
    X, _ = small
    for L in (1, 2, 17, 60):
        R = np.atleast_2d(np.corrcoef(X[:, :L].T))  # independent oracle
        off = R[~np.eye(L, dtype=bool)]
        mean_r2 = float(np.mean(off**2)) if L > 1 else 0.0
        pr = th.participation_ratio(X[:, :L])
        assert pr == pytest.approx(L / (1 + (L - 1) * mean_r2), rel=1e-10, abs=0)
        assert pr == pytest.approx(np.trace(R) ** 2 / np.sum(R * R), rel=1e-10, abs=0)
        assert 1.0 - 1e-12 <= pr <= L + 1e-12
        if L > 1:
            assert th.mean_squared_correlation(X[:, :L]) == pytest.approx(mean_r2, rel=1e-10, abs=0)
    # uncorrelated-by-construction columns: PR = L
    Q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((500, 8)))
    Q = Q - Q.mean(axis=0)
    Q, _ = np.linalg.qr(Q)
    assert th.participation_ratio(Q) == pytest.approx(8.0, rel=1e-10)


# --- fact 3: per-delay identity -------------------------------------------------------------------------------


def residual_oracle(X, u, k, offset):
    """b_k and Ẽ_k from their definitions (numpy cov/corrcoef, a dense solve): an independent route."""
    T = X.shape[0]
    Xr, z = X[offset:], u[offset - k : T - k]
    a = np.array([np.cov(x, z, ddof=0)[0, 1] for x in Xr.T]) / z.var()
    E = (Xr - Xr.mean(axis=0)) - np.outer(z - z.mean(), a)
    b = np.array([np.cov(x, z, ddof=0)[0, 1] for x in Xr.T]) / (z.std() * E.std(axis=0))
    return b, np.atleast_2d(np.corrcoef(E.T))


@pytest.mark.parametrize("L", [1, 5, 12, 40])
def test_per_delay_identity_equals_the_memory_curve_and_bounds_it(small, L):
    X, u = small
    cols = np.random.default_rng(L).choice(X.shape[1], L, replace=False)
    K = 30
    pd_ = th.per_delay_identity(X[:, cols], u, range(K + 1))
    mc = memory_capacity(X[:, cols], u, K, threshold=None)
    np.testing.assert_allclose(pd_.capacity, mc.raw, rtol=0, atol=1e-10)
    # the Cauchy–Schwarz bound, as ≥, in both s- and m-units
    assert np.all(pd_.s >= pd_.bound * (1 - 1e-10))
    assert np.all(pd_.capacity >= pd_.capacity_bound - 1e-12)
    np.testing.assert_allclose(pd_.bound, L * pd_.beta / (1 + (L - 1) * pd_.rho_bar), rtol=1e-10)
    for k in (0, 3, 17):  # b, Ẽ, s, β and ρ̄ from their definitions
        b, Et = residual_oracle(X[:, cols], u, k, K)
        s = b @ np.linalg.solve(Et, b)
        rho = (b @ Et @ b - b @ b) / ((L - 1) * (b @ b)) if L > 1 else 0.0
        assert pd_.s[k] == pytest.approx(s, rel=1e-9)
        assert s / (1 + s) == pytest.approx(mc.raw[k], abs=1e-10)
        assert pd_.beta[k] == pytest.approx(b @ b / L, rel=1e-10)
        assert pd_.rho_bar[k] == pytest.approx(rho, rel=1e-9, abs=1e-12)
    one = th.per_delay_identity(X[:, cols], u, 3, max_delay=K)
    assert isinstance(one.capacity, float) and one.capacity == pytest.approx(mc.raw[3], abs=1e-10)


def test_per_delay_identity_bound_is_loose_under_correlation(small):
    X, u = small
    r = th.per_delay_identity(X[:, :20], u, range(6))
    assert np.all(r.rho_bar[:3] > 0.0)  # correlated residuals: the bound saturates below the truth
    assert np.sum(r.capacity_bound) < np.sum(r.capacity) - 0.1


def test_per_delay_identity_is_invariant_to_duplicated_neurons(small):
    X, u = small
    once = th.per_delay_identity(X[:, :6], u, range(8))
    twice = th.per_delay_identity(X[:, [0, 1, 2, 3, 4, 5, 2, 5]], u, range(8))  # rank-deficient Ẽ: pseudoinverse
    np.testing.assert_allclose(twice.capacity, once.capacity, rtol=0, atol=1e-10)


def test_per_delay_identity_on_a_delay_line_is_exact_memory():
    N, T = 8, 3000
    u = np.random.default_rng(0).uniform(-1, 1, T)
    X = run(Linear(wrec.weights.delay_line(N), w_in=np.eye(N)[0]), u)
    r = th.per_delay_identity(X, u, range(2 * N))
    np.testing.assert_array_equal(r.capacity[:N], 1.0)
    assert np.all(np.isinf(r.s[:N]))
    np.testing.assert_allclose(r.capacity[N:], memory_capacity(X, u, 2 * N - 1, threshold=None).raw[N:],
                               atol=1e-10)


# --- facts 1 and 2: conservation; no sublinearity in linear networks ------------------------------------------


def test_total_ipc_of_a_contractive_tanh_esn_is_the_rank():
    X, u = esn_states(10, 0.5, 0.2, 20_000, washout=500, seed=4)
    res = ipc(X, u, 3, {1: 40, 2: 15, 3: 15})
    assert res.rank == 10
    assert res.by_degree[3] > 2.0  # the nonlinear part is needed to fill the rank: memory alone does not
    assert res.by_degree[1] < 0.8 * res.rank
    assert res.total == pytest.approx(res.rank, abs=0.1)


def test_linear_reservoir_subsets_have_linear_memory_and_the_theory_agrees():
    N, K, T = 50, 300, 20_000
    W = wrec.weights.orthogonal(N, 0.9, seed=2)  # not Gaussian W: its Krylov matrix is numerically rank 49
    u = wrec.tasks.uniform_input(T + 1000, seed=7)
    X = run(Linear(W, seed=3), u, washout=1000)
    u = u[1000:]
    spectrum = th.population_spectrum(X, u, K)
    rng = np.random.default_rng(0)
    for L in (5, 20, 50):
        S = rng.choice(N, L, replace=False)
        mc = memory_capacity(X[:, S], u, K, threshold=None)
        assert mc.rank == L
        assert mc.adjusted_total == pytest.approx(L, abs=0.1)  # MC(L) = L however correlated
        # the theory: every direction is fully memory (Σ_k w_jk ≈ 1), so MC_L = Σ_j μ_j/(μ_j+κ_L) = L
        predicted = th.subsample_prediction(spectrum, L).mc[0]
        assert predicted == pytest.approx(mc.raw_total, rel=0.01)


# --- predictive theory: exact limits ----------------------------------------------------------------------------


def test_full_readout_returns_the_full_capacities_exactly(small):
    X, u = small
    md = {1: 20, 3: 5}
    spectrum = th.population_spectrum(X, u, md)
    full = ipc(X, u, max_delay=md, threshold=None)
    assert spectrum.rank == full.rank == X.shape[1]
    assert list(spectrum.table["delays"]) == list(full.table["delays"])
    assert list(spectrum.table["degrees"]) == list(full.table["degrees"])
    np.testing.assert_allclose(spectrum.table["capacity"], full.table["capacity"], rtol=0, atol=1e-12)
    pred = th.subsample_prediction(spectrum, [spectrum.rank])
    assert pred.kappa[0] == 0.0
    np.testing.assert_allclose(pred.values[0], full.table["capacity"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(pred.by_degree.loc[spectrum.rank].to_numpy(),
                               full.summary["raw"].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(spectrum.mu, np.sort(np.linalg.eigvalsh(np.cov(X[20:].T, ddof=0)))[::-1],
                               rtol=1e-9)


def test_flat_spectrum_scales_exactly_linearly():
    T, N, K = 3000, 40, 10
    rng = np.random.default_rng(1)
    Q, _ = np.linalg.qr(rng.standard_normal((T - K, N)))
    Q -= Q.mean(axis=0)
    Q, _ = np.linalg.qr(Q)  # centred, orthonormal columns on the rows t ≥ K: μ_j all equal
    X = np.vstack([rng.standard_normal((K, N)), Q])
    u = rng.uniform(-1, 1, T)
    u[K:] += 5 * Q[:, 0]  # give the targets real loadings
    # the shifted input is no longer uniform: the empirical basis (the identity below holds for any targets)
    spectrum = th.population_spectrum(X, u, {1: K, 2: 3}, basis="gram_schmidt")
    full = spectrum.table["capacity"].to_numpy()
    Ls = np.array([1, 2, 7, 20, 39, 40])
    pred = th.subsample_prediction(spectrum, Ls)
    np.testing.assert_allclose(pred.values, Ls[:, None] / N * full[None, :], rtol=1e-12, atol=1e-15)


def test_kappa_solves_its_equation_and_predictions_grow_with_L(small):
    X, u = small
    spectrum = th.population_spectrum(X, u, 40)
    for L in (1, 3, 30, 59):
        kappa = th.subsample_kappa(spectrum.mu, L)
        assert kappa > 0
        assert np.sum(spectrum.mu / (spectrum.mu + kappa)) == pytest.approx(L, rel=1e-12)
    pred = th.subsample_prediction(spectrum, range(1, 61))
    assert np.all(np.diff(pred.kappa) < 0) and pred.kappa[-1] == 0.0
    assert np.all(np.diff(pred.values, axis=0) >= -1e-15)  # more neurons never predict less
    assert np.all(pred.mc <= pred.L + 1e-12)
    assert pred.by_degree.columns.tolist() == [1]
    np.testing.assert_allclose(pred.by_degree[1].to_numpy(), pred.mc)


def test_independent_prediction_is_L_times_the_mean_single_neuron_memory(small):
    X, u = small
    K = 25
    single = th.single_neuron_memory(X, u, K)
    for i in (0, 7, 59):
        assert single[i] == pytest.approx(memory_capacity(X[:, [i]], u, K, threshold=None).raw_total, abs=1e-10)
    np.testing.assert_allclose(th.independent_prediction(X, u, K, [1, 10, 60]), np.array([1, 10, 60]) * single.mean(),
                               rtol=1e-12)
    assert th.independent_prediction(X, u, K, 10) == pytest.approx(10 * single.mean(), rel=1e-12)


# --- predictive theory against simulation (stated tolerances) ------------------------------------------------

LS = (5, 20, 80)
SUBSETS = 8


@pytest.fixture(scope="module")
def scaling():
    """Two tanh ESNs, N = 400, one W scaled by g = 1.0 (σ = 0.1) and g = 0.9 (σ = 0.5), simulated in one batch;
    T = 2·10⁴ after a washout of 1000. Simulated MC and C_3 are means of the raw capacities of 8 random subsets."""
    N, T, washout, K = 400, 20_000, 1000, 100
    u = wrec.tasks.uniform_input(T + washout, seed=1)
    model = ESN(wrec.weights.gaussian(N, 1.0, seed=0), recurrent_scale=np.array([1.0, 0.9]),
                input_scale=np.array([0.1, 0.5]), seed=2)
    states = run(model, u, washout=washout)
    u = u[washout:]
    rng = np.random.default_rng(3)
    out = {}
    for name, X, md in (("weak", states[0], {1: K}), ("strong", states[1], {1: K, 3: 11})):
        spectrum = th.population_spectrum(X, u, md)
        pred = th.subsample_prediction(spectrum, LS).by_degree
        sim = {}
        for L in LS:
            sums = [ipc(X[:, rng.choice(N, L, replace=False)], u, max_delay=md, threshold=None).summary["raw"]
                    for _ in range(SUBSETS)]
            sim[L] = pd.concat(sums, axis=1).mean(axis=1)
        out[name] = (pd.DataFrame(sim).T, pred, th.independent_prediction(X, u, K, list(LS)))
    return out


def report(sim, pred, degree):
    return ", ".join(f"L={L}: {sim.loc[L, degree]:.3f}/{pred.loc[L, degree]:.3f}" for L in LS)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["weak", "strong"])
def test_theory_predicts_simulated_memory_capacity_within_3_percent(scaling, name):
    sim, pred, independent = scaling[name]
    msg = f"MC sim/theory ({name}): {report(sim, pred, 1)}"
    np.testing.assert_allclose(pred[1].to_numpy(), sim[1].to_numpy(), rtol=0.03, err_msg=msg)
    assert np.all(np.diff(sim[1].to_numpy()) > 0) and sim.loc[80, 1] < 0.6 * 80  # sublinear
    assert pred.loc[80, 1] < 0.6 * independent[-1]  # well below the correlation-free line


@pytest.mark.slow
def test_theory_predicts_simulated_degree_3_capacity_within_10_percent(scaling):
    sim, pred, _ = scaling["strong"]
    big = sim[3] > 1.0
    assert big.sum() >= 2, f"C_3 too small to test: {sim[3].to_dict()}"
    np.testing.assert_allclose(pred.loc[big, 3].to_numpy(), sim.loc[big, 3].to_numpy(), rtol=0.10,
                               err_msg=f"C_3 sim/theory: {report(sim, pred, 3)}")
    # progressively higher orders: the degree-3 share of capacity grows with L
    share = (sim[3] / (sim[1] + sim[3])).to_numpy()
    assert np.all(np.diff(share) > 0)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["leaky", "rate"])
def test_theory_predicts_leaky_and_rate_network_memory_within_3_percent(kind):
    from wrec.reservoir import LeakyESN, Rate

    N, T, washout, K = 300, 20_000, 1000, 100
    u = wrec.tasks.uniform_input(T + washout, seed=5)
    if kind == "leaky":
        model = LeakyESN(wrec.weights.gaussian(N, 0.9, seed=6), input_scale=0.5, leak=0.3, seed=7)
    else:  # the rate network: Euler Δ = 0.2, g = 1.5, σ = 1
        model = Rate(wrec.weights.gaussian(N, 1.5, seed=6), input_scale=1.0, dt=0.2, seed=7)
    X, u = run(model, u, washout=washout), u[washout:]
    pred = th.subsample_prediction(th.population_spectrum(X, u, K), LS).mc
    rng = np.random.default_rng(8)
    sim = [np.mean([memory_capacity(X[:, rng.choice(N, L, replace=False)], u, K, threshold=None).raw_total
                    for _ in range(SUBSETS)]) for L in LS]
    np.testing.assert_allclose(pred, sim, rtol=0.03, err_msg=f"{kind}: sim {sim}, theory {pred}")


# --- bad input ---------------------------------------------------------------------------------------------------


def test_bad_input_is_rejected_naming_the_argument(small):
    X, u = small
    spectrum = th.population_spectrum(X, u, 10)
    for L in (0, -3, X.shape[1] + 1, [5, 61]):
        with pytest.raises(ValueError, match="L must be"):
            th.subsample_prediction(spectrum, L)
        with pytest.raises(ValueError, match="L must be"):
            th.independent_prediction(X, u, 10, L)
    with pytest.raises(TypeError, match="L must be an int"):
        th.subsample_prediction(spectrum, 2.5)
    with pytest.raises(ValueError, match="L must be"):
        th.subsample_prediction(spectrum, [])
    with pytest.raises(TypeError, match="spectrum must be a Spectrum"):
        th.subsample_prediction(X, 5)
    bad = X.copy()
    bad[3, 2] = np.nan
    for call in (lambda: th.population_spectrum(bad, u, 10), lambda: th.participation_ratio(bad),
                 lambda: th.per_delay_identity(bad, u, 2), lambda: th.independent_prediction(bad, u, 10, 5)):
        with pytest.raises(ValueError, match="states has 1 non-finite"):
            call()
    for call in (lambda: th.population_spectrum(X, u[1:], 10), lambda: th.per_delay_identity(X, u[:-1], 2),
                 lambda: th.independent_prediction(X, u[1:], 10, 5)):
        with pytest.raises(ValueError, match="must be aligned"):
            call()
    const = X.copy()
    const[:, 4] = 1.0
    with pytest.raises(ValueError, match="states has 1 constant column"):
        th.participation_ratio(const)
    with pytest.raises(ValueError, match="states has 1 constant column"):
        th.per_delay_identity(const, u, 2)
    with pytest.raises(ValueError, match="delay must be >= 0"):
        th.per_delay_identity(X, u, -1)
    with pytest.raises(ValueError, match="max_delay must be >= 5"):
        th.per_delay_identity(X, u, 5, max_delay=3)
    with pytest.raises(ValueError, match="mu must be"):
        th.subsample_kappa(np.array([1.0, 0.0]), 1)


def test_linear_spectrum_from_the_model_predicts_the_exact_memory_and_the_simulation():
    from wrec.capacity.theory import linear_memory_curve, linear_spectrum, population_spectrum, subsample_prediction

    N = 60
    W = wrec.weights.orthogonal(N, 0.9, seed=11)
    w_in = wrec.weights.input_weights(N, seed=12)
    model = linear_spectrum(W, w_in, 300)
    full = subsample_prediction(model, N)
    assert full.mc[0] == pytest.approx(linear_memory_curve(W, w_in, 300).sum(), abs=1e-8)
    u = wrec.tasks.uniform_input(21_000, seed=13)
    X = wrec.reservoir.run(wrec.reservoir.Linear(W, w_in=w_in), u, washout=1000)
    sampled = subsample_prediction(population_spectrum(X, u[1000:], 300), [5, 20, 40])
    # the sampled spectrum carries the finite-sample floor L/T per target: (300 + 1)·L/T on top of the model's
    floor = 301 * np.array([5, 20, 40]) / (X.shape[0] - 300)
    np.testing.assert_allclose(sampled.mc - floor, subsample_prediction(model, [5, 20, 40]).mc, rtol=0.02)
