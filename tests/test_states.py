"""wrec.states.state_matrix: every family's states against an oracle (an ESN's own run, linear-reservoir theory, the
family's own simulator or step loop, delay lines whose memory is known exactly), chunking, and the errors."""

import copy
import doctest
import subprocess
import sys

import numpy as np
import pytest

import wrec.states
from wrec import reservoir, weights
from wrec.capacity import memory_capacity
from wrec.capacity.theory import linear_memory_curve
from wrec.spiking import SCN, SCNParams, input_current, optimal_weights, simulate
from wrec.states import state_matrix
from wrec.tasks.signals import leaky_integral


def uniform(T, seed=0):
    return np.random.default_rng(seed).uniform(-1.0, 1.0, T)


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def adjusted(mc):
    """(m̂_k − e_k)/(1 − e_k): the raw curve less its finite-sample floor (what threshold=None leaves in raw)."""
    return (mc.raw - mc.null) / (1 - mc.null)


# --- a torch network that is an ESN has the ESN's states and memory ---------------------------------------------

@pytest.mark.parametrize("batch_first", [False, True])
def test_torch_rnn_loaded_with_an_esn_gives_its_states_and_memory_capacity(torch, batch_first):
    N, T, washout, sigma = 40, 4000, 200, 0.5
    W = weights.gaussian(N, spectral_radius=0.95, seed=1)
    w_in = weights.input_weights(N, seed=2)
    u = uniform(T)
    esn = reservoir.ESN(W, w_in=w_in, input_scale=sigma)
    # h_t = tanh(W_ih u_t + W_hh h_{t−1}) with W_ih = σ w_in, W_hh = W is the ESN x_t = tanh(W x_{t−1} + σ w_in u_t)
    rnn = torch.nn.RNN(1, N, bias=False, batch_first=batch_first, dtype=torch.float64)
    with torch.no_grad():
        rnn.weight_hh_l0.copy_(torch.as_tensor(W))
        rnn.weight_ih_l0.copy_(torch.as_tensor(sigma * w_in[:, None]))
    X = reservoir.run(esn, u, washout=washout)
    Y = state_matrix(rnn, u, washout=washout, chunk=333)
    np.testing.assert_allclose(Y, X, rtol=0, atol=1e-10)
    np.testing.assert_array_equal(state_matrix(esn, u, washout=washout), X)
    a, b = memory_capacity(X, u[washout:], 80), memory_capacity(Y, u[washout:], 80)
    np.testing.assert_allclose(b.per_delay, a.per_delay, rtol=0, atol=1e-10)
    assert b.total == pytest.approx(a.total, abs=1e-10) and a.total > 5


# --- SSMs are linear reservoirs: their memory curve is the Krylov curve of the equivalent real W ------------------

# Sampling error of one delay's estimate at T rows: Var(R̂²) ≈ 4R²(1 − R²)²/T (the delta method for a multiple
# correlation), at most 0.59/T (R² = 1/3): sd ≤ 0.0054 at T = 2·10⁴. The curves are compared after removing the
# finite-sample floor e_k ≈ r/T; 0.03 ≈ 5.5 sd bounds the largest of ~100 (correlated) per-delay errors.
T_LINEAR, TOL_LINEAR = 20_000, 0.03


def test_linear_diagonal_ssm_has_the_memory_curve_of_its_diagonal_reservoir(torch):
    from wrec.nn import LinearDiagonalSSM

    decay = np.geomspace(0.05, 1.0, 8)
    model = LinearDiagonalSSM(1, 8, 1, init_decay=decay, seed=0, dtype=torch.float64)
    lam = model.eigenvalues().detach().numpy()
    np.testing.assert_allclose(lam, np.exp(-decay), rtol=1e-12)
    washout, K = 500, 100
    u = uniform(T_LINEAR + washout, seed=3)
    X = state_matrix(model, u, washout=washout)
    mc = memory_capacity(X, u[washout:], K, threshold=None)
    exact = linear_memory_curve(np.diag(lam), model.U.detach().numpy()[:, 0], K)
    assert np.max(np.abs(adjusted(mc) - exact)) < TOL_LINEAR
    assert exact.sum() > 4  # the comparison covers most of the memory, not a flat tail


