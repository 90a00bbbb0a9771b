"""RSNN against exact references: surrogate exactness, the LIF analytic solution, ALIF
adaptation, the autapse mask, input layouts and bad input."""

import math

import numpy as np
import pytest
import torch

from wrec.spiking.rsnn import (
    RSNN,
    LIFParameters,
    LIFState,
    leaky,
    lif_step,
    rsnn_loss,
    spike,
    surrogate_derivative,
)

F64 = torch.float64


def _psi_reference(u: np.ndarray, p: LIFParameters) -> np.ndarray:
    """The surrogate derivatives ψ (triangle, e-prop's pseudo-derivative; fast sigmoid; atan) written out in NumPy,
    independently of the torch code."""
    if p.surrogate == "triangle":
        return p.gamma / p.threshold * np.maximum(0.0, 1.0 - np.abs(u) / p.threshold)
    if p.surrogate == "fast-sigmoid":
        return 1.0 / (p.slope * np.abs(u) + 1.0) ** 2
    return (p.atan_alpha / 2) / (1.0 + (np.pi * p.atan_alpha * u / 2) ** 2)


@pytest.mark.parametrize("params", [
    LIFParameters(), LIFParameters(threshold=0.7, gamma=0.5), LIFParameters(surrogate="fast-sigmoid", slope=10.0),
    LIFParameters(surrogate="atan", atan_alpha=3.0)])
def test_surrogate_forward_is_heaviside_and_backward_is_psi(params):
    grid = np.concatenate([np.linspace(-3, 3, 601), [0.0, -0.0, 1e-300, -1e-300, params.threshold,
                                                     -params.threshold, 5e-17]])
    u = torch.tensor(grid, dtype=F64, requires_grad=True)
    z = spike(u, params)
    np.testing.assert_array_equal(z.detach().numpy(), (grid > 0).astype(float))  # H(0) = 0, strictly >
    assert z[grid == 0].sum() == 0
    (grad,) = torch.autograd.grad(z, u, torch.ones_like(u))
    # bit for bit the ψ the online rules use, and the formula evaluated in NumPy to a few ulps
    assert torch.equal(grad, surrogate_derivative(u.detach(), params))
    np.testing.assert_allclose(grad.numpy(), _psi_reference(grid, params), rtol=1e-15, atol=0)
    upstream = torch.linspace(-2, 3, u.numel(), dtype=F64)
    (scaled,) = torch.autograd.grad(spike(u, params), u, upstream)
    assert torch.equal(scaled, upstream * grad)  # the chain rule: upstream gradient times ψ


def test_triangle_support_and_peak():
    p = LIFParameters(gamma=0.3, threshold=2.0)
    u = torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0, 2.5], dtype=F64, requires_grad=True)
    (g,) = torch.autograd.grad(spike(u, p).sum(), u)
    np.testing.assert_allclose(g.numpy(), [0.0, 0.075, 0.15, 0.075, 0.0, 0.0], rtol=1e-15)


@pytest.mark.parametrize("current", [0.05, "boundary", 0.11, 0.3, 1.5, 4.0])
def test_lif_constant_input_matches_analytic_solution(current):
    """v_t = I(1 − α^t)/(1 − α) until the first spike at the least t with α^t < 1 − θ(1 − α)/I; never if
    I ≤ θ(1 − α)."""
    p = LIFParameters(tau_mem=10.0, threshold=1.0)
    a, theta, T = p.alpha, p.threshold, 200
    if current == "boundary":  # I = θ(1 − α): v_t approaches θ from below and never crosses it
        current = theta * (1 - a)
    w_in = torch.tensor([[current]], dtype=F64)
    x = torch.ones(1, 1, dtype=F64)
    state = LIFState.zeros(1, 1, dtype=F64)
    v, z = [], []
    for _ in range(T):
        state = lif_step(p, state, x, w_in)
        v.append(state.v.item())
        z.append(state.z.item())
    t = np.arange(1, T + 1)
    analytic = current * (1 - a ** t) / (1 - a)
    if current <= theta * (1 - a):
        assert sum(z) == 0
        np.testing.assert_allclose(v, analytic, rtol=1e-12)
        return
    first = int(np.min(t[a ** t < 1 - theta * (1 - a) / current]))
    assert int(np.argmax(z)) + 1 == first
    np.testing.assert_allclose(v[:first], analytic[:first], rtol=1e-12)
    assert v[first - 1] > theta >= v[first - 2] if first > 1 else v[0] > theta
    # the soft reset: one step after the spike, v = α v + I − θ
    np.testing.assert_allclose(v[first], a * v[first - 1] + current - theta, rtol=1e-12)


