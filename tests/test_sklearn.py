"""wrec.sklearn: the reservoir transformers against scikit-learn's estimator checks and wrec's own reservoirs, the
memory-capacity scorer against a direct computation, NARMA-10 against the paper's equation, and the NARMA-10
pipeline against ReservoirPy's model on the same reservoir."""

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from wrec import reservoir, weights
from wrec.capacity import memory_capacity
from wrec.sklearn import ESNTransformer, LinearReservoirTransformer, MemoryCapacityScorer, RateTransformer
from wrec.tasks import narma10

# --- scikit-learn's estimator checks ----------------------------------------------------------------------------

# A reservoir is a sequence model: row t of transform(X) is the state after rows 0..t, so it depends on the rows
# before it and on their order. Those checks fail for every reservoir; with initial_state="fit", transform also
# starts where fit ended, so fit(X).transform(X) is not fit_transform(X) (which starts from rest).
SEQUENCE = {
    "check_methods_subset_invariance": "row t depends on rows 0..t−1: transform of a subset is not a subset",
    "check_methods_sample_order_invariance": "row t depends on the order of the rows before it",
}
CARRIED = {
    "check_transformer_general": "initial_state='fit': transform(X) starts from the state at the end of fit's X, "
                                 "fit_transform(X) from rest",
    "check_transformer_data_not_an_array": "as check_transformer_general (the same comparison on list input)",
}


def expected_failed_checks(estimator):
    return SEQUENCE | (CARRIED if estimator.initial_state == "fit" else {})


@parametrize_with_checks(
    [ESNTransformer(20), ESNTransformer(20, leak=0.5, bias=0.1, initial_state="rest"),
     LinearReservoirTransformer(20, initial_state="rest"), RateTransformer(20)],
    expected_failed_checks=expected_failed_checks, xfail_strict=True)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# --- the transformers run wrec's reservoirs ---------------------------------------------------------------------

N = 30


def stream(T, seed=0, features=None):
    shape = (T,) if features is None else (T, features)
    return np.random.default_rng(seed).uniform(-1, 1, shape)


def fixed():
    return weights.gaussian(N, spectral_radius=0.9, seed=1), weights.input_weights(N, seed=2)


@pytest.mark.parametrize(("transformer", "model"), [
    (lambda W, w: ESNTransformer(spectral_radius=None, W=W, w_in=w, input_scale=0.5, bias=0.1),
     lambda W, w: reservoir.ESN(W, w_in=w, input_scale=0.5, bias=0.1)),
    (lambda W, w: ESNTransformer(spectral_radius=None, W=W, w_in=w, input_scale=0.5, leak=0.3),
     lambda W, w: reservoir.LeakyESN(W, w_in=w, input_scale=0.5, leak=0.3)),
    (lambda W, w: LinearReservoirTransformer(spectral_radius=None, W=W, w_in=w, input_scale=0.5),
     lambda W, w: reservoir.Linear(W, w_in=w, input_scale=0.5)),
    (lambda W, w: RateTransformer(spectral_radius=None, W=W, w_in=w, input_scale=0.5, dt=0.2, observe="potential"),
     lambda W, w: reservoir.Rate(W, w_in=w, input_scale=0.5, dt=0.2, observe="potential")),
])
def test_transform_gives_the_states_of_wrecs_reservoir(transformer, model):
    W, w = fixed()
    u = stream(500)
    est = transformer(W, w)
    X = est.fit_transform(u[:, None])
    np.testing.assert_allclose(X, reservoir.run(model(W, w), u), rtol=0, atol=1e-12)
    assert est.get_feature_names_out()[0] == f"{type(est).__name__.lower()}0"


def test_several_features_enter_through_w_in():
    W = weights.gaussian(N, spectral_radius=0.9, seed=1)
    w_in = weights.input_weights(N, n_inputs=3, seed=2)
    U = stream(200, features=3)
    X = ESNTransformer(spectral_radius=None, W=W, w_in=w_in, input_scale=0.7, leak=0.5).fit_transform(U)
    x, expect = np.zeros(N), np.empty((200, N))
    for t in range(200):
        x = 0.5 * x + 0.5 * np.tanh(W @ x + 0.7 * w_in @ U[t])
        expect[t] = x
    np.testing.assert_allclose(X, expect, rtol=0, atol=1e-12)


