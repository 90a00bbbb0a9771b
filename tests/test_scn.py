"""Spike coding networks (wrec.spiking.scn) and their input signals (wrec.tasks.signals): exact identities, invariants
and statistical checks against analytic networks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import nnls

from wrec.spiking import (
    SCN,
    SCNParams,
    SCNState,
    SCNWeights,
    coding_loss,
    initial_state,
    input_current,
    optimal_weights,
    simulate,
    step,
)
from wrec.tasks import leaky_integral, smoothed_white_noise

LEAK, DT = 10.0, 1e-4


def random_decoder(j: int, n: int, scale: float, seed: int) -> np.ndarray:
    D = np.random.default_rng(seed).standard_normal((j, n))
    return scale * D / np.linalg.norm(D, axis=0)


def circle(steps: int, freq: float = 1.0) -> np.ndarray:
    """x_t = (cos 2πft, sin 2πft) at t = 0, dt, ..., steps·dt: shape (steps + 1, 2)."""
    t = np.arange(steps + 1) * DT
    return np.stack([np.cos(2 * np.pi * freq * t), np.sin(2 * np.pi * freq * t)], axis=1)


@pytest.fixture(scope="module")
def autoencoder_run():
    """J = 3, N = 30, μ = ν = 1e-3, a smooth random signal over 10⁴ steps from a consistent non-zero start."""
    D = random_decoder(3, 30, 0.1, seed=0)
    w = optimal_weights(D, mu=1e-3, nu=1e-3)
    p = SCNParams(leak=LEAK, dt=DT, mu=1e-3, nu=1e-3)
    c = smoothed_white_noise(10_000, 3, width=200, amplitude=300, block=2500, seed=1)
    x0 = np.array([0.3, -0.2, 0.1])
    run = simulate(w, c, p, x0=x0)
    x = leaky_integral(c, LEAK, DT, x0)
    return w, p, run, x


# ---- exact oracles -------------------------------------------------------------------------------------------


def test_loss_identity_random():
    """ℓ(r + e_k) − ℓ(r) = −2(V_k − T_k) with V, T from the definitions (exact)."""
    rng = np.random.default_rng(3)
    for _ in range(20):
        j, n = rng.integers(1, 5), rng.integers(1, 12)
        D = rng.standard_normal((j, n))
        mu, nu = rng.uniform(0, 0.5, 2)
        x, r = rng.standard_normal(j), rng.uniform(0, 3, n)
        w = optimal_weights(D, mu, nu)
        V = D.T @ (x - D @ r) - mu * r
        dl = coding_loss(x, r + np.eye(n), D, mu, nu) - coding_loss(x, r, D, mu, nu)
        np.testing.assert_allclose(dl, -2 * (V - w.T), atol=1e-12)


def test_loss_identity_from_network_state(autoencoder_run):
    """The same identity with V and r taken from the simulated network (ℓ hand-written here)."""
    w, p, run, x = autoencoder_run
    D = w.D
    for t in (100, 5000, 9999):
        r, V = run.r[t], run.V[t]

        def loss(rr, t=t):
            e = x[t] - D @ rr
            return e @ e + p.mu * rr @ rr + p.nu * np.abs(rr).sum()

        dl = np.array([loss(r + e) for e in np.eye(w.n)]) - loss(r)
        np.testing.assert_allclose(dl, -2 * (V - w.T), atol=1e-12)


def test_voltage_identity_over_1e4_steps(autoencoder_run):
    """V = Dᵀ(x − x̂) − μr at every step end, x the Euler integral with the same factor (≤ 1e-9)."""
    w, p, run, x = autoencoder_run
    assert run.neurons.size > 200  # the identity is exercised by spikes, not only by the sub-threshold flow
    expected = (x - run.xhat) @ w.D - p.mu * run.r
    err = np.abs(run.V - expected).max()
    assert err <= 1e-9, err  # measured ~1e-16


def test_sequential_invariant(autoencoder_run):
    """No V_i exceeds T_i after any step (sequential mode)."""
    w, _, run, _ = autoencoder_run
    assert (run.V - w.T).max() <= 1e-12


def test_step_by_hand_sequential_and_hook():
    """One sequential step against a hand-written Euler update + greedy loop; the hook sees V and r before."""
    rng = np.random.default_rng(5)
    D = random_decoder(2, 8, 0.2, seed=6)
    A = np.array([[-1.0, 2.0], [-3.0, -0.5]])
    w = optimal_weights(D, mu=0.01, nu=0.02, A=A, leak=LEAK)
    p = SCNParams(leak=LEAK, dt=DT)
    V0, r0, c = rng.normal(0, 0.05, 8), rng.uniform(0, 2, 8), rng.normal(0, 3000, 2)
    V0[2] = w.T[2] + 0.3  # several spikes are due
    V = V0 + DT * (-LEAK * V0 + w.F @ c + w.slow @ r0)
    r = (1 - LEAK * DT) * r0
    want_spikes, want_calls = [], []
    while np.max(V - w.T) > 0:
        k = int(np.argmax(V - w.T))
        want_calls.append((k, V.copy(), r.copy()))
        V = V + w.fast[:, k]
        r[k] += 1
        want_spikes.append(k)
    assert len(want_spikes) >= 2
    calls = []
    state, spikes = step(SCN(w, p), SCNState(V0, r0, np.array(-1)), c,
                         on_spike=lambda b, k, v, rr: calls.append((k, v, rr)))
    assert spikes.tolist() == want_spikes
    np.testing.assert_allclose(state.V, V, rtol=0, atol=1e-14)
    np.testing.assert_allclose(state.r, r, rtol=0, atol=1e-14)
    assert [k for k, _, _ in calls] == want_spikes
    for (_, v, rr), (_, v2, rr2) in zip(calls, want_calls, strict=True):
        np.testing.assert_allclose(v, v2, atol=1e-14)
        np.testing.assert_allclose(rr, rr2, atol=1e-14)


def test_single_mode_amounts():
    """"single": one spike per step, r_k += 1 at once, Ω[:, k] added at the next step's Euler update."""
    D = random_decoder(2, 6, 0.2, seed=7)
    w = optimal_weights(D)
    p = SCNParams(leak=LEAK, dt=DT, mode="single")
    V0 = np.array([0.0, 0.5, 0.2, 0.0, 0.0, 0.0])  # neurons 1 and 2 above threshold (T = 0.02)
    c = np.zeros(2)
    s1, sp1 = step(SCN(w, p), SCNState(V0, np.zeros(6), np.array(-1)), c)
    assert sp1.tolist() == [1]
    np.testing.assert_allclose(s1.V, (1 - LEAK * DT) * V0, atol=1e-15)  # reset not yet applied
    np.testing.assert_allclose(s1.r, np.eye(6)[1], atol=0)
    assert int(s1.pending) == 1
    s2, sp2 = step(SCN(w, p), s1, c)
    np.testing.assert_allclose(s2.V, (1 - LEAK * DT) * s1.V + w.fast[:, 1], atol=1e-15)
    assert sp2.size <= 1
    if sp2.size:  # a spike fired now is pending again, its reset still unapplied
        assert int(s2.pending) == int(sp2[0])


