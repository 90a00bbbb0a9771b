"""Oracles for wrec.reservoir: one step against hand-written float64 updates, the batched runner against a plain
one-reservoir loop, analytic solutions (delay line, scalar linear recursion), and validation of every argument."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.signal import lfilter

from wrec import weights
from wrec.reservoir import (
    ESN,
    LeakyESN,
    Linear,
    Rate,
    esn_step,
    leaky_esn_step,
    linear_step,
    rate_step,
    run,
)

N, B, T = 12, 3, 60
RNG = np.random.default_rng(20240601)
W0 = weights.gaussian(N, spectral_radius=0.9, seed=1)  # shared (N, N)
WS = np.stack([weights.gaussian(N, spectral_radius=r, seed=10 + i) for i, r in enumerate([0.5, 0.9, 1.1])])
W_IN = RNG.standard_normal(N)  # (N,)
W_INS = RNG.standard_normal((B, N))  # (B, N)
U = RNG.uniform(-1, 1, T)  # (T,)
US = RNG.uniform(-1, 1, (B, T))  # (B, T)
BIAS = 0.2 * RNG.standard_normal(N)
BIASES = 0.2 * RNG.standard_normal((B, N))
CLASSES = {"linear": Linear, "esn": ESN, "leaky": LeakyESN, "rate": Rate}


# ---------------------------------------------------------------------------------- float64 references

def ref_step(kind, x, u, *, W, w_in, sigma=1.0, s=1.0, b=0.0, a=1.0, dt=0.1):
    """The update of ONE reservoir, as each model's docstring states it, x (N,), u scalar, written out in float64."""
    W = W.toarray() if sp.issparse(W) else np.asarray(W, np.float64)
    if kind == "linear":
        return s * (W @ x) + sigma * w_in * u
    if kind == "esn":
        return np.tanh(s * (W @ x) + sigma * w_in * u + b)
    if kind == "leaky":
        return (1.0 - a) * x + a * np.tanh(s * (W @ x) + sigma * w_in * u + b)
    if kind == "rate":  # x is the potential h
        return x + dt * (-x + s * (W @ np.tanh(x)) + sigma * w_in * u)
    raise AssertionError(kind)


def ref_run(kind, u, x0=None, observe="rate", **p):
    """A plain Python loop over time for one reservoir: X[t] = state after u[t]."""
    x = np.zeros(len(p["w_in"])) if x0 is None else np.asarray(x0, np.float64)
    out = []
    for ut in u:
        x = ref_step(kind, x, ut, **p)
        out.append(np.tanh(x) if kind == "rate" and observe == "rate" else x)
    return np.array(out)


def slice_b(kw: dict, b: int) -> dict:
    """Parameters of reservoir b of a batched model's keyword arguments, in ref_step's names."""
    W = kw["W"]
    W = W[b] if isinstance(W, list) or np.ndim(W) == 3 else W
    w_in = kw.get("w_in", W_IN)
    names = {"input_scale": "sigma", "recurrent_scale": "s", "bias": "b", "leak": "a", "dt": "dt"}
    p = {"W": W, "w_in": w_in[b] if np.ndim(w_in) == 2 else w_in}
    for field, short in names.items():
        if field in kw:
            v = kw[field]
            batched = np.ndim(v) == 2 if field == "bias" else np.ndim(v) == 1
            p[short] = v[b] if batched else v
    return p


# ---------------------------------------------------------------------------------- one step

STEP_CASES = [
    ("esn", esn_step, ESN, {"input_scale": 0.7, "recurrent_scale": 1.2}),
    ("esn", esn_step, ESN, {"input_scale": 0.7, "bias": BIAS}),
    ("esn", esn_step, ESN, {"bias": 0.3}),
    ("leaky", leaky_esn_step, LeakyESN, {"input_scale": 0.4, "leak": 0.3, "bias": BIAS}),
    ("leaky", leaky_esn_step, LeakyESN, {"leak": 1.0}),
    ("linear", linear_step, Linear, {"input_scale": 0.5, "recurrent_scale": 0.8}),
    ("rate", rate_step, Rate, {"input_scale": 0.5, "dt": 0.05}),
]


