"""Local learning of F and Ω (wrec.spiking.learning; Brendel et al. 2020): single-spike updates, learning targets."""

from __future__ import annotations

import numpy as np
import pytest

from wrec.spiking import SCNWeights, simulate
from wrec.spiking.learning import (
    AutoencoderLearning,
    autoencoder_update,
    feedforward_update,
    initial_weights,
    learn_autoencoder,
    recurrent_update,
)
from wrec.spiking.metrics import alignment_error
from wrec.tasks import smoothed_white_noise


def hand_update(F, fast, k, V, r, x, eps_o, eps_f, alpha, beta, mu):
    """Brendel et al. 2020's rules written out element by element in float64 (independent of the vectorised code)."""
    n, j = F.shape
    F_new = [[float(F[i, d]) for d in range(j)] for i in range(n)]
    O_new = [[float(fast[i, m]) for m in range(n)] for i in range(n)]
    for i in range(n):
        O_new[i][k] = float(fast[i, k]) - eps_o * (beta * (float(V[i]) + mu * float(r[i])) + float(fast[i, k]))
    O_new[k][k] -= eps_o * mu
    for d in range(j):
        F_new[k][d] = float(F[k, d]) + eps_f * (alpha * float(x[d]) - float(F[k, d]))
    return np.array(F_new), np.array(O_new)


@pytest.mark.parametrize("preset", ["brendel2020_fig2", "brendel2020_si"])
def test_single_spike_update_matches_hand_computation(preset):
    rule = AutoencoderLearning.preset(preset)
    rng = np.random.default_rng(3)
    w = initial_weights(rule, rng)
    V, r, x = rng.standard_normal(rule.n), rng.random(rule.n) * 3, rng.standard_normal(rule.j)
    k = 7
    F0, O0 = w.F.copy(), w.fast.copy()
    new = autoencoder_update(w, k, V, r, x, rule)
    F_ref, O_ref = hand_update(F0, O0, k, V, r, x, rule.eps_fast, rule.eps_ff, rule.alpha, rule.beta, rule.mu)
    np.testing.assert_allclose(new.fast, O_ref, rtol=0, atol=1e-14)
    np.testing.assert_allclose(new.F, F_ref, rtol=0, atol=1e-14)
    # only column k of Ω and row k of F change; the inputs are untouched and T is kept
    changed_o = np.argwhere(new.fast != O0)
    assert set(changed_o[:, 1].tolist()) == {k}
    assert set(np.argwhere(new.F != F0)[:, 0].tolist()) == {k}
    np.testing.assert_array_equal(w.F, F0)
    np.testing.assert_array_equal(w.fast, O0)
    np.testing.assert_array_equal(new.T, w.T)
    # the two component rules agree with the combined one
    np.testing.assert_array_equal(recurrent_update(O0, V, r, k, rule.eps_fast, rule.beta, rule.mu), new.fast)
    np.testing.assert_array_equal(feedforward_update(F0, x, k, rule.eps_ff, rule.alpha), new.F)


def test_fixed_point_of_the_recurrent_rule():
    """With V = −Ω_{:,k}/β − μr the recurrent rule only moves the reset: Ω_kk ← Ω_kk − εμ."""
    rng = np.random.default_rng(0)
    fast, r = -rng.random((5, 5)), rng.random(5)
    beta, mu, eps = 1.25, 0.02, 1e-2
    V = -fast[:, 2] / beta - mu * r
    new = recurrent_update(fast, V, r, 2, eps, beta, mu)
    expected = fast.copy()
    expected[2, 2] -= eps * mu
    np.testing.assert_allclose(new, expected, rtol=0, atol=1e-15)