def test_batched_step_matches_single_trials():
    """The vectorised while-loop: trials that still have a neuron above threshold keep firing."""
    rng = np.random.default_rng(8)
    D = random_decoder(2, 10, 0.1, seed=9)
    w = optimal_weights(D, mu=1e-3)
    p = SCNParams(leak=LEAK, dt=DT)
    V = rng.normal(0, 0.02, (4, 10))
    V[0, 3] = 0.5  # trial 0 needs many spikes, trial 1 a few, trials 2-3 maybe none
    V[1, 5] = 0.03
    r = rng.uniform(0, 1, (4, 10))
    c = rng.normal(0, 100, (4, 2))
    sb, spb = step(SCN(w, p), SCNState(V, r, np.full(4, -1)), c)
    for b in range(4):
        s1, sp1 = step(SCN(w, p), SCNState(V[b], r[b], np.array(-1)), c[b])
        assert spb[spb[:, 0] == b, 1].tolist() == sp1.tolist()
        np.testing.assert_allclose(sb.V[b], s1.V, atol=1e-15)
        np.testing.assert_allclose(sb.r[b], s1.r, atol=1e-15)


def test_batch_equals_loop():
    D = random_decoder(2, 30, 0.1, seed=10)
    w = optimal_weights(D, mu=1e-3, nu=1e-3)
    p = SCNParams(leak=LEAK, dt=DT)
    c = smoothed_white_noise(3000, 2, width=200, amplitude=300, block=None, batch=3, seed=11)
    x0 = np.array([[0.2, 0.1], [0.0, 0.0], [-0.3, 0.2]])
    rb = simulate(w, c, p, x0=x0)
    assert rb.V.shape == (3, 3000, 30) and rb.xhat.shape == (3, 3000, 2)
    for b in range(3):
        rl = simulate(w, c[b], p, x0=x0[b])
        m = rb.trials == b
        assert np.array_equal(rl.steps, rb.steps[m]) and np.array_equal(rl.neurons, rb.neurons[m])
        np.testing.assert_allclose(rb.V[b], rl.V, rtol=0, atol=1e-13)
        np.testing.assert_allclose(rb.xhat[b], rl.xhat, rtol=0, atol=1e-13)
    np.testing.assert_array_equal(rb.spike_counts()[1], np.bincount(rb.neurons[rb.trials == 1], minlength=30))