def test_initial_state_fit_continues_the_training_stream_and_rest_starts_afresh():
    U = stream(700, features=1)
    carried = ESNTransformer(N, input_scale=0.5).fit(U[:400])
    whole = ESNTransformer(N, input_scale=0.5).fit_transform(U)
    np.testing.assert_array_equal(carried.transform(U[400:]), whole[400:])
    np.testing.assert_array_equal(carried.transform(U[400:]), carried.transform(U[400:]))  # transform is pure
    np.testing.assert_array_equal(carried.state_, whole[399])
    rest = ESNTransformer(N, input_scale=0.5, initial_state="rest").fit(U[:400])
    np.testing.assert_array_equal(rest.transform(U[400:]), ESNTransformer(N, input_scale=0.5).fit_transform(U[400:]))


def test_weights_are_seeded_rescaled_and_checked():
    a, b = ESNTransformer(N, seed=3).fit(stream(10, features=2)), ESNTransformer(N, seed=3).fit(stream(10, 1, 2))
    np.testing.assert_array_equal(a.W_, b.W_)
    np.testing.assert_array_equal(a.w_in_, b.w_in_)
    assert not np.array_equal(ESNTransformer(N, seed=4).fit(stream(10, features=2)).W_, a.W_)
    assert a.w_in_.shape == (N, 2) and max(abs(np.linalg.eigvals(a.W_))) == pytest.approx(0.9, rel=1e-12)
    W, _ = fixed()
    given = ESNTransformer(spectral_radius=0.5, W=2 * W, seed=3).fit(stream(10, features=2))
    np.testing.assert_allclose(given.W_, W * 0.5 / 0.9, rtol=1e-12)
    np.testing.assert_array_equal(given.w_in_, a.w_in_)  # giving W leaves w_in as drawn
    np.testing.assert_array_equal(ESNTransformer(spectral_radius=None, W=W).fit(stream(10, features=1)).W_, W)
    U = stream(10, features=1)
    with pytest.raises(ValueError, match="n_units = 10 but W has shape"):
        ESNTransformer(10, W=W).fit(U)
    with pytest.raises(ValueError, match=r"w_in must have shape \(N, F\) = \(30, 1\)"):
        ESNTransformer(N, w_in=np.ones(N + 1)).fit(U)
    with pytest.raises(ValueError, match="initial_state must be one of"):
        ESNTransformer(N, initial_state="zero").fit(U)
    with pytest.raises(ValueError, match=r"leak must be <= 1.0"):
        ESNTransformer(N, leak=2.0).fit(U)


def test_a_reservoir_that_blows_up_is_an_error_naming_the_row():
    with pytest.raises(ValueError, match=r"blew up: its state became non-finite at row \d+ of 3000"):
        LinearReservoirTransformer(N, spectral_radius=1.5).fit(np.ones((3000, 1)))


# --- the memory-capacity scorer in a grid search ----------------------------------------------------------------

def test_grid_search_picks_the_spectral_radius_of_largest_memory_capacity():
    """The scores are wrec's memory capacity (Jaeger 2001) of the validation states, computed directly with
    ``reservoir.run`` from the state the fit reached; MC grows with ρ toward 1 and falls past it (small input)."""
    u = stream(3500, seed=5)
    grid = [0.3, 0.9, 0.99, 1.5]
    train, val = np.arange(500), np.arange(500, 3500)
    scorer = MemoryCapacityScorer(max_delay=60, washout=100, threshold=None)
    search = GridSearchCV(ESNTransformer(N, input_scale=0.1), {"spectral_radius": grid}, scoring=scorer,
                          cv=[(train, val)]).fit(u[:, None])
    direct = []
    for rho in grid:
        est = ESNTransformer(N, spectral_radius=rho, input_scale=0.1).fit(u[train, None])
        esn = reservoir.ESN(est.W_, w_in=est.w_in_[:, 0], input_scale=0.1)
        X = reservoir.run(esn, u[val], x0=est.state_)
        direct.append(memory_capacity(X[100:], u[val][100:], 60, threshold=None).total)
    np.testing.assert_allclose(search.cv_results_["mean_test_score"], direct, rtol=1e-10)
    assert search.best_params_["spectral_radius"] == grid[int(np.argmax(direct))]
    assert direct[0] < direct[1] and direct[3] < max(direct[1:3])
    pipe = make_pipeline(ESNTransformer(N, spectral_radius=0.9, input_scale=0.1), Ridge()).fit(u[train, None],
                                                                                                u[train])
    assert scorer(pipe, u[val, None]) == pytest.approx(direct[1], rel=1e-10)  # a pipeline: scored before its readout
    assert MemoryCapacityScorer(60, 100, first_delay=1, threshold=None)(pipe, u[val, None]) < direct[1] - 0.9