def test_defaults_are_the_brendel2020_fig2_preset():
    rule = AutoencoderLearning.preset("brendel2020_fig2")
    assert rule == AutoencoderLearning()
    assert (rule.n, rule.j, rule.leak, rule.dt) == (20, 2, 50.0, 1e-3)
    assert (rule.eps_fast, rule.eps_ff, rule.alpha, rule.threshold) == (1e-3, 1e-4, 0.18, 0.5)
    assert rule.beta == pytest.approx(1 / 0.9) and rule.mu == pytest.approx(0.02 / 0.9) and rule.nu == 0
    assert (rule.mode, rule.sigma_v, rule.sigma_t) == ("single", 1e-3, 1e-2)
    params = rule.scn_params()
    assert (params.leak, params.dt, params.mode, params.sigma_v, params.sigma_t) == (50.0, 1e-3, "single",
                                                                                      1e-3, 1e-2)


def test_initial_weights():
    rule = AutoencoderLearning()
    w = initial_weights(rule, 0)
    np.testing.assert_allclose(np.linalg.norm(w.F, axis=1), 1.0, rtol=0, atol=1e-14)
    off = w.fast[~np.eye(rule.n, dtype=bool)]
    assert np.all((off <= 0) & (off >= -0.2))
    assert np.all((np.diag(w.fast) <= -0.5) & (np.diag(w.fast) >= -0.7))
    np.testing.assert_array_equal(w.T, 0.5)
    np.testing.assert_array_equal(initial_weights(rule, 0).fast, w.fast)  # seeded
    si = initial_weights(AutoencoderLearning.preset("brendel2020_si"), 1)
    np.testing.assert_allclose(np.linalg.norm(si.F, axis=1), 0.8, rtol=0, atol=1e-14)
    np.testing.assert_array_equal(si.fast, -0.5 * np.eye(rule.n))
    # a random Ω₀ is far from −F Fᵀ (a separate simulation: err_Ω ≈ 0.95 before learning)
    errs = [alignment_error(initial_weights(rule, s).fast, initial_weights(rule, s).F) for s in range(50)]
    assert 0.9 < np.median(errs) < 0.99


def test_learn_is_seeded_and_records_checkpoints():
    rule = AutoencoderLearning()
    a = learn_autoencoder(rule, 2000, seed=4, checkpoints=[0, 500, 2000])
    b = learn_autoencoder(rule, 2000, seed=4, checkpoints=[0, 500, 2000])
    np.testing.assert_array_equal(a.steps, [0, 500, 2000])
    np.testing.assert_array_equal(a.fast, b.fast)
    np.testing.assert_array_equal(a.weights.F, a.F[-1])
    assert a.F.shape == (3, 20, 2) and a.fast.shape == (3, 20, 20)
    assert np.isnan(a.rate[0]) and np.all(a.rate[1:] > 0)
    assert a.n_spikes == pytest.approx(a.rate[1] * 20 * 0.5 + a.rate[2] * 20 * 1.5)
    np.testing.assert_allclose(a.err_fast, [alignment_error(o, f) for o, f in zip(a.fast, a.F, strict=True)])
    logs = learn_autoencoder(rule, 1000, seed=4, checkpoints=5).steps
    assert logs[0] == 0 and logs[-1] == 1000 and np.all(np.diff(logs) > 0)
    # weights0 is used as given, and learning with zero rates leaves it unchanged
    frozen = AutoencoderLearning(eps_fast=0.0, eps_ff=0.0)
    w0 = initial_weights(frozen, 1)
    c = learn_autoencoder(frozen, 500, seed=2, weights0=w0, checkpoints=[0, 500])
    np.testing.assert_array_equal(c.weights.fast, w0.fast)
    np.testing.assert_array_equal(c.weights.F, w0.F)


@pytest.mark.parametrize(("mode", "sigma_v", "sigma_t", "arrays"),
                         [("single", 1e-3, 1e-2, False), ("sequential", 1e-3, 1e-2, False),
                          ("single", 0.0, 1e-2, False), ("single", 1e-3, 0.0, True), ("sequential", 0.0, 0.0, True)])