def test_stablessm_state_is_a_linear_reservoir_with_rotation_scaling_blocks(torch):
    from wrec.nn import StableSSM

    # one post-norm layer: v_t = w_enc u_t + b_enc is affine in u, so h_t = λ ⊙ h_{t−1} + B̄ v_t is a linear
    # reservoir; in real coordinates (Re h_n, Im h_n) each complex mode λ = |λ|e^{iθ} is the rotation-scaling block
    # |λ|[[cos θ, −sin θ], [sin θ, cos θ]]
    model = StableSSM(1, 1, d_state=8, seed=0, dtype=torch.float64)
    kernel = model.layers["l0"].kernel
    with torch.no_grad():
        kernel.w = torch.tensor([[-0.1, -0.3, -0.6, -1.0]], dtype=torch.float64)  # Re a, through the reparam
        kernel.log_dt.fill_(0.0)  # Δ = 1
        kernel.theta.copy_(torch.tensor([[0.3, 1.1, 2.0, 2.9]], dtype=torch.float64))
        lam, Bbar = kernel.discretize()
        w_enc = model.layers["l0"].encoder.weight[0, 0]
    lam, b = lam[0].detach().numpy(), (Bbar[0] * w_enc).detach().numpy()
    W = np.zeros((8, 8))
    for n, z in enumerate(lam):
        W[2 * n:2 * n + 2, 2 * n:2 * n + 2] = [[z.real, -z.imag], [z.imag, z.real]]
    w_in = np.column_stack([b.real, b.imag]).ravel()
    washout, K = 500, 100
    u = uniform(T_LINEAR + washout, seed=4)
    X = state_matrix(model, u, washout=washout)
    assert X.shape == (T_LINEAR, 8)
    mc = memory_capacity(X, u[washout:], K, threshold=None)
    exact = linear_memory_curve(W, w_in, K)
    assert np.max(np.abs(adjusted(mc) - exact)) < TOL_LINEAR
    assert exact.sum() > 5


# --- time alignment: X[t] is the state right after u[t] -----------------------------------------------------------

def delay_reservoir(d):
    """A Linear reservoir with the lower shift: unit d holds u_{t−d}."""
    return reservoir.Linear(weights.delay_line(d + 1), w_in=np.eye(d + 1)[0]), {}


def delay_rnn(d):
    """torch.nn.RNN (tanh) with the shift as W_hh and a tiny input weight: unit d holds tanh^{d+1}(ε u_{t−d}), a
    monotone map of u_{t−d} that is linear to O(ε²)."""
    import torch

    rnn = torch.nn.RNN(1, d + 1, bias=False, dtype=torch.float64)
    with torch.no_grad():
        rnn.weight_hh_l0.copy_(torch.as_tensor(weights.delay_line(d + 1)))
        rnn.weight_ih_l0.copy_(torch.as_tensor(1e-4 * np.eye(d + 1)[:, :1]))
    return rnn, {"chunk": 97}


def delay_callable(d):
    return (lambda u: np.stack([np.r_[np.zeros(k), u[:len(u) - k]] for k in range(d + 1)], 1)), {}


def copy_linear_ssm(d):
    """LinearDiagonalSSM with λ = e^{−60}: h_t = U u_t to 1e-26 (delay 0 only)."""
    from wrec.nn import LinearDiagonalSSM

    return LinearDiagonalSSM(1, 1, 1, init_decay=60.0, dtype=__import__("torch").float64, seed=0), {}


def copy_rsnn(d):
    """An LIF layer with τ_m → 0 and an unreachable threshold: v_t = W_in u_t (delay 0 only)."""
    import torch

    from wrec.spiking import RSNN, LIFParameters

    net = RSNN(1, (3,), 1, params=LIFParameters(tau_mem=1e-3, threshold=1e6),
               generator=torch.Generator().manual_seed(0))
    return net, {"observe": "potential"}