@pytest.mark.parametrize("kind, step, cls, kw", STEP_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(STEP_CASES)])
def test_one_step_matches_float64_reference(kind, step, cls, kw):
    model = cls(W0, w_in=W_IN, **kw)
    x = RNG.standard_normal((B, N))
    u = RNG.uniform(-1, 1, B)
    got, _ = step(model, x.copy(), u.copy())
    p = slice_b({"W": W0, "w_in": W_IN, **kw}, 0)
    want = np.stack([ref_step(kind, x[b], u[b], **p) for b in range(B)])
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-14)
    assert got.dtype == np.float64


@pytest.mark.parametrize("observe", ["rate", "potential"])
def test_rate_run_observes_rate_or_potential(observe):
    h0 = RNG.standard_normal(N)
    model = Rate(W0, w_in=W_IN, input_scale=0.5, dt=0.2, observe=observe)
    X = run(model, U[:5], x0=h0)
    h = h0.copy()
    for t in range(5):
        h = h + 0.2 * (-h + W0 @ np.tanh(h) + 0.5 * W_IN * U[t])
        np.testing.assert_allclose(X[t], np.tanh(h) if observe == "rate" else h, rtol=1e-13, atol=1e-14)


# ---------------------------------------------------------------------------------- alignment and analytic solutions

def test_state_at_t_has_seen_u_t():
    # W = 0: x_t = σ w_in u_t, so X[t] must be exactly the drive of u[washout + t].
    X = run(Linear(np.zeros((N, N)), w_in=W_IN, input_scale=0.6), U, washout=5)
    np.testing.assert_array_equal(X, (U[5:, None] * 0.6) * W_IN[None, :])


@pytest.mark.parametrize("washout", [0, 7])
def test_delay_line_reproduces_the_shifted_input(washout):
    n = 6
    e1 = np.eye(n)[0]
    X = run(Linear(weights.delay_line(n), w_in=e1, input_scale=1.0), U, washout=washout)
    want = np.zeros((T, n))
    for k in range(n):
        want[k:, k] = U[: T - k]  # x_t = (u_t, u_{t−1}, …, u_{t−n+1})
    np.testing.assert_array_equal(X, want[washout:])