# --- NARMA-10 -----------------------------------------------------------------------------------------------------

def narma_from_the_paper(u):
    """Atiya & Parlos (2000), eq. for NARMA-10, written with y indexed by time from y_0 = 0."""
    y = {t: 0.0 for t in range(-9, 1)}
    for t in range(len(u)):
        past = sum(y[t - i] for i in range(10))
        y[t + 1] = 0.3 * y[t] + 0.05 * y[t] * past + 1.5 * (u[t - 9] if t >= 9 else 0.0) * u[t] + 0.1
    return np.array([y[t + 1] for t in range(len(u))])


def test_narma10_is_the_papers_recurrence():
    u = np.random.default_rng(0).uniform(0, 0.5, 2000)
    np.testing.assert_allclose(narma10(u), narma_from_the_paper(u), rtol=1e-13, atol=0)
    with pytest.raises(ValueError, match="NARMA-10 diverged"):
        narma10(np.full(200, 3.0))
    with pytest.raises(ValueError, match="u must be 1-D"):
        narma10(np.zeros((5, 2)))


def nrmse(y, p):
    return float(np.sqrt(np.mean((p - y) ** 2)) / np.std(y))


@pytest.mark.slow
def test_narma10_pipeline_reaches_its_nrmse_and_equals_reservoirpys_model():
    """``make_pipeline(ESNTransformer, Ridge)`` on NARMA-10 (N = 100, 3000 training rows of which the first 200 are
    weighted 0, 1000 test rows) reaches NRMSE < 0.3 (measured 0.254; NRMSE = RMSE/σ(y)), and ReservoirPy's model
    ``Reservoir(W, Win, bias) >> Ridge`` on the same W, Win = σ w_in, bias, fit with ``warmup=200`` then run on the
    test rows, gives the same states (1e-12) and predictions (1e-8)."""
    pytest.importorskip("reservoirpy")
    from reservoirpy.nodes import Reservoir
    from reservoirpy.nodes import Ridge as RpyRidge

    u = np.random.default_rng(0).uniform(0, 0.5, 4000)
    y = narma10(u)
    n_train, washout, alpha = 3000, 200, 1e-6
    pipe = make_pipeline(ESNTransformer(100, spectral_radius=0.9, input_scale=0.2, bias=0.2, seed=1), Ridge(alpha))
    weight = np.r_[np.zeros(washout), np.ones(n_train - washout)]
    pipe.fit(u[:n_train, None], y[:n_train], ridge__sample_weight=weight)
    ours = pipe.predict(u[n_train:, None])
    assert nrmse(y[n_train:], ours) < 0.3

    esn = pipe[0]
    every_row = Reservoir(W=esn.W_, Win=0.2 * esn.w_in_, bias=0.2).run(u[:, None])
    np.testing.assert_allclose(esn.fit_transform(u[:, None]), every_row, rtol=0, atol=1e-12)
    esn.fit(u[:n_train, None])
    node = Reservoir(W=esn.W_, Win=0.2 * esn.w_in_, bias=0.2)
    model = node >> RpyRidge(ridge=alpha)
    model.fit(u[:n_train, None], y[:n_train, None], warmup=washout)
    np.testing.assert_allclose(node.state["out"], esn.state_, rtol=0, atol=1e-12)
    theirs = model.run(u[n_train:, None])[:, 0]
    np.testing.assert_allclose(node.state["out"], esn.transform(u[n_train:, None])[-1], rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-8)
    assert nrmse(y[n_train:], ours) == pytest.approx(nrmse(y[n_train:], theirs), rel=1e-8)