def test_state0_continues_a_run():
    """Two halves chained through state0 equal one run (both modes, batched)."""
    D = random_decoder(2, 12, 0.1, seed=24)
    c = smoothed_white_noise(1000, 2, width=50, amplitude=300, batch=2, seed=25)
    for mode in ("sequential", "single"):
        p = SCNParams(leak=LEAK, dt=DT, mu=1e-3, mode=mode)
        w = optimal_weights(D, mu=1e-3)
        whole = simulate(w, c, p, x0=np.array([0.2, 0.0]))
        first = simulate(w, c[:, :400], p, x0=np.array([0.2, 0.0]))
        second = simulate(w, c[:, 400:], p, state0=first.state)
        np.testing.assert_allclose(np.concatenate([first.V, second.V], axis=1), whole.V, rtol=0, atol=1e-13)
        assert np.array_equal(np.r_[first.steps, second.steps + 400], whole.steps)


@pytest.mark.parametrize(("mode", "mu", "sigma_v", "sigma_t"),
                         [("single", 0.0, 1e-3, 1e-2), ("sequential", 1e-3, 1e-4, 1e-3)])
def test_noise_is_seeded(mode, mu, sigma_v, sigma_t):
    D = random_decoder(2, 10, 0.1, seed=12)
    p = SCNParams(leak=LEAK, dt=DT, mu=mu, sigma_v=sigma_v, sigma_t=sigma_t, mode=mode)
    c = smoothed_white_noise(500, 2, width=50, amplitude=300, seed=13)
    a, b = (simulate(optimal_weights(D, mu), c, p, seed=s) for s in (1, 1))
    assert a.neurons.size > 10
    assert np.array_equal(a.neurons, b.neurons) and np.array_equal(a.V, b.V)
    other = simulate(optimal_weights(D, mu), c, p, seed=2)
    assert not np.array_equal(a.V, other.V)
    if mode == "single":
        assert np.bincount(a.steps).max() == 1


# ---- termination and the storm guard ------------------------------------------------------------------------


def test_step_input_terminates_with_many_spikes():
    """A jump of ‖x‖ = 3.6 with spikes of size 0.05 needs ~80 spikes in one step; the greedy loop fires
    them and stops with the readout within the threshold geometry."""
    D = random_decoder(2, 20, 0.05, seed=14)
    w = optimal_weights(D)
    run = simulate(w, np.zeros((3, 2)), SCNParams(leak=LEAK, dt=DT), x0=np.array([3.0, -2.0]))
    first = np.sum(run.steps == 0)
    assert first > 50
    assert np.max(np.abs(np.array([3.0, -2.0]) * (1 - LEAK * DT) - run.xhat[0])) < 0.05


def test_storm_positive_resets():
    D = random_decoder(2, 10, 0.1, seed=15)
    w = optimal_weights(D)
    bad = SCNWeights(F=w.F, fast=-w.fast, T=w.T, D=D)
    with pytest.raises(RuntimeError, match=r"spike storm.*non-negative resets"):
        simulate(bad, np.full((50, 2), 100.0), SCNParams(leak=LEAK, dt=DT))