@pytest.mark.parametrize("a", [0.9, -0.7, 1.0])
def test_scalar_linear_reservoir_matches_closed_form(a):
    x0 = 0.37
    X = run(Linear(np.array([[a]]), w_in=np.ones(1)), U, x0=np.array([x0]))
    t = np.arange(T)
    # x_t = a^{t+1} x_0 + Σ_{k=0}^{t} a^k u_{t−k}
    powers = np.tril(a ** (t[:, None] - t[None, :]).astype(float))
    closed = a ** (t + 1) * x0 + powers @ U
    np.testing.assert_allclose(X[:, 0], closed, rtol=1e-12, atol=1e-12)
    iir = lfilter([1.0], [1.0, -a], U, zi=[a * x0])[0]  # an independent IIR implementation of the same recursion
    np.testing.assert_allclose(X[:, 0], iir, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------- batched runner = plain loop

SP_LIST = [sp.csr_array(weights.sparse(N, 0.4, spectral_radius=r, seed=20 + i)) for i, r in enumerate([0.6, 0.9, 1.0])]
BATCH_CASES = {
    "shared W, (B,) recurrent_scale": ({"W": W0, "recurrent_scale": np.array([0.5, 1.0, 1.2])}, U),
    "(B, N, N) W": ({"W": WS}, U),
    "list of B sparse W": ({"W": SP_LIST}, U),
    "single sparse W, (B,) input_scale": ({"W": sp.csr_array(W0), "input_scale": np.array([0.1, 1.0, 2.0])}, U),
    "(B, N) w_in": ({"W": W0, "w_in": W_INS}, U),
    "(B, T) inputs": ({"W": W0, "input_scale": 0.8}, US),
    "(B,) input_scale": ({"W": W0, "input_scale": np.array([0.1, 1.0, 2.0])}, U),
    "everything batched": (
        {"W": WS, "w_in": W_INS, "recurrent_scale": np.array([1.0, 0.9, 0.8]),
         "input_scale": np.array([0.3, 0.6, 0.9])},
        US,
    ),
}


def check_batch_equals_loop(kind, kw, u, extra=None):
    extra = extra or {}
    kw = {"w_in": W_IN, **kw, **extra}
    X = run(CLASSES[kind](**kw), u)
    assert X.shape == (B, T, N)
    for b in range(B):
        want = ref_run(kind, u[b] if u.ndim == 2 else u, **slice_b(kw, b))
        np.testing.assert_allclose(X[b], want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", sorted(CLASSES))
@pytest.mark.parametrize("case", sorted(BATCH_CASES))
def test_batched_runner_equals_plain_loop(case, kind):
    kw, u = BATCH_CASES[case]
    check_batch_equals_loop(kind, kw, u)


def test_batched_leak_equals_plain_loop():
    check_batch_equals_loop("leaky", {"W": W0}, U, {"leak": np.array([0.1, 0.5, 1.0]), "bias": 0.1})


def test_batched_bias_and_leak_with_everything_batched():
    kw = {"W": WS, "w_in": W_INS, "recurrent_scale": np.array([1.0, 0.9, 0.8]), "bias": BIASES,
          "leak": np.array([0.2, 0.6, 0.9]), "input_scale": np.array([0.3, 0.6, 0.9])}
    check_batch_equals_loop("leaky", kw, US)


def test_batched_rate_potential_equals_plain_loop():
    kw = {"W": WS, "w_in": W_INS, "dt": 0.3, "observe": "potential"}
    X = run(Rate(**kw), US)
    for b in range(B):
        want = ref_run("rate", US[b], observe="potential", **slice_b(kw, b))
        np.testing.assert_allclose(X[b], want, rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------------- dtype, readout, washout, shapes

@pytest.mark.parametrize("W", [W0, WS, SP_LIST], ids=["shared", "stack", "sparse-list"])
def test_float32_agrees_with_float64_and_returns_float32(W):
    model = ESN(W, w_in=W_IN, input_scale=0.8)
    X64 = run(model, US)
    X32 = run(model, US, dtype=np.float32)
    assert X32.dtype == np.float32 and X64.dtype == np.float64
    err = np.max(np.abs(X32 - X64))
    assert 0 < err < 1e-4  # nonzero: the float32 run really was float32
    X32b = run(ESN(W, w_in=W_IN, input_scale=0.8, dtype=np.float32), US)
    np.testing.assert_array_equal(X32b, X32)


def test_float32_leaky_with_scalar_leak_stays_float32():
    model = LeakyESN(W0, w_in=W_IN, leak=0.3, dtype=np.float32)
    x = np.zeros((B, N), np.float32)
    assert leaky_esn_step(model, x, np.ones(B, np.float32))[0].dtype == np.float32


def test_float32_leaky_with_batched_leak_stays_float32():
    model = LeakyESN(W0, w_in=W_IN, leak=np.array([0.2, 0.5, 0.9]), dtype=np.float32)
    x = np.zeros((B, N), np.float32)
    assert leaky_esn_step(model, x, np.ones(B, np.float32))[0].dtype == np.float32


@pytest.mark.parametrize("u", [U, US], ids=["unbatched", "batched"])
def test_readout_selects_columns(u):
    model = ESN(W0, w_in=W_IN)
    X = run(model, u)
    np.testing.assert_array_equal(run(model, u, readout=4), X[..., :4])
    idx = np.array([7, 0, 3])
    np.testing.assert_array_equal(run(model, u, readout=idx), X[..., idx])
    np.testing.assert_array_equal(run(model, u, readout=np.array([-1])), X[..., [N - 1]])
    np.testing.assert_array_equal(run(model, u, readout=N), X)


def test_washout_drops_the_first_steps():
    model = LeakyESN(WS, w_in=W_IN, leak=0.5)
    X = run(model, U)
    np.testing.assert_array_equal(run(model, U, washout=10), X[:, 10:])
    np.testing.assert_array_equal(run(model, U, washout=T - 1), X[:, T - 1 :])


def test_unbatched_in_unbatched_out_batched_in_batched_out():
    assert run(ESN(W0, w_in=W_IN), U, washout=10, readout=5).shape == (T - 10, 5)
    assert run(ESN(W0, w_in=W_IN), US, washout=10, readout=5).shape == (B, T - 10, 5)
    assert run(ESN(WS, w_in=W_IN), U, washout=10, readout=5).shape == (B, T - 10, 5)
    # A batch of one is still batched.
    assert run(ESN(W0, w_in=W_IN), U[None], washout=10).shape == (1, T - 10, N)


def test_custom_step_with_x0_matches_closed_form():
    def step(c, x, u, *, rng=None):  # x_t = c x_{t−1} + u_t on every neuron
        x = c * x + u[:, None]
        return x, x

    x0 = np.array([1.0, -2.0, 0.5])
    X = run(0.5, U, step=step, x0=x0)
    t = np.arange(T)[:, None]
    want = 0.5 ** (t + 1) * x0 + lfilter([1.0], [1.0, -0.5], U)[:, None]
    np.testing.assert_allclose(X, want, rtol=1e-13, atol=1e-13)
    Xb = run(0.5, US, step=step, x0=np.tile(x0, (B, 1)), washout=3, readout=np.array([2]))
    assert Xb.shape == (B, T - 3, 1)
    for b in range(B):
        want_b = 0.5 ** (np.arange(T) + 1) * x0[2] + lfilter([1.0], [1.0, -0.5], US[b])
        np.testing.assert_allclose(Xb[b, :, 0], want_b[3:], rtol=1e-13, atol=1e-13)


def test_x0_for_builtin_model_is_the_initial_state():
    x0 = RNG.standard_normal(N)
    X = run(ESN(W0, w_in=W_IN, bias=BIAS), U, x0=x0)
    np.testing.assert_allclose(X, ref_run("esn", U, x0=x0, W=W0, w_in=W_IN, b=BIAS), rtol=0, atol=1e-12)


def test_seed_draws_w_in_reproducibly():
    a, b, c = ESN(W0, seed=3), ESN(W0, seed=3), ESN(W0, seed=4)
    np.testing.assert_array_equal(a.w_in, weights.input_weights(N, seed=3))
    np.testing.assert_array_equal(a.w_in, b.w_in)
    assert np.max(np.abs(a.w_in - c.w_in)) > 1e-3
    np.testing.assert_array_equal(run(a, U), run(b, U))
    np.testing.assert_array_equal(ESN(W0, seed=np.random.default_rng(3)).w_in, a.w_in)


# ---------------------------------------------------------------------------------- blow-up

@pytest.mark.parametrize(
    "model, T_",
    [
        (Linear(weights.gaussian(N, spectral_radius=1.5, seed=0), w_in=W_IN), 2000),
        (Linear(weights.gaussian(N, spectral_radius=1.5, seed=0), w_in=W_IN, dtype=np.float32), 400),
        (Linear(SP_LIST, w_in=W_IN, recurrent_scale=1.5 / 0.6), 1000),
        (Rate(W0, w_in=W_IN, dt=2.5), 2000),  # Euler with Δ > 2 is unstable: factor (1 − Δ) = −1.5
    ],
    ids=["linear64", "linear32", "sparse-list", "rate-euler"],
)
def test_unstable_reservoir_raises_blew_up_without_warnings(model, T_):
    u = np.random.default_rng(0).uniform(-1, 1, T_)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="blew up"):
            run(model, u)


def test_stable_long_run_is_finite():
    X = run(Linear(weights.gaussian(N, spectral_radius=0.99, seed=0), w_in=W_IN), np.ones(3000))
    assert np.all(np.isfinite(X))


# ---------------------------------------------------------------------------------- bad input

U_NAN = U.copy()
U_NAN[3] = np.nan
U_INF = U.copy()
U_INF[[1, 2]] = np.inf
W_NAN = W0.copy()
W_NAN[0, 1] = np.nan
LIN = Linear(W0, w_in=W_IN)
LIN_B2 = Linear(WS[:2], w_in=W_IN)

BAD = [
    (lambda: run(LIN, U_NAN), ValueError, r"^u has 1 non-finite"),
    (lambda: run(LIN, U_INF), ValueError, r"^u has 2 non-finite"),
    (lambda: run(LIN, np.zeros((2, 3, 4))), ValueError, r"^u must be 1-D or 2-D"),
    (lambda: run(LIN, 1.0), ValueError, r"^u must be 1-D or 2-D"),
    (lambda: run(LIN, U, washout=T), ValueError, r"^washout must be smaller than the input length T = 60"),
    (lambda: run(LIN, U, washout=-1), ValueError, r"^washout must be >= 0"),
    (lambda: run(LIN, U, washout=2.0), TypeError, r"^washout must be an int"),
    (lambda: run(LIN, U, readout=0), ValueError, r"^readout must be >= 1"),
    (lambda: run(LIN, U, readout=N + 1), ValueError, r"^readout must be <= 12"),
    (lambda: run(LIN, U, readout=np.array([0, N])), ValueError, r"^readout indices must lie in \[0, 12\)"),
    (lambda: run(LIN, U, readout=np.array([-N - 1])), ValueError, r"^readout indices"),
    (lambda: run(LIN, U, readout=np.array([0.5])), ValueError, r"^readout must be None"),
    (lambda: run(LIN, U, readout=np.zeros((2, 2), int)), ValueError, r"^readout must be None"),
    (lambda: run(LIN_B2, US), ValueError, r"describes 2 reservoirs but u has 3 input streams"),
    (lambda: run(LIN, U, dtype=np.float16), TypeError, r"^dtype must be numpy.float32 or numpy.float64"),
    (lambda: run(1.0, U, step=lambda p, x, u, rng=None: (x, x), x0=np.zeros(2),
                 dtype=np.int32), TypeError, r"^dtype must be"),
    (lambda: run(1.0, U, step=lambda p, x, u: x), ValueError, r"^x0 is required"),
    (lambda: run(object(), U), TypeError, r"^model must be one of"),
    (lambda: Linear(WS, w_in=W_INS[:2]), ValueError, r"batch axes of the model's fields disagree: sizes \[2, 3\]"),
    (lambda: Linear(W0, w_in=W_IN, recurrent_scale=np.ones(2), input_scale=np.ones(3)), ValueError,
     r"batch axes .* disagree"),
    (lambda: LeakyESN(SP_LIST, w_in=W_IN, leak=np.array([0.5, 0.5])), ValueError, r"batch axes .* disagree"),
    (lambda: ESN(W0, w_in=W_IN, bias=BIASES[:2], input_scale=np.ones(3)), ValueError, r"batch axes .* disagree"),
    (lambda: LeakyESN(W0, w_in=W_IN, leak=0.0), ValueError, r"^leak must lie in \(0, 1\]"),
    (lambda: LeakyESN(W0, w_in=W_IN, leak=1.5), ValueError, r"^leak must lie in \(0, 1\]"),
    (lambda: LeakyESN(W0, w_in=W_IN, leak=np.array([0.5, -0.1, 1.0])), ValueError, r"^leak must lie"),
    (lambda: LeakyESN(W0, w_in=W_IN, leak=np.nan), ValueError, r"^leak has 1 non-finite"),
    (lambda: ESN(W0, w_in=W_IN, activation=3), TypeError, r"^activation must be callable"),
    (lambda: Rate(W0, w_in=W_IN, activation="tanh"), TypeError, r"^activation must be callable"),
    (lambda: ESN(W0, w_in=W_IN, dtype=np.int64), TypeError, r"^dtype must be numpy.float32 or numpy.float64"),
    (lambda: ESN(W0, w_in=W_IN, dtype=np.complex128), TypeError, r"^dtype must be"),
    (lambda: ESN(np.ones((3, 4)), w_in=np.ones(4)), ValueError, r"^W must be square"),
    (lambda: ESN(np.ones(4), w_in=np.ones(4)), ValueError, r"^W must be 2-D or 3-D"),
    (lambda: ESN(W_NAN, w_in=W_IN), ValueError, r"^W has 1 non-finite"),
    (lambda: ESN(sp.csr_array(np.ones((3, 4))), w_in=np.ones(4)), ValueError, r"^W must be a non-empty square"),
    (lambda: ESN(sp.csr_array(W_NAN), w_in=W_IN), ValueError, r"^W has non-finite"),
    (lambda: ESN([sp.csr_array(W0), sp.csr_array(W_NAN)], w_in=W_IN), ValueError, r"^W has non-finite"),
    (lambda: ESN([W0, W_NAN], w_in=W_IN), ValueError, r"^W\[i\] has 1 non-finite"),
    (lambda: ESN([sp.csr_array(W0), sp.eye_array(3)], w_in=W_IN), ValueError, r"^all matrices in W"),
    (lambda: ESN([], w_in=W_IN), ValueError, r"^W must be 2-D or 3-D"),
    (lambda: ESN(W0, w_in=np.ones(N + 1)), ValueError, r"^w_in must have N = 12"),
    (lambda: ESN(W0, w_in=W_IN * np.nan), ValueError, r"^w_in has 12 non-finite"),
    (lambda: ESN(W0, w_in=np.ones((2, 2, N))), ValueError, r"^w_in must be 1-D or 2-D"),
    (lambda: ESN(W0, w_in=W_IN, bias=np.ones(N - 1)), ValueError, r"^bias must be a scalar, \(N,\) or \(B, N\)"),
    (lambda: ESN(W0, w_in=W_IN, input_scale=np.ones((2, 2))), ValueError, r"^input_scale must be 0-D or 1-D"),
    (lambda: ESN(W0, w_in=W_IN, recurrent_scale=np.nan), ValueError, r"^recurrent_scale has 1 non-finite"),
    (lambda: ESN(W0, seed="x"), TypeError, r"^seed must be"),
    (lambda: Rate(W0, w_in=W_IN, dt=0.0), ValueError, r"^dt must be > 0"),
    (lambda: Rate(W0, w_in=W_IN, observe="voltage"), ValueError, r"^observe must be 'rate' or 'potential'"),
]


@pytest.mark.parametrize("call, exc, match", BAD, ids=[f"{i}:{m[:40]}" for i, (_, _, m) in enumerate(BAD)])
def test_bad_input_raises_naming_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


@pytest.mark.parametrize("x0", [np.zeros(N + 1), np.zeros((2, N))], ids=["wrong-N", "wrong-B"])
def test_bad_x0_raises_naming_x0(x0):
    with pytest.raises(ValueError, match=r"x0"):
        run(Linear(WS, w_in=W_IN), U, x0=x0)


def test_nested_list_W_is_one_matrix():
    X = run(Linear([[0.5, 0.0], [0.0, 0.25]], w_in=[1.0, 1.0]), np.ones(3))
    np.testing.assert_allclose(X, [[1.0, 1.0], [1.5, 1.25], [1.75, 1.3125]], rtol=1e-15)