def test_alif_threshold_adapts_after_a_spike():
    """a_t = ρ a_{t−1} + z_{t−1}: after a spike at t0, a = ρ^{t−t0−1} until the next spike, and a strong input that
    crosses θ but not θ + β·a stays silent."""
    p = LIFParameters(adaptive=True, tau_adapt=50.0, beta=2.0, tau_mem=1e-3)  # α ≈ 0: v_t is the input alone
    drive = [1.5, 0.0, 0.0, 1.5, 3.0, 0.0]
    state = LIFState.zeros(1, 1, dtype=F64)
    w_in = torch.ones(1, 1, dtype=F64)
    zs, adapt = [], []
    for d in drive:
        state = lif_step(p, state, torch.tensor([[d]], dtype=F64), w_in)
        zs.append(state.z.item())
        adapt.append(state.a.item())
    rho = p.rho
    assert zs[0] == 1.0  # 1.5 > θ with a = 0
    np.testing.assert_allclose(adapt[:4], [0.0, 1.0, rho, rho ** 2], rtol=1e-14)
    # t = 4: v = 1.5 (α ≈ 0, no reset pending) below θ + β ρ² ≈ 2.92; t = 5: 3.0 crosses it
    assert zs[3] == 0.0 and zs[4] == 1.0


def test_alif_reduces_to_lif_without_adaptation_strength():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(20, 4, 6, dtype=F64, generator=g) * 3
    lif = RSNN(6, (9,), 3, params=LIFParameters(), generator=torch.Generator().manual_seed(0), dtype=F64)
    alif = RSNN(6, (9,), 3, params=LIFParameters(adaptive=True, beta=0.0),
                generator=torch.Generator().manual_seed(0), dtype=F64)
    torch.testing.assert_close(lif(x)[0], alif(x)[0], rtol=0, atol=0)


def test_leaky_filter_and_loss():
    d = torch.tensor([[1.0], [0.0], [2.0]], dtype=F64)
    np.testing.assert_allclose(leaky(d, 0.5).numpy().ravel(), [1.0, 0.5, 2.25])
    y = torch.randn(4, 3, 5, dtype=F64, generator=torch.Generator().manual_seed(0))
    target = torch.tensor([0, 4, 2])
    by_hand = np.mean([[-torch.log_softmax(y[t, b], 0)[target[b]].item() for b in range(3)] for t in range(4)])
    assert rsnn_loss(y, target).item() == pytest.approx(by_hand, rel=1e-14)


def test_initialisation_statistics_and_autapse_mask():
    H, N = 400, 300
    net = RSNN(N, (H,), 10, generator=torch.Generator().manual_seed(0), dtype=F64)
    w_in, w_rec = net.layer_weights(0)
    assert torch.all(torch.diagonal(net.weight_hh_l0) == 0) and torch.all(torch.diagonal(w_rec) == 0)
    # variances 1/N, 0.25/H, 1/H within 5 % (≈ 10 standard errors of the estimate at these sizes)
    assert w_in.var().item() * N == pytest.approx(1.0, rel=0.05)
    assert w_rec[~torch.eye(H, dtype=torch.bool)].var().item() * H == pytest.approx(0.25, rel=0.05)
    assert net.weight_out.var().item() * H == pytest.approx(1.0, rel=0.05)
    assert torch.all(net.bias_out == 0)
    assert "mask_hh_l0" in dict(net.named_buffers())
    # a diagonal forced into the raw parameter has no effect and gets no gradient
    with torch.no_grad():
        net.weight_hh_l0.fill_diagonal_(5.0)
    x = torch.rand(10, 2, N, dtype=F64, generator=torch.Generator().manual_seed(1)) * 2
    y, _ = net(x)
    y.sum().backward()
    assert torch.all(torch.diagonal(net.weight_hh_l0.grad) == 0)
    assert net.weight_hh_l0.grad.abs().sum() > 0


def test_same_generator_same_network_and_feed_forward_has_no_recurrent_weights():
    a = RSNN(8, (5, 4), 3, generator=torch.Generator().manual_seed(7))
    b = RSNN(8, (5, 4), 3, generator=torch.Generator().manual_seed(7))
    for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        assert na == nb and torch.equal(pa, pb)
    ff = RSNN(8, (5, 4), 3, recurrent=False)
    names = {n for n, _ in ff.named_parameters()}
    assert names == {"weight_ih_l0", "weight_ih_l1", "weight_out", "bias_out"}
    assert sum(p.numel() for p in ff.parameters()) == 8 * 5 + 5 * 4 + 3 * 4 + 3
    assert "recurrent=False" in repr(ff)