def test_learning_loop_equals_the_public_step_and_rules(mode, sigma_v, sigma_t, arrays):
    """learn_autoencoder's in-place kernel gives bit for bit what scn.step + autoencoder_update give (with either
    noise off too, and with the input given as arrays)."""
    from dataclasses import replace

    from wrec.spiking.learning import autoencoder_update
    from wrec.spiking.scn import SCN, initial_state, step
    from wrec.tasks.signals import leaky_integral

    rule = replace(AutoencoderLearning(), mode=mode, sigma_v=sigma_v, sigma_t=sigma_t)
    if arrays:  # the same input as the default stream's first chunk, given as (c, x)
        c0 = smoothed_white_noise(3000, rule.j, seed=np.random.default_rng(9).spawn(3)[1])
        given = (c0, leaky_integral(c0, rule.leak, rule.dt))
        fast = learn_autoencoder(rule, 3000, seed=9, checkpoints=[0, 3000], inputs=given)
    else:
        fast = learn_autoencoder(rule, 3000, seed=9, checkpoints=[0, 3000])
    rng_init, rng_input, rng_noise = np.random.default_rng(9).spawn(3)
    w = initial_weights(rule, rng_init)
    c = smoothed_white_noise(3000, rule.j, width=rule.input_width, amplitude=rule.input_amplitude,
                             block=rule.input_block, seed=rng_input)
    x = leaky_integral(c, rule.leak, rule.dt)
    state, spikes = initial_state(w), 0
    for t in range(3000):
        def hook(_b, k, V, r, t=t):
            nonlocal w
            w = autoencoder_update(w, k, V, r, x[t], rule)
            return w

        state, fired = step(SCN(w, rule.scn_params()), state, c[t], rng=rng_noise, on_spike=hook)
        spikes += fired.size
    np.testing.assert_array_equal(fast.weights.fast, w.fast)
    np.testing.assert_array_equal(fast.weights.F, w.F)
    assert fast.n_spikes == spikes > 100


@pytest.mark.parametrize("mode", ["single", "sequential"])
def test_the_pure_learning_step_gives_the_same_learning(mode):
    """autoencoder_step (the pure step, weights in its state) looped by dynamics.run learns what learn_autoencoder's
    in-place kernel learns, bit for bit."""
    from dataclasses import replace

    from wrec import dynamics
    from wrec.spiking.learning import AutoencoderInput, AutoencoderState, autoencoder_step

    rule = replace(AutoencoderLearning(), mode=mode)
    trace = learn_autoencoder(rule, 2000, seed=3, checkpoints=[0, 2000])
    rng_init, rng_input, rng_noise = np.random.default_rng(3).spawn(3)
    n = rule.n
    state = AutoencoderState(np.zeros((1, n)), np.zeros((1, n)), np.full(1, -1, dtype=np.int64),
                             initial_weights(rule, rng_init), 0, 0, 0)
    out = dynamics.run(autoencoder_step, rule, state, AutoencoderInput(rule, rng_input), 2000, rng=rng_noise).state
    np.testing.assert_array_equal(out.weights.fast, trace.weights.fast)
    np.testing.assert_array_equal(out.weights.F, trace.weights.F)
    assert out.n_spikes == trace.n_spikes > 500


@pytest.mark.parametrize(("mode", "n_spikes", "fast_37", "F_51", "err_1000"), [
    ("single", 2142, -0.13672581968377057, 0.9673813854505449, 0.5773760232285202),
    ("sequential", 3079, -0.08739819411348053, 0.9655649392784486, 0.5160217137525686)])
def test_learning_gives_the_numbers_of_the_previous_implementation(mode, n_spikes, fast_37, F_51, err_1000):
    """Values saved from learn_autoencoder before its in-place kernel (the loop of scn.step + autoencoder_update,
    git ed68544): seed 9, 3000 steps. The kernel repeats each operation, so they agree to the last bit here."""
    from dataclasses import replace

    trace = learn_autoencoder(replace(AutoencoderLearning(), mode=mode), 3000, seed=9, checkpoints=[0, 1000, 3000])
    assert trace.n_spikes == n_spikes
    assert trace.weights.fast[3, 7] == pytest.approx(fast_37, rel=1e-12, abs=0)
    assert trace.weights.F[5, 1] == pytest.approx(F_51, rel=1e-12, abs=0)
    assert trace.err_fast[1] == pytest.approx(err_1000, rel=1e-12, abs=0)


