"""Measures of spike coding networks (wrec.spiking.metrics) against synthetic trains with known statistics."""

from __future__ import annotations

import numpy as np
import pytest

from wrec.spiking import SCNParams, SCNWeights, optimal_weights, simulate
from wrec.spiking.metrics import (
    alignment_error,
    cv_isi,
    decoding_error,
    ei_correlation,
    ei_currents,
    fano_factor,
    mean_rate,
    optimal_decoder,
)
from wrec.tasks import smoothed_white_noise


def renewal_trains(n_trials, n_neurons, rate, duration, shape, seed):
    """Gamma(shape) renewal trains of the given rate (shape 1: Poisson): times, neurons, trials, counts."""
    rng = np.random.default_rng(seed)
    n_max = int(rate * duration * 2 + 50)
    isi = rng.gamma(shape, 1.0 / (rate * shape), (n_trials, n_neurons, n_max))
    t = np.cumsum(isi, axis=-1)
    b, i, _ = np.nonzero(t < duration)
    times = t[t < duration]
    counts = (t < duration).sum(-1)
    return times, i, b, counts


def test_poisson_trains_cv_and_fano_are_one():
    """Poisson: CV(ISI) = 1, Fano = 1. 20 trials × 50 neurons × 5 s at 20 Hz; s.e. about 0.01 and 0.05."""
    times, neurons, trials, counts = renewal_trains(20, 50, 20.0, 5.0, 1.0, seed=0)
    assert abs(cv_isi(times, neurons, trials) - 1.0) < 0.05
    assert abs(fano_factor(counts) - 1.0) < 0.1
    assert abs(mean_rate(counts, 5.0) - 20.0) < 0.5


def test_gamma_trains_cv():
    """Gamma(k) renewal trains: CV = 1/√k."""
    times, neurons, trials, _ = renewal_trains(10, 50, 20.0, 5.0, 4.0, seed=1)
    assert abs(cv_isi(times, neurons, trials) - 0.5) < 0.03


def test_regular_trains_are_zero():
    times = np.tile(np.arange(0, 1, 0.05), 3)
    neurons = np.repeat([0, 1, 2], 20)
    assert cv_isi(times, neurons) == pytest.approx(0.0, abs=1e-12)
    assert fano_factor(np.tile([20, 20, 20], (5, 1))) == 0.0
    assert mean_rate(np.array([20, 20, 20]), 1.0) == 20.0


def test_cv_ignores_short_trains_and_spike_order():
    rng = np.random.default_rng(2)
    times = np.array([0.0, 1.0, 3.0, 0.5, 2.0])  # neuron 0: ISIs 1, 2; neuron 1: two spikes only
    neurons = np.array([0, 0, 0, 1, 1])
    perm = rng.permutation(5)
    want = np.std([1.0, 2.0], ddof=1) / 1.5
    assert cv_isi(times[perm], neurons[perm]) == pytest.approx(want)
    assert np.isnan(cv_isi(times[:2], neurons[:2]))


def test_alignment_error():
    rng = np.random.default_rng(3)
    F = rng.standard_normal((20, 2))
    target = -F @ F.T
    assert alignment_error(-0.7 * F @ F.T, F) == pytest.approx(0.0, abs=1e-15)
    # Ω = s Ω* + E with E ⟂ Ω* (Frobenius): err = ‖E‖² / ‖Ω‖² exactly
    E = rng.standard_normal((20, 20))
    E -= np.sum(E * target) / np.sum(target * target) * target
    fast = 2.0 * target + E
    assert alignment_error(fast, F) == pytest.approx(np.sum(E * E) / np.sum(fast * fast), rel=1e-12)
    with pytest.raises(ValueError, match="F must have N = 20"):
        alignment_error(fast, F[:5])