def test_storm_infeasible_network():
    """Two neurons driven alike whose readout directions are opposite: no readout satisfies both
    constraints, they fire each other forever; the guard raises instead of hanging."""
    s = 0.1
    G = np.array([[1.0], [-1.0]])
    w = SCNWeights(F=np.array([[1.0], [1.0]]), fast=-s * (G @ G.T), T=np.array([0.1, 0.1]), D=s * G.T)
    with pytest.raises(RuntimeError, match="infeasible"):
        simulate(w, np.zeros((5, 1)), SCNParams(leak=LEAK, dt=DT, max_spikes_per_step=50), x0=np.array([1.0]))


def test_storm_cap_is_a_parameter():
    D = random_decoder(2, 20, 0.05, seed=14)
    with pytest.raises(RuntimeError, match="more than 20 spikes"):
        simulate(optimal_weights(D), np.zeros((3, 2)), SCNParams(leak=LEAK, dt=DT, max_spikes_per_step=20),
                 x0=np.array([3.0, -2.0]))
    assert SCNParams().spike_cap(20) == 1000 and SCNParams().spike_cap(400) == 4000


# ---- tracking and the Boerlin network ---------------------------------------------------------------------


def test_tracking_random_directions():
    """N = 20 random directions × 0.1, a 1 Hz circle of radius 1: max|x_j − x̂_j| ≤ 0.06 [0.0507],
    RMSE ≤ 0.05 [0.035] (measured 0.053 and 0.034)."""
    x = circle(10_000)
    w = optimal_weights(random_decoder(2, 20, 0.1, seed=0))
    run = simulate(w, input_current(x, LEAK, DT), SCNParams(leak=LEAK, dt=DT), x0=x[0], record=("xhat",))
    e = x[1:] - run.xhat
    assert np.abs(e).max() <= 0.06
    assert np.sqrt(np.mean(np.sum(e**2, axis=1))) <= 0.05


@pytest.mark.parametrize("gamma", [0.1, 0.05])
def test_tracking_axis_decoders_exact_bound(gamma):
    """±γ axis decoders, μ = ν = 0: |x_j − x̂_j| ≤ γ/2 at every step end (follows from the
    voltage identity and the threshold invariant above)."""
    x = circle(10_000)
    D = gamma * np.array([[1.0, -1.0, 0.0, 0.0], [0.0, 0.0, 1.0, -1.0]])
    run = simulate(optimal_weights(D), input_current(x, LEAK, DT), SCNParams(leak=LEAK, dt=DT), x0=x[0])
    err = np.abs(x[1:] - run.xhat).max()
    assert err <= gamma / 2 + 1e-12
    assert err > 0.9 * gamma / 2  # the bound is attained, so the test is not vacuous


def test_boerlin_damped_oscillator():
    """The analytic network W = Dᵀ(A + λI)D tracks ẋ = Ax + c (Boerlin et al. 2013; the setup of
    ``learn_lds``): relative RMSE ≤ 0.05 [separate simulation 0.016; measured ~0.01] over 2 s after discarding 0.2 s."""
    n = 20
    theta = 2 * np.pi * np.arange(n) / n
    D = 0.05 * np.stack([np.cos(theta), np.sin(theta)])
    A = np.array([[-4.8, -22.4], [40.0, 0.0]])
    w = optimal_weights(D, mu=1e-6, A=A, leak=LEAK)
    c = smoothed_white_noise(20_000, 2, width=200, amplitude=300, block=None, seed=2)
    run = simulate(w, c, SCNParams(leak=LEAK, dt=DT, mu=1e-6), record=("xhat",))
    x, xs = np.zeros(2), np.empty((20_000, 2))
    for t in range(20_000):  # the target system, Euler with the same dt
        x = x + DT * (A @ x + c[t])
        xs[t] = x
    e = (xs - run.xhat)[2000:]
    rel = np.sqrt(np.mean(e**2) / np.mean(xs[2000:] ** 2))
    assert rel <= 0.05, rel
    # without the slow weights the network only low-pass filters c: far from the oscillator
    run0 = simulate(optimal_weights(D, mu=1e-6), c, SCNParams(leak=LEAK, dt=DT), record=("xhat",))
    assert np.sqrt(np.mean((xs - run0.xhat)[2000:] ** 2) / np.mean(xs[2000:] ** 2)) > 0.5