DELAY_ADAPTERS = {"reservoir": delay_reservoir, "torch-rnn": delay_rnn, "callable": delay_callable}
COPY_ADAPTERS = {**DELAY_ADAPTERS, "linear-ssm": copy_linear_ssm, "rsnn": copy_rsnn}


def _needs_torch(name):
    if name not in ("reservoir", "callable"):
        pytest.importorskip("torch")


@pytest.mark.parametrize("name", list(COPY_ADAPTERS))
def test_a_network_that_copies_its_input_remembers_only_delay_zero(name):
    _needs_torch(name)
    T, washout = 5000, 10
    u = uniform(T + washout, seed=5)
    model, kw = COPY_ADAPTERS[name](0)
    X = state_matrix(model, u, washout=washout, **kw)
    mc = memory_capacity(X, u[washout:], 5, threshold=None)
    assert mc.raw[0] == pytest.approx(1.0, abs=1e-6)
    # a delay the states do not hold shows only the floor: R̂² ~ χ²_r/T, mean r/T, sd √(2r)/T
    assert np.all(mc.raw[1:] < (mc.rank + 10 * np.sqrt(2 * mc.rank)) / T)


@pytest.mark.parametrize("name", list(DELAY_ADAPTERS))
@pytest.mark.parametrize("d", [1, 4])
def test_a_pure_delay_line_of_length_d_remembers_exactly_delay_d(name, d):
    _needs_torch(name)
    T, washout = 5000, 10
    u = uniform(T + washout, seed=6)
    model, kw = DELAY_ADAPTERS[name](d)
    X = state_matrix(model, u, washout=washout, **kw)
    assert X.shape == (T, d + 1)
    mc = memory_capacity(X, u[washout:], d + 3, readout=np.array([d]), threshold=None)  # the last unit alone
    assert mc.raw[d] == pytest.approx(1.0, abs=1e-6)
    others = np.delete(mc.raw, d)
    assert np.all(others < (1 + 10 * np.sqrt(2)) / T)


# --- spike coding networks ---------------------------------------------------------------------------------------