def test_decoder_and_decoding_error():
    rng = np.random.default_rng(4)
    r = rng.uniform(0, 1, (3, 2000, 10))
    dec = rng.standard_normal((2, 10))
    x = r @ dec.T
    np.testing.assert_allclose(optimal_decoder(r, x), dec, atol=1e-10)
    assert decoding_error(x, r, dec) == pytest.approx(0.0, abs=1e-20)
    noise = 0.1 * rng.standard_normal(x.shape)  # independent noise: error = Σ Var(noise) / Σ Var(x + noise)
    xn = x + noise
    want = np.mean(noise.var(axis=1).sum(-1) / xn.var(axis=1).sum(-1))
    assert decoding_error(xn, r, dec) == pytest.approx(want, rel=1e-12)
    assert decoding_error(xn, r, optimal_decoder(r, xn)) <= decoding_error(xn, r, dec)


def test_ei_currents_by_hand():
    """E and I against explicit loops over every synapse, with W set so all three kinds of input count."""
    rng = np.random.default_rng(5)
    D = 0.1 * rng.standard_normal((2, 4))
    w0 = optimal_weights(D, mu=1e-3, A=np.array([[-1.0, 3.0], [-2.0, 0.0]]))
    w = SCNWeights(F=w0.F, fast=w0.fast, T=w0.T, slow=w0.slow, D=D)
    p = SCNParams(leak=10.0, dt=1e-4)
    c = smoothed_white_noise(300, 2, width=20, amplitude=300, seed=6)
    run = simulate(w, c, p, x0=np.array([0.3, -0.2]))
    assert run.neurons.size > 5
    E, I = ei_currents(w, c, run, tau=5e-3)  # noqa: E741
    a = np.exp(-p.dt / 5e-3)
    e, i = np.zeros(4), np.zeros(4)
    r_prev = np.zeros(4)
    for t in range(300):
        u_e, u_i = np.zeros(4), np.zeros(4)
        fired = run.neurons[run.steps == t]
        for n in range(4):
            contributions = [p.dt * w.F[n, j] * c[t, j] for j in range(2)]
            contributions += [p.dt * w.slow[n, k] * r_prev[k] for k in range(4)]
            contributions += [w.fast[n, k] for k in fired if k != n]
            u_e[n] = sum(v for v in contributions if v > 0)
            u_i[n] = sum(v for v in contributions if v < 0)
        e, i = a * e + u_e, a * i + u_i
        np.testing.assert_allclose(E[t], e, atol=1e-14)
        np.testing.assert_allclose(I[t], i, atol=1e-14)
        r_prev = run.r[t]


def test_ei_correlation_balanced_network():
    """Brendel et al. 2020's setting (N = 20, J = 2, λ = 50, dt = 1e-3, unit decoders, μ = 0.02/0.9, their input):
    the ideal network is balanced, corr(E, −I) > 0.7 [separate simulation 0.88; measured 0.87]; the random initial Ω₀ =
    −0.2·U(0, 1) − 0.5 I is not, corr < 0 [separate simulation −0.40; measured −0.22]."""
    rng = np.random.default_rng(7)
    D = rng.standard_normal((2, 20))
    D = D / np.linalg.norm(D, axis=0)
    w = optimal_weights(D, mu=0.02 / 0.9)
    p = SCNParams(leak=50.0, dt=1e-3, mu=0.02 / 0.9)
    c = smoothed_white_noise(10_000, 2, width=30, amplitude=2000, block=1000, seed=8)
    run = simulate(w, c, p)
    assert 10 < mean_rate(run.spike_counts(), 10.0) < 20  # measured 15.9 Hz
    assert np.nanmean(ei_correlation(w, c, run)) > 0.7
    before = SCNWeights(F=w.F, fast=-0.2 * rng.uniform(size=(20, 20)) - 0.5 * np.eye(20), T=w.T, D=D)
    assert np.nanmean(ei_correlation(before, c, simulate(before, c, p))) < 0.0


def test_bad_inputs():
    with pytest.raises(ValueError, match="at least 2 trials"):
        fano_factor(np.ones((1, 3)))
    with pytest.raises(ValueError, match="duration"):
        mean_rate(np.ones(3), 0.0)
    with pytest.raises(ValueError, match="trials must have the shape"):
        cv_isi(np.zeros(3), np.zeros(3, int), np.zeros(2, int))
    with pytest.raises(ValueError, match="leading"):
        optimal_decoder(np.ones((10, 3)), np.ones((9, 2)))