def test_mean_rates_solve_the_regularised_nnls():
    """Constant x, N = 20 random directions × γ, μ = γ², no noise; the filtered rates averaged over 3 s after 1 s
    approach r* = argmin_{r≥0} ‖x − Dr‖² + μ‖r‖² (scipy NNLS on [D; √μ I]): relative error ≤ 0.10 at γ = 0.05 [separate
    simulation 0.035; measured 0.053], shrinking as γ halves [measured 0.11 → 0.053 → 0.011]."""
    x = np.array([0.6, -0.3])
    errs = []
    for gamma in (0.1, 0.05, 0.025):
        D = random_decoder(2, 20, gamma, seed=0)
        mu = gamma**2
        run = simulate(optimal_weights(D, mu), np.tile(LEAK * x, (40_000, 1)), SCNParams(leak=LEAK, dt=DT, mu=mu),
                       x0=x, record=("r",))
        r_bar = run.r[10_000:].mean(axis=0)
        r_star, _ = nnls(np.vstack([D, np.sqrt(mu) * np.eye(20)]), np.r_[x, np.zeros(20)])
        errs.append(np.linalg.norm(r_bar - r_star) / np.linalg.norm(r_star))
    assert errs[1] <= 0.10, errs
    assert errs[0] > errs[1] > errs[2] and errs[2] < errs[0] / 4, errs


def test_hook_returning_weights_is_used_for_the_rest_of_the_step():
    """A learning hook may replace the weights mid-step: the next reset uses the new Ω column."""
    D = 0.2 * np.array([[1.0, -1.0, 0.0, 0.0], [0.0, 0.0, 1.0, -1.0]])
    w = optimal_weights(D)
    V0 = w.F @ np.array([0.15, 0.0])  # consistent; exactly one spike (neuron 0) is due
    new = SCNWeights(F=w.F, fast=w.fast - 0.01 * np.eye(4), T=w.T, D=D)  # a larger reset
    p = SCNParams(leak=0.0, dt=DT)
    s_old, sp_old = step(SCN(w, p), SCNState(V0, np.zeros(4), np.array(-1)), np.zeros(2))
    s_new, sp_new = step(SCN(w, p), SCNState(V0, np.zeros(4), np.array(-1)), np.zeros(2),
                         on_spike=lambda b, k, v, r: new)
    assert sp_old.tolist() == sp_new.tolist() == [0]
    np.testing.assert_allclose(s_old.V, V0 + w.fast[:, 0], atol=1e-15)
    np.testing.assert_allclose(s_new.V, V0 + new.fast[:, 0], atol=1e-15)


# ---- constructors, currents, bad input ----------------------------------------------------------------------


def test_optimal_weights_formulas():
    D = random_decoder(3, 7, 0.3, seed=16) * np.linspace(0.5, 1.5, 7)
    A = np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, -2.0]])
    w = optimal_weights(D, mu=0.1, nu=0.2, A=A, leak=5.0)
    np.testing.assert_allclose(w.F, D.T)
    np.testing.assert_allclose(w.fast, -(D.T @ D) - 0.1 * np.eye(7))
    np.testing.assert_allclose(w.T, (np.sum(D**2, axis=0) + 0.3) / 2)
    np.testing.assert_allclose(w.slow, D.T @ (A + 5.0 * np.eye(3)) @ D)
    assert optimal_weights(D).slow is None


def test_input_current_round_trip():
    x = np.random.default_rng(17).standard_normal((2, 51, 3))
    c = input_current(x, LEAK, DT)
    assert c.shape == (2, 50, 3)
    np.testing.assert_allclose(leaky_integral(c, LEAK, DT, x[:, 0]), x[:, 1:], atol=1e-10)


def test_initial_state_consistent():
    w = optimal_weights(random_decoder(2, 5, 0.1, seed=18))
    s = initial_state(w, np.array([1.0, 2.0]))
    np.testing.assert_allclose(s.V, w.F @ [1.0, 2.0])
    assert np.all(s.r == 0) and int(s.pending) == -1