def test_layouts_agree():
    net = RSNN(6, (7,), 3, generator=torch.Generator().manual_seed(0), dtype=F64)
    bf = RSNN(6, (7,), 3, batch_first=True, generator=torch.Generator().manual_seed(0), dtype=F64)
    x = torch.rand(11, 4, 6, dtype=F64, generator=torch.Generator().manual_seed(1)) * 3
    y, z = net(x)
    assert y.shape == (11, 4, 3) and z.shape == (11, 4, 7)
    yb, zb = bf(x.transpose(0, 1))
    torch.testing.assert_close(yb.transpose(0, 1), y, rtol=0, atol=0)
    torch.testing.assert_close(zb.transpose(0, 1), z, rtol=0, atol=0)
    yu, _ = net(x[:, 2])
    torch.testing.assert_close(yu, y[:, 2], rtol=0, atol=0)
    torch.testing.assert_close(net.logits(x), y.mean(0), rtol=0, atol=0)
    torch.testing.assert_close(bf.logits(x.transpose(0, 1)), y.mean(0), rtol=0, atol=0)


def test_deeper_layer_receives_spikes_of_the_layer_below():
    net = RSNN(6, (7, 5), 3, generator=torch.Generator().manual_seed(0), dtype=F64)
    x = torch.rand(9, 2, 6, dtype=F64, generator=torch.Generator().manual_seed(1)) * 4
    z0, z1 = net.hidden(x)
    one = RSNN(7, (5,), 3, dtype=F64)
    with torch.no_grad():
        one.weight_ih_l0.copy_(net.weight_ih_l1)
        one.weight_hh_l0.copy_(net.weight_hh_l1)
    torch.testing.assert_close(one.hidden(z0)[0], z1, rtol=0, atol=0)
    assert 0 < z0.mean() < 1


@pytest.mark.parametrize(("x", "error", "match"), [
    (torch.zeros(5, 2, 3, 6), ValueError, "2D or 3D"),
    (torch.zeros(5, 2, 4), ValueError, "Expected 6, got 4"),
    (torch.zeros(0, 2, 6), ValueError, "larger than 0"),
    (torch.full((5, 2, 6), math.nan), ValueError, "non-finite"),
    (torch.zeros(5, 2, 6, dtype=torch.int64), TypeError, "floating-point"),
    (torch.zeros(5, 2, 6, dtype=F64), ValueError, "dtype"),
    (np.zeros((5, 2, 6)), TypeError, "torch.Tensor"),
])
def test_bad_input(x, error, match):
    net = RSNN(6, (4,), 3)
    with pytest.raises(error, match=match):
        net(x)


def test_bad_parameters():
    with pytest.raises(ValueError, match="surrogate must be one of"):
        LIFParameters(surrogate="sigmoid")
    with pytest.raises(ValueError, match="tau_mem must be > 0"):
        LIFParameters(tau_mem=0.0)
    with pytest.raises(TypeError, match="adaptive"):
        LIFParameters(adaptive=1)
    with pytest.raises(TypeError, match="hidden_sizes"):
        RSNN(4, 10)
    with pytest.raises(ValueError, match="hidden_sizes"):
        RSNN(4, (10, 0))
    with pytest.raises(ValueError, match="input_size"):
        RSNN(0, (10,))
    with pytest.raises(TypeError, match="params"):
        RSNN(4, (10,), params={"tau_mem": 10})
    with pytest.raises(TypeError, match="recurrent"):
        RSNN(4, (10,), recurrent="yes")


def test_snntorch_rleaky_held_out():
    """snnTorch's RLeaky with subtractive reset and copied W_rec (its recurrent bias zeroed): same spikes and
    membranes to 1e-6 in float32. Skipped when snnTorch is absent."""
    snn = pytest.importorskip("snntorch", minversion="1.0")  # reset semantics changed across 0.8-0.9
    H, N, T, B = 12, 5, 30, 3
    net = RSNN(N, (H,), 2, generator=torch.Generator().manual_seed(0))
    # inputs that keep |v| of order θ, where 1e-6 is several float32 ulps (at |v| ≈ 15 one ulp is 9.5e-7 and the
    # two libraries' different summation orders differ by that)
    x = torch.rand(T, B, N, generator=torch.Generator().manual_seed(1))
    w_in, w_rec = net.layer_weights(0)
    cell = snn.RLeaky(beta=net.params.alpha, linear_features=H, reset_mechanism="subtract", threshold=1.0)
    with torch.no_grad():
        cell.recurrent.weight.copy_(w_rec)
        cell.recurrent.bias.zero_()
    spk, mem = cell.init_rleaky()
    state = LIFState.zeros(B, H)
    fired = 0
    for t in range(T):
        with torch.no_grad():
            spk, mem = cell(x[t] @ w_in.T, spk, mem)
            state = lif_step(net.params, state, x[t], w_in, w_rec)
        torch.testing.assert_close(mem, state.v, rtol=0, atol=1e-6)  # measured: 0 with snnTorch 1.0.0
        torch.testing.assert_close(spk, state.z, rtol=0, atol=0)
        fired += int(spk.sum())
    assert 0 < fired < T * B * H  # a test with spikes and resets, not a silent network