def test_learning_equals_the_published_loop_whose_r_decays_after_the_spikes():
    """Brendel et al. 2020's Fig. 2 code (Learning.m, written out here step by step) decays r after the spikes; scn.step
    decays it before them. The rule sees the same r either way (both are a·(r + o) recursions of the spikes up to
    the previous step), so without noise and on the same input the two loops fire the same spikes and learn the same
    weights (to round-off): the order is not why learning could differ from the published curve."""
    rule = AutoencoderLearning(sigma_v=0.0, sigma_t=0.0)
    steps, a = 5000, 1.0 - rule.leak * rule.dt
    w0 = initial_weights(rule, 1)
    c = smoothed_white_noise(steps, rule.j, seed=3)
    x = np.zeros((steps, rule.j))
    for t in range(steps):  # x after c[t], as the published loop updates it before the spike
        x[t] = a * (x[t - 1] if t else 0.0) + rule.dt * c[t]
    trace = learn_autoencoder(rule, steps, weights0=w0, inputs=(c, x), checkpoints=[0, steps])
    F, fast = w0.F.copy(), w0.fast.copy()
    V, r, spiked, k, n_spikes = np.zeros(rule.n), np.zeros(rule.n), False, 0, 0
    for t in range(steps):
        V = a * V + rule.dt * (F @ c[t]) + (fast[:, k] if spiked else 0.0)
        k = int(np.argmax(V - rule.threshold))
        spiked = V[k] - rule.threshold >= 0
        if spiked:
            n_spikes += 1
            F[k] += rule.eps_ff * (rule.alpha * x[t] - F[k])
            fast[:, k] -= rule.eps_fast * (rule.beta * (V + rule.mu * r) + fast[:, k] + rule.mu * np.eye(rule.n)[k])
            r[k] += 1.0
        r = a * r  # after the spike
    assert trace.n_spikes == n_spikes > 2000
    np.testing.assert_allclose(trace.weights.fast, fast, rtol=0, atol=1e-12)
    np.testing.assert_allclose(trace.weights.F, F, rtol=0, atol=1e-12)


@pytest.mark.parametrize("stop_after", [1, 700, 2600])  # before the 1st checkpoint, mid-chunk, next chunk
def test_interrupted_learning_resumes_to_the_same_numbers(tmp_path, monkeypatch, stop_after):
    """Killed after ``stop_after`` steps, a rerun from the checkpoint file equals the uninterrupted run
    bit for bit (weights, trace, spike count), across an input-chunk boundary too."""
    from wrec.spiking import learning

    rule = AutoencoderLearning(input_block=200)
    monkeypatch.setattr(learning, "_INPUT_CHUNK_BLOCKS", 10)  # chunks of 2000 steps: the run crosses one
    whole = learn_autoencoder(rule, 3000, seed=5, checkpoints=[0, 500, 1000, 2500, 3000])
    path = tmp_path / "ck.npz"
    real_step, calls = learning._learning_kernel, [0]

    def dying_step(*args, **kwargs):
        calls[0] += 1
        if calls[0] > stop_after:
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(learning, "_learning_kernel", dying_step)
    with pytest.raises(KeyboardInterrupt):
        learn_autoencoder(rule, 3000, seed=5, checkpoints=[0, 500, 1000, 2500, 3000], checkpoint=path)
    monkeypatch.setattr(learning, "_learning_kernel", real_step)
    resumed = learn_autoencoder(rule, 3000, seed=5, checkpoints=[0, 500, 1000, 2500, 3000], checkpoint=path)
    for name in ("steps", "err_fast", "rate", "F", "fast"):
        np.testing.assert_array_equal(getattr(resumed, name), getattr(whole, name))
    np.testing.assert_array_equal(resumed.weights.fast, whole.weights.fast)
    assert resumed.n_spikes == whole.n_spikes
    with pytest.raises(ValueError, match="different learning run"):
        learn_autoencoder(rule, 3000, seed=6, checkpoints=[0, 500, 1000, 2500, 3000], checkpoint=path)