@pytest.fixture
def net():
    return optimal_weights(random_decoder(2, 5, 0.1, seed=19))


@pytest.mark.parametrize(
    ("make", "exc", "match"),
    [
        (lambda w: SCNWeights(F=w.F, fast=w.fast[:4], T=w.T), ValueError, "fast"),
        (lambda w: SCNWeights(F=w.F, fast=w.fast, T=w.T[:4]), ValueError, "T must have shape"),
        (lambda w: SCNWeights(F=w.F, fast=w.fast, T=w.T, D=w.D.T), ValueError, "D must have shape"),
        (lambda w: SCNWeights(F=w.F, fast=w.fast, T=w.T, slow=np.eye(3)), ValueError, "slow"),
        (lambda w: SCNWeights(F=w.F, fast=w.fast, T=-w.T), ValueError, "T must be > 0"),
        (lambda w: SCNWeights(F=w.F, fast=w.fast, T=np.r_[w.T[:4], 0.0]), ValueError, r"neurons \[4\]"),
        (lambda w: SCNWeights(F=w.F * np.nan, fast=w.fast, T=w.T), ValueError, "F has"),
        (lambda w: SCNParams(leak=100.0, dt=1e-3), ValueError, "dt·leak"),
        (lambda w: SCNParams(mode="batch"), ValueError, "mode"),
        (lambda w: SCNParams(max_spikes_per_step=0), ValueError, "max_spikes_per_step"),
        (lambda w: simulate(w, np.zeros((10, 3)), SCNParams()), ValueError, "c must have J = 2"),
        (lambda w: simulate(w, np.full((10, 2), np.inf), SCNParams()), ValueError, "c has"),
        (lambda w: simulate(w, np.zeros(10), SCNParams()), ValueError, "c must be"),
        (lambda w: simulate(w, np.zeros((10, 2)), SCNParams(), x0=np.zeros(3)), ValueError, "x0"),
        (lambda w: simulate(w, np.zeros((10, 2)), SCNParams(), record=("rates",)), ValueError, "record"),
        (lambda w: simulate(w, np.zeros((10, 2)), {"leak": 10}), TypeError, "params"),
        (lambda w: optimal_weights(w.D, A=np.eye(3)), ValueError, "A must have shape"),
        (lambda w: optimal_weights(np.zeros((2, 3))), ValueError, "zero columns"),
        (lambda w: input_current(np.zeros((1, 2)), LEAK, DT), ValueError, "at least 2"),
    ],
)
def test_bad_input(net, make, exc, match):
    with pytest.raises(exc, match=match):
        make(net)


# ---- smoothed white noise (Brendel et al. 2020's input) -----------------------------------------------------


def test_smoothed_noise_variance_and_blocks():
    """Var c = a² Σ g_k² ≈ a² / (2√π σ) away from block edges; blocks are independent and seeded."""
    sigma, a = 10.0, 50.0
    c = smoothed_white_noise(200_000, 2, width=sigma, amplitude=a, block=None, seed=20)
    want = a**2 / (2 * np.sqrt(np.pi) * sigma)
    np.testing.assert_allclose(c[1000:-1000].var(axis=0), want, rtol=0.05)
    c1 = smoothed_white_noise(3000, 2, width=sigma, amplitude=a, block=1000, batch=2, seed=21)
    c2 = smoothed_white_noise(3000, 2, width=sigma, amplitude=a, block=1000, batch=2, seed=21)
    assert c1.shape == (2, 3000, 2) and np.array_equal(c1, c2)
    # zero padding per block: the signal sags toward 0 at block edges
    edges = np.abs(c1[:, [0, 999, 1000, 1999, 2000, 2999]]).mean()
    assert edges < 0.8 * np.abs(c1[:, 400:600]).mean()


def test_leaky_integral_is_the_euler_integral():
    c = np.random.default_rng(22).standard_normal((100, 2))
    x = leaky_integral(c, LEAK, DT)
    np.testing.assert_allclose(x[0], DT * c[0])
    np.testing.assert_allclose(x[1:], (1 - LEAK * DT) * x[:-1] + DT * c[1:], atol=1e-15)