def scn_network(sigma_v=0.0, leak=10.0, dt=1e-3, n=20, size=0.1, mu=1e-3):
    D = np.r_[np.full(n // 2, size), np.full(n // 2, -size)][None] * np.linspace(0.8, 1.2, n)  # (1, N)
    return SCN(optimal_weights(D, mu=mu), SCNParams(leak=leak, dt=dt, mu=mu, sigma_v=sigma_v)), D


@pytest.mark.parametrize("drive", ["signal", "current"])
def test_scn_rates_are_those_of_simulate_bit_for_bit(drive):
    net, D = scn_network(sigma_v=1e-3)
    T, washout = 3000, 100
    u = np.sin(np.arange(T) * 2 * np.pi / 700) + 0.5 * np.sin(np.arange(T) * 2 * np.pi / 170)  # slow
    if drive == "signal":
        c = input_current(np.r_[0.0, u][:, None], 10.0, 1e-3)
    else:
        u = 40 * u
        c = u[:, None]
    ref = simulate(net.weights, c, net.constants, seed=7)
    X = state_matrix(net, u, washout=washout, seed=7, drive=drive)
    np.testing.assert_array_equal(X, ref.r[washout:])
    both = state_matrix(net, u, washout=washout, seed=7, drive=drive, observe="both")
    np.testing.assert_array_equal(both, np.hstack([ref.r, ref.V])[washout:])
    if drive == "signal":  # the network tracks u itself: the decoder reads u_t back within the spike size
        assert np.max(np.abs(X @ D[0] - u[washout:])) < 0.15
    assert not np.array_equal(X, state_matrix(net, u, washout=washout, seed=8, drive=drive))  # the seed is used


@pytest.mark.slow
@pytest.mark.parametrize("drive", ["signal", "current"])
def test_scn_remembers_at_least_what_its_ideal_leaky_integrator_remembers(drive):
    # The optimal autoencoder implements ẋ = −λx + c (Boerlin et al. 2013) and reads it out as x̂ = D r. Linear
    # readouts of r include x̂, so MC(r) ≥ MC(x̂); x̂ = x + e with |e| below the spike size 0.1 and x of unit scale,
    # so MC(x̂) ≥ MC(x)·var x/(var x + var e) ≥ 0.99·MC(x), x being the ideal integral of the same c
    # (tasks.leaky_integral). Every curve is measured on the same u, so their shared sampling fluctuation cancels
    # (MC(x̂) and MC(x) stay within 0.003 of each other over seeds); tolerance: 0.01 (coding) + 0.01 (sampling).
    leak, dt = 10.0, 5e-3
    net, D = scn_network(leak=leak, dt=dt)
    T, washout, K = 20_000, 500, 60
    u = uniform(T + washout, seed=9)
    if drive == "current":
        u = 60 * u  # x = leaky integral of c, of s.d. ≈ 0.5
    X = state_matrix(net, u, washout=washout, drive=drive)
    c = input_current(np.r_[0.0, u][:, None], leak, dt) if drive == "signal" else u[:, None]
    x = leaky_integral(c, leak, dt)[washout:]
    if drive == "signal":
        np.testing.assert_allclose(x[:, 0], u[washout:], atol=1e-9)  # the ideal integrator's state is u itself
    ideal, ours, decoded = (adjusted(memory_capacity(s, u[washout:], K, threshold=None)).sum()
                            for s in (x, X, X @ D.T))
    assert decoded >= 0.99 * ideal - 0.01
    assert ours >= ideal - 0.02
    assert ideal > 0.9


def test_scn_spike_storm_is_a_blow_up():
    net, _ = scn_network()
    storm = SCN(net.weights, SCNParams(leak=10.0, dt=1e-3, max_spikes_per_step=2))
    with pytest.raises(ValueError, match=r"blew up.*spike storm"):
        state_matrix(storm, 5 * uniform(200))


# --- torch: chunking, the user's module untouched, the families' own loops ------------------------------------------

def torch_models():
    import torch

    from wrec.nn import CfC, LiGRU, LinearDiagonalSSM, LowRankSparseLSTM, SLiGRU, StableSSM
    from wrec.spiking import RSNN, LIFParameters

    g = torch.Generator().manual_seed(0)
    return {
        "GRU": (torch.nn.GRU(1, 8, num_layers=2), {}),
        "LSTM": (torch.nn.LSTM(2, 8, batch_first=True), {"w_in": [1.0, -0.5]}),
        "LiGRU": (LiGRU(1, 8, num_layers=2, ff_normalization="layernorm"), {"layers": "all"}),
        "SLiGRU": (SLiGRU(1, 8), {}),
        "CfC": (CfC(1, 8, generator=g), {}),
        "LowRankSparseLSTM": (LowRankSparseLSTM(1, 8, rank=2, generator=g), {}),
        "StableSSM": (StableSSM(1, 4, num_layers=2, d_state=6, prenorm=True, seed=0), {"layers": "all"}),
        "StableSSM-real": (StableSSM(1, 4, d_state=3, real=True, seed=1), {}),
        "LinearDiagonalSSM": (LinearDiagonalSSM(1, 6, 2, seed=0), {}),
        "RSNN": (RSNN(1, (6, 5), 2, params=LIFParameters(adaptive=True), generator=g),
                 {"layers": "all", "observe": "both"}),
    }


@pytest.mark.parametrize("name", ["GRU", "LSTM", "LiGRU", "SLiGRU", "CfC", "LowRankSparseLSTM", "StableSSM",
                                  "StableSSM-real", "LinearDiagonalSSM", "RSNN"])
def test_chunked_torch_states_equal_one_shot_and_leave_the_module_alone(torch, name):
    model, kw = torch_models()[name]
    before = copy.deepcopy(model.state_dict())
    dtype, training = next(model.parameters()).dtype, model.training
    u = 3 * uniform(700, seed=10)
    one = state_matrix(model, u, chunk=700, **kw)
    for chunk in (1, 37, 256):
        np.testing.assert_allclose(state_matrix(model, u, chunk=chunk, **kw), one, rtol=0, atol=1e-12)
    assert one.dtype == np.float64 and np.all(np.isfinite(one)) and np.std(one) > 0
    assert next(model.parameters()).dtype == dtype and model.training == training
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_gru_all_layers_stack_every_layers_hidden_sequence(torch):
    gru = torch.nn.LSTM(1, 5, num_layers=3, dtype=torch.float64)
    u = uniform(300, seed=11)
    X = state_matrix(gru, u, layers="all", washout=20)
    x = torch.as_tensor(u)[:, None, None]
    with torch.no_grad():
        out, _ = gru(x)
    assert X.shape == (280, 15)
    np.testing.assert_allclose(X[:, 10:], out[20:, 0].numpy(), rtol=0, atol=1e-12)  # the top layer is the output
    # the bottom layer is a one-layer LSTM with the same weights
    lower = torch.nn.LSTM(1, 5, dtype=torch.float64)
    with torch.no_grad():
        for n in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            getattr(lower, n).copy_(getattr(gru, n))
        h1, _ = lower(x)
    np.testing.assert_allclose(X[:, :5], h1[20:, 0].numpy(), rtol=0, atol=1e-12)


def test_stablessm_states_are_those_of_its_step_loop(torch):
    from wrec.nn import StableSSM

    model = StableSSM(1, 3, num_layers=2, d_state=4, prenorm=True, seed=2, dtype=torch.float64).eval()
    u = uniform(150, seed=12)
    X = state_matrix(model, u, layers="all", chunk=40)
    state, rows = model.initial_state(), []
    with torch.no_grad():
        for u_t in u:
            _, state = model.step(torch.tensor([u_t], dtype=torch.float64), state)
            rows.append(torch.view_as_real(state).reshape(-1).numpy())  # layer, channel, mode, (Re, Im)
    np.testing.assert_allclose(X, np.array(rows), rtol=0, atol=1e-12)


def test_rsnn_rates_are_its_spike_trains_filtered_by_the_readout_decay(torch):
    from wrec.spiking import RSNN

    net = RSNN(1, (7, 6), 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    u = 3 * uniform(400, seed=13)
    X = state_matrix(net, u, layers="all", chunk=64)
    with torch.no_grad():
        z = torch.cat(net.hidden(torch.as_tensor(u)[:, None, None]), -1)[:, 0].numpy()  # (T, 13)
    k = net.params.kappa
    r = np.zeros_like(z)
    for t in range(len(u)):
        r[t] = (k * r[t - 1] if t else 0) + z[t]
    np.testing.assert_allclose(X, r, rtol=0, atol=1e-12)
    assert z.mean() > 0.01  # the network spikes
    top = state_matrix(net, u, observe="potential")
    assert top.shape == (400, 6)


def test_a_module_on_the_gpu_gives_the_cpu_states(torch):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    from wrec.nn import StableSSM

    u = uniform(500, seed=14)
    for model, kw in [(torch.nn.GRU(1, 8, num_layers=2), {"layers": "all"}),
                      (StableSSM(1, 4, num_layers=2, d_state=6, seed=0), {"layers": "all"})]:
        cpu = state_matrix(model, u, chunk=128, **kw)
        gpu = state_matrix(model.cuda(), u, chunk=128, **kw)
        np.testing.assert_allclose(gpu, cpu, rtol=0, atol=1e-10)  # float64 on both; only reduction orders differ


# --- errors ------------------------------------------------------------------------------------------------------

def test_bad_inputs_raise_errors_that_name_the_fix():
    esn = reservoir.ESN(weights.gaussian(10, spectral_radius=0.9, seed=0), seed=1)
    u = uniform(100)
    with pytest.raises(ValueError, match=r"u must be one input sequence of shape \(T,\)"):
        state_matrix(esn, np.ones((100, 2)))
    with pytest.raises(ValueError, match="u has 1 non-finite"):
        state_matrix(esn, np.r_[u[:-1], np.nan])
    with pytest.raises(ValueError, match="washout must be smaller than the input length T = 100"):
        state_matrix(esn, u, washout=100)
    with pytest.raises(ValueError, match="washout must be >= 0"):
        state_matrix(esn, u, washout=-1)
    with pytest.raises(ValueError, match="chunk must be >= 1"):
        state_matrix(esn, u, chunk=0)
    with pytest.raises(TypeError, match="seed must be an int"):
        state_matrix(esn, u, seed="zero")
    with pytest.raises(TypeError, match=r"model must be a wrec\.reservoir.*got str"):
        state_matrix("esn", u)
    with pytest.raises(TypeError, match=r"SCNWeights: give the network with its simulation constants"):
        state_matrix(scn_network()[0].weights, u)
    with pytest.raises(ValueError, match=r"batch of 3 reservoirs.*wrec\.reservoir\.run"):
        state_matrix(reservoir.ESN(weights.gaussian(10, seed=0), recurrent_scale=[0.5, 0.8, 0.9], seed=1), u)
    with pytest.raises(ValueError, match=r"w_in does not apply to a reservoir \(ESN\): it carries its own"):
        state_matrix(esn, u, w_in=[1.0])
    with pytest.raises(ValueError, match="layers does not apply to a reservoir"):
        state_matrix(esn, u, layers="all")
    with pytest.raises(ValueError, match=r"observe must be one of \('rate', 'potential', 'both'\)"):
        state_matrix(esn, u, observe="spikes")
    with pytest.raises(ValueError, match="drive does not apply to a callable"):
        state_matrix(lambda v: v[:, None], u, drive="current")
    with pytest.raises(ValueError, match="reservoir blew up"):
        state_matrix(reservoir.Linear(3 * np.eye(4), seed=0), uniform(2000))
    with pytest.raises(ValueError, match=r"model\(u\) must return states of shape \(T, N\) = \(100, N\)"):
        state_matrix(lambda v: np.ones((99, 2)), u)
    with pytest.raises(ValueError, match=r"blew up.*step 50"):
        state_matrix(lambda v: np.where(np.arange(100)[:, None] >= 50, np.inf, 1.0) * np.ones((1, 3)), u)
    net, _ = scn_network()
    two = SCN(optimal_weights(np.vstack([net.weights.D, net.weights.D[:, ::-1]]), mu=1e-4), net.constants)
    with pytest.raises(ValueError, match=r"K = 2 input channels: pass w_in of shape \(2,\)"):
        state_matrix(two, u)
    assert state_matrix(two, u, w_in=[1.0, 0.5]).shape == (100, 20)


def test_bad_torch_inputs_raise_errors_that_name_the_fix(torch):
    u = uniform(50)
    with pytest.raises(ValueError, match="bidirectional: its reverse direction reads the future"):
        state_matrix(torch.nn.GRU(1, 4, bidirectional=True), u)
    with pytest.raises(TypeError, match=r"without torch\.nn\.GRU's contract.*wrap it in a callable"):
        state_matrix(torch.nn.Linear(1, 4), u)
    with pytest.raises(ValueError, match=r"K = 3 input channels: pass w_in of shape \(3,\)"):
        state_matrix(torch.nn.GRU(3, 4), u)
    with pytest.raises(ValueError, match=r"w_in must have shape \(3,\)"):
        state_matrix(torch.nn.GRU(3, 4), u, w_in=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"drive does not apply to an RSNN \(RSNN\); it takes layers, observe"):
        from wrec.spiking import RSNN

        state_matrix(RSNN(1, (4,), 2), u, drive="signal")
    relu = torch.nn.RNN(1, 4, nonlinearity="relu", bias=False)
    with torch.no_grad():
        relu.weight_hh_l0.copy_(1e3 * torch.eye(4))
        relu.weight_ih_l0.fill_(1.0)
    with pytest.raises(ValueError, match="the network blew up: its state became non-finite by step"):
        state_matrix(relu, np.ones(500))


# --- documentation and import cost --------------------------------------------------------------------------------

def test_the_docstring_examples_run():
    result = doctest.testmod(wrec.states, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 5 and result.failed == 0


def test_importing_wrec_states_loads_no_torch():
    code = "import sys, wrec.states; print('torch' in sys.modules, 'scipy' in sys.modules)"
    out = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]