def _rate(w: SCNWeights, rule: AutoencoderLearning, steps: int, seed: int) -> float:
    """Mean rate (Hz) of a network with frozen weights on fresh learning input (smoothed white noise)."""
    c = smoothed_white_noise(steps, rule.j, seed=seed)
    run = simulate(w, c, rule.scn_params(), seed=seed + 1, record=("spikes",))
    return run.neurons.size / (rule.n * steps * rule.dt)


@pytest.mark.slow
@pytest.mark.parametrize("replicate", [0, 1, 2])
def test_quick_learning_target(replicate):
    """At --quick size, for every replicate of the quick run (the experiment's own seeds): err_Ω falls from ≈ 0.95 to
    < 0.02 in 7·10⁵ steps (≈ 10 s), and the rate falls (37 → ≈ 15 Hz).

    Measured on replicates 0–15 at 7·10⁵ steps: 0.0029–0.0153 (replicates 0, 1, 2: 0.0153, 0.0055, 0.0091); at 2·10⁵,
    12 of 16 were below 0.02: the pace is set by the random initial F (tests/test_spike_coding_autoencoder.py)."""
    from wrec import sweep
    from wrec.experiments.spike_coding_autoencoder import Config

    config = Config.quick()
    rule = config.rule()
    trace = learn_autoencoder(rule, config.n_steps, seed=sweep.task_rng(config.seed, replicate, "learn"),
                              checkpoints=12)
    assert 0.9 < trace.err_fast[0] < 1.0
    assert trace.err_fast[-1] < 0.02
    assert np.all(np.diff(trace.err_fast[trace.steps >= 1000]) < 0)
    w0 = SCNWeights(F=trace.F[0], fast=trace.fast[0], T=trace.weights.T)
    before, after = _rate(w0, rule, 20_000, 9), _rate(trace.weights, rule, 20_000, 9)
    assert after < 0.7 * before
    assert 10 < after < 25


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"eps_fast": -1e-3}, "eps_fast"), ({"eps_ff": -1e-4}, "eps_ff"), ({"threshold": 0.0}, "threshold"),
     ({"mode": "batch"}, "mode"), ({"dt": 1e-2}, "dt"), ({"sigma_t": -1.0}, "sigma_t")],
)
def test_bad_parameters_raise(kwargs, name):
    with pytest.raises(ValueError, match=name):
        AutoencoderLearning(**kwargs)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="preset"):
        AutoencoderLearning.preset("brendel2021")
    rule = AutoencoderLearning()
    w = initial_weights(rule, 0)
    V, r, x = np.zeros(20), np.zeros(20), np.zeros(2)
    with pytest.raises(ValueError, match="eps"):
        recurrent_update(w.fast, V, r, 0, -1e-3, 1.0, 0.0)
    with pytest.raises(ValueError, match="eps"):
        feedforward_update(w.F, x, 0, -1e-3, 0.18)
    with pytest.raises(ValueError, match="k"):
        recurrent_update(w.fast, V, r, 20, 1e-3, 1.0, 0.0)
    with pytest.raises(ValueError, match="V"):
        recurrent_update(w.fast, np.zeros(3), r, 0, 1e-3, 1.0, 0.0)
    with pytest.raises(ValueError, match="x"):
        autoencoder_update(w, 0, V, r, np.zeros(3), rule)
    with pytest.raises(ValueError, match="n_steps"):
        learn_autoencoder(rule, 0)
    with pytest.raises(ValueError, match="checkpoints"):
        learn_autoencoder(rule, 10, checkpoints=[0, 11])
    with pytest.raises(ValueError, match="weights0"):
        learn_autoencoder(rule, 10, weights0=initial_weights(AutoencoderLearning(n=5), 0))
    with pytest.raises(TypeError, match="rule"):
        learn_autoencoder("brendel2020_fig2", 10)
