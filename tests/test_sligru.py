"""Li-GRU / SLi-GRU (wrec.nn.sligru) against independent references (gradcheck, the loop, a NumPy step, closed forms,
nn.GRU, SpeechBrain) and the bad-input contract."""

import copy
import time

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from wrec.nn.sligru import LiGRU, LiGRUParams, SLiGRU, eta_bound, fused_light_gru, ligru_step  # noqa: E402

D64 = torch.float64
CELLS = [LiGRU, SLiGRU]


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randn(*shape, seed, requires_grad=False):
    return torch.randn(*shape, dtype=D64, generator=_gen(seed), requires_grad=requires_grad)


def _model(cls, *args, seed=0, **kwargs):
    m = cls(*args, dtype=D64, **kwargs)
    m.reset_parameters(_gen(seed))
    return m


# --- gradcheck of the hand-written backward ---------------------------------------------------------------------

@pytest.mark.parametrize("stabilised", [False, True])
@pytest.mark.parametrize("nonlinearity", ["relu", "tanh", "leaky_relu", "sin"])
def test_fused_backward_gradcheck(stabilised, nonlinearity):
    T, B, H = 5, 2, 3
    w = _randn(T, B, 2 * H, seed=1, requires_grad=True)
    h0 = _randn(B, H, seed=2, requires_grad=True)
    U = _randn(2 * H, H, seed=3, requires_grad=True)
    mask = (torch.rand(B, H, dtype=D64, generator=_gen(4)) > 0.3).to(D64) / 0.7  # fixed recurrent-dropout mask

    def f(w, h0, U):
        return fused_light_gru(w, h0, U, mask, stabilised=stabilised, nonlinearity=nonlinearity)

    assert torch.autograd.gradcheck(f, (w, h0, U))


def test_fused_backward_gradcheck_recurrent_affine():
    T, B, H = 4, 2, 3
    w = _randn(T, B, 2 * H, seed=1, requires_grad=True)
    h0 = _randn(B, H, seed=2, requires_grad=True)
    U = _randn(2 * H, H, seed=3, requires_grad=True)
    gamma = _randn(2 * H, seed=5, requires_grad=True)
    beta = _randn(2 * H, seed=6, requires_grad=True)

    def f(w, h0, U, gamma, beta):
        return fused_light_gru(w, h0, U, None, stabilised=True, ln_weight=gamma, ln_bias=beta)

    assert torch.autograd.gradcheck(f, (w, h0, U, gamma, beta))


def test_fused_saves_nothing_without_grad():
    w, h0, U = _randn(4, 2, 6, seed=1, requires_grad=True), _randn(2, 3, seed=2), _randn(6, 3, seed=3)
    with torch.no_grad():
        out = fused_light_gru(w, h0, U, stabilised=True)
    assert out.grad_fn is None and not out.requires_grad


# --- fused == loop ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", CELLS)
@pytest.mark.parametrize(
    "kwargs",
    [
        dict(num_layers=3, bidirectional=True, dropout=0.3, recurrent_dropout=0.25),
        dict(num_layers=2, ff_normalization="layernorm", batch_first=True, recurrent_dropout=0.5),
        dict(num_layers=1, ff_normalization=None, nonlinearity="tanh", bias=False),
    ],
)
def test_fused_equals_loop(cls, kwargs):
    if cls is SLiGRU and kwargs.get("ff_normalization") == "layernorm":
        kwargs = kwargs | dict(recurrent_affine=True)
    loop = _model(cls, 4, 5, backend="loop", **kwargs).train()
    with torch.no_grad():  # non-trivial norm parameters, so their gradients are tested too
        for name, p in loop.named_parameters():
            if "norm" in name or "ln_" in name:
                p.add_(_randn(*p.shape, seed=hash(name) % 1000) * 0.3)
    fused = copy.deepcopy(loop)
    fused.backend = "fused"
    D = 2 if kwargs.get("bidirectional") else 1
    T, B = 7, 3
    x = _randn(*((B, T, 4) if kwargs.get("batch_first") else (T, B, 4)), seed=10)
    hx = _randn(D * kwargs["num_layers"], B, 5, seed=11)
    results = []
    for m in (loop, fused):
        xi, hi = x.clone().requires_grad_(), hx.clone().requires_grad_()
        out, h_n = m(xi, hi, generator=_gen(99))  # the same dropout masks for both backends
        loss = (out * _randn(*out.shape, seed=12)).sum() + (h_n * _randn(*h_n.shape, seed=13)).sum()
        loss.backward()
        grads = {n: p.grad for n, p in m.named_parameters()} | {"input": xi.grad, "hx": hi.grad}
        results.append((out, h_n, grads))
    (o1, h1, g1), (o2, h2, g2) = results
    torch.testing.assert_close(o2, o1, rtol=0, atol=1e-12)
    torch.testing.assert_close(h2, h1, rtol=0, atol=1e-12)
    assert g1.keys() == g2.keys()
    for name in g1:
        torch.testing.assert_close(g2[name], g1[name], rtol=0, atol=1e-10, msg=name)
    assert o1.grad_fn is not None


def test_auto_backend_takes_fused_for_training():
    m = _model(SLiGRU, 3, 4)
    out, _ = m(_randn(5, 2, 3, seed=0))
    # fused: the recurrence is one autograd node (the last op on the output path is the indexing of its result)
    names = set()
    stack = [out.grad_fn]
    while stack:
        fn = stack.pop()
        if fn is not None and type(fn).__name__ not in names:
            names.add(type(fn).__name__)
            stack.extend(f for f, _ in fn.next_functions)
    assert "_FusedLightGRUBackward" in names
    with torch.no_grad():
        out_ng, _ = m(_randn(5, 2, 3, seed=0))
    torch.testing.assert_close(out_ng, out.detach(), rtol=0, atol=1e-12)


# --- the pure step one t at a time --------------------------------------------------------------------------------

def _numpy_step(U, h, w, mask, stabilised, eps=1e-5):
    """The equations of Moumen & Parcollet (2023) in NumPy float64, written independently of torch."""
    H = h.shape[1]
    r = h @ U.T
    if stabilised:
        mu = r.mean(1, keepdims=True)
        r = (r - mu) / np.sqrt(((r - mu) ** 2).mean(1, keepdims=True) + eps)
    g = w + r
    z = 1 / (1 + np.exp(-g[:, H:]))
    return z * h + (1 - z) * np.maximum(g[:, :H], 0) * mask


@pytest.mark.parametrize("stabilised", [False, True])
def test_step_matches_numpy_equations(stabilised):
    B, H = 3, 4
    U, h, w = _randn(2 * H, H, seed=1), _randn(B, H, seed=2), _randn(B, 2 * H, seed=3)
    mask = torch.tensor(np.random.default_rng(0).choice([0.0, 2.0], (B, H)))
    got = ligru_step(LiGRUParams(U), h, w, mask, stabilised)
    want = _numpy_step(U.numpy(), h.numpy(), w.numpy(), mask.numpy(), stabilised)
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-14)


@pytest.mark.parametrize("cls", CELLS)
@pytest.mark.parametrize("backend", ["loop", "fused"])
def test_one_step_at_a_time_equals_whole_sequence(cls, backend):
    # eval mode: the normaliser uses fixed statistics, so feeding one step at a time with the carried h_n must
    # give the whole-sequence forward exactly (compared by absolute difference)
    m = _model(cls, 3, 4, num_layers=2, backend=backend).eval()
    with torch.no_grad():
        m.norm_l0.running_mean.copy_(_randn(8, seed=7))
        m.norm_l0.running_var.copy_(_randn(8, seed=8).abs() + 0.5)
    x = _randn(9, 2, 3, seed=1)
    hx = _randn(2, 2, 4, seed=2)
    whole, h_whole = m(x, hx)
    h, outs = hx, []
    for t in range(x.size(0)):
        o, h = m(x[t : t + 1], h)
        outs.append(o)
    stepped = torch.cat(outs)
    assert (stepped - whole).abs().max().item() <= 1e-13
    assert (h - h_whole).abs().max().item() <= 1e-13
    # and the module is the NumPy step on NORM(W x): layer 0 by hand
    W, U = m.weight_ih_l0.detach().numpy(), m.weight_hh_l0.detach().numpy()
    bn = m.norm_l0
    wx = x.numpy() @ W.T
    wx = (wx - bn.running_mean.numpy()) / np.sqrt(bn.running_var.numpy() + bn.eps) * bn.weight.detach().numpy() \
        + bn.bias.detach().numpy()
    hh = hx[0].numpy()
    for t in range(x.size(0)):
        hh = _numpy_step(U, hh, wx[t], np.ones_like(hh), cls is SLiGRU)
    np.testing.assert_allclose(h_whole[0].detach().numpy(), hh, rtol=0, atol=1e-12)


# --- scale invariance of SLi-GRU ----------------------------------------------------------------------------------

@pytest.mark.parametrize("c", [0.1, 10.0])
@pytest.mark.parametrize("backend", ["loop", "fused"])
def test_sligru_scale_invariance(c, backend):
    m = _model(SLiGRU, 3, 6, ln_eps=0.0, backend=backend).eval()
    x, hx = _randn(20, 4, 3, seed=1), _randn(1, 4, 6, seed=2)  # nonzero h0: LN(0) is 0/0 without eps
    out, _ = m(x, hx)
    with torch.no_grad():
        m.weight_hh_l0.mul_(c)
    out_c, _ = m(x, hx)
    rel = ((out_c - out).abs().max() / out.abs().max()).item()
    assert rel <= 1e-10
    li = _model(LiGRU, 3, 6).eval()  # control: without the LN the same change of U changes the output
    o1, _ = li(x, hx)
    with torch.no_grad():
        li.weight_hh_l0.mul_(c)
    assert ((li(x, hx)[0] - o1).abs().max() / o1.abs().max()).item() > 1e-2


# --- U = 0 gives an elementwise gated recurrence in closed form --------------------------------------------------

@pytest.mark.parametrize("cls", CELLS)
def test_zero_recurrent_weight_closed_form(cls):
    T, B, H = 12, 3, 4
    m = _model(cls, 2, H, ff_normalization=None).eval()
    with torch.no_grad():
        m.weight_hh_l0.zero_()
    x, hx = _randn(T, B, 2, seed=1), _randn(1, B, H, seed=2)
    out, _ = m(x, hx)
    w = (x.numpy() @ m.weight_ih_l0.detach().numpy().T)  # (T, B, 2H); LN(U h) = LN(0) = 0 with eps > 0
    z = 1 / (1 + np.exp(-w[..., H:]))
    c = (1 - z) * np.maximum(w[..., :H], 0)
    # h_t = (Π_{s≤t} z_s) h_0 + Σ_{s≤t} (Π_{s<r≤t} z_r) (1 − z_s) h̃_s, each product written out
    want = np.empty((T, B, H))
    for t in range(T):
        want[t] = np.prod(z[: t + 1], 0) * hx[0].numpy()
        for s in range(t + 1):
            want[t] += np.prod(z[s + 1 : t + 1], 0) * c[s]
    np.testing.assert_allclose(out.detach().numpy(), want, rtol=0, atol=1e-13)


# --- the reverse direction --------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", CELLS)
def test_reverse_direction_is_forward_on_flipped_input(cls):
    bi = _model(cls, 3, 4, bidirectional=True).train()  # training: BatchNorm statistics over all B·T rows
    uni = _model(cls, 3, 4).train()
    with torch.no_grad():
        uni.weight_ih_l0.copy_(bi.weight_ih_l0_reverse)
        uni.weight_hh_l0.copy_(bi.weight_hh_l0_reverse)
        uni.norm_l0.weight.copy_(_randn(8, seed=5))
        bi.norm_l0_reverse.weight.copy_(_randn(8, seed=5))
    x, hx = _randn(8, 2, 3, seed=1), _randn(2, 2, 4, seed=2)
    out, h_n = bi(x, hx)
    out_u, h_u = uni(x.flip(0), hx[1:])
    torch.testing.assert_close(out[..., 4:], out_u.flip(0), rtol=0, atol=1e-13)
    torch.testing.assert_close(h_n[1], h_u[0], rtol=0, atol=1e-13)
    # and nn.GRU's h_n layout: forward half ends at t = T-1, reverse half at t = 0
    torch.testing.assert_close(h_n[0], out[-1, :, :4], rtol=0, atol=0)
    torch.testing.assert_close(h_n[1], out[0, :, 4:], rtol=0, atol=0)


# --- the calls of nn.GRU give nn.GRU's shapes ----------------------------------------------------------------------

@pytest.mark.parametrize("cls", CELLS)
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
def test_shapes_as_torch_gru(cls, num_layers, bidirectional, batch_first):
    kw = dict(num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first)
    ours, ref = cls(3, 5, **kw), nn.GRU(3, 5, **kw)
    D = 2 if bidirectional else 1
    calls = [
        ((torch.zeros(4, 6, 3),), {}),  # batched, no hx
        ((torch.zeros(4, 6, 3), torch.zeros(D * num_layers, 4 if batch_first else 6, 5)), {}),
        ((torch.zeros(7, 3),), {}),  # unbatched
        ((torch.zeros(7, 3), torch.zeros(D * num_layers, 5)), {}),
    ]
    for args, _ in calls:
        a, b = ours(*args), ref(*args)
        assert a[0].shape == b[0].shape and a[1].shape == b[1].shape
    # the parameter names of nn.GRU, with (2H, ·) instead of (3H, ·) rows
    ours_w = {n: p.shape for n, p in ours.named_parameters() if n.startswith("weight_")}
    ref_w = {n: (p.shape[0] // 3 * 2, p.shape[1]) for n, p in ref.named_parameters() if n.startswith("weight_")}
    assert ours_w == ref_w
    if not bidirectional:
        out, h_n = ours(torch.randn(4, 6, 3))
        torch.testing.assert_close(h_n[-1], out[-1] if not batch_first else out[:, -1], rtol=0, atol=0)


def test_unbatched_equals_batch_of_one():
    m = _model(SLiGRU, 3, 4, num_layers=2, bidirectional=True).eval()
    x, hx = _randn(6, 3, seed=1), _randn(4, 4, seed=2)
    out, h_n = m(x, hx)
    out_b, h_b = m(x.unsqueeze(1), hx.unsqueeze(1))
    torch.testing.assert_close(out, out_b[:, 0], rtol=0, atol=0)
    torch.testing.assert_close(h_n, h_b[:, 0], rtol=0, atol=0)


# --- module details ----------------------------------------------------------------------------------------------

def test_bias_false_freezes_the_normaliser_shift():
    m = SLiGRU(3, 4, bias=False)
    names = {n for n, _ in m.named_parameters()}
    assert names == {"weight_ih_l0", "weight_hh_l0", "norm_l0.weight"}
    assert "norm_l0.bias" in m.state_dict() and torch.all(m.norm_l0.bias == 0)
    m(torch.randn(5, 2, 3)).__getitem__(0).sum().backward()
    assert torch.all(m.norm_l0.bias == 0)


def test_state_dict_holds_no_masks_and_round_trips():
    m = SLiGRU(3, 4, recurrent_dropout=0.3, num_layers=2, dropout=0.2, recurrent_affine=True)
    keys = set(m.state_dict())
    assert not any("mask" in k or "last_max" in k for k in keys)
    assert {"ln_weight_l0", "ln_bias_l1", "norm_l1.running_var"} <= keys
    m2 = SLiGRU(3, 4, recurrent_dropout=0.3, num_layers=2, dropout=0.2, recurrent_affine=True)
    m2.load_state_dict(m.state_dict())
    m.eval(), m2.eval()
    x = torch.randn(5, 2, 3)
    torch.testing.assert_close(m(x)[0], m2(x)[0], rtol=0, atol=0)


def test_recurrent_dropout_mask_is_per_sequence_and_off_in_eval():
    # tanh: h̃ = 0 only where the mask is 0 (a ReLU candidate can also be 0 for a whole sequence)
    m = _model(LiGRU, 2, 50, ff_normalization=None, nonlinearity="tanh", recurrent_dropout=0.5).train()
    with torch.no_grad():
        m.weight_hh_l0.zero_()  # h_t then only mixes h̃_t = φ(a_t) ⊙ m: units with m = 0 stay at h_0 = 0
    out, _ = m(_randn(30, 4, 2, seed=1) + 3, generator=_gen(0))
    dead = (out == 0).all(0)  # (B, H): the same units dead at every step
    frac = dead.double().mean().item()
    assert 0.35 < frac < 0.65
    alive = out[:, ~dead]
    assert (alive != 0).float().mean() > 0.3
    m.eval()
    assert not (m(_randn(30, 4, 2, seed=1) + 3)[0] == 0).all(0).any()


def test_reset_parameters_with_generator_is_reproducible_and_orthogonal():
    a, b = _model(SLiGRU, 3, 4, seed=5), _model(SLiGRU, 3, 4, seed=5)
    for (n, p), (_, q) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        assert torch.equal(p, q), n
    U = a.weight_hh_l0.detach()
    torch.testing.assert_close(U.T @ U, torch.eye(4, dtype=D64), rtol=0, atol=1e-12)
    bound = 1 / np.sqrt(3)
    assert a.weight_ih_l0.abs().max() <= bound


def test_repr():
    assert repr(SLiGRU(3, 4, num_layers=2, bidirectional=True)).startswith(
        "SLiGRU(\n  3, 4, num_layers=2, bidirectional=True\n  (norm_l0): BatchNorm1d(8, eps=1e-05, momentum=0.05")
    assert "ff_normalization=None" in repr(LiGRU(3, 4, ff_normalization=None, backend="loop"))


def test_eta_bound():
    m = _model(LiGRU, 3, 4, num_layers=2, bidirectional=True).eval()  # train mode updates BatchNorm's statistics
    state = {k: v.clone() for k, v in m.state_dict().items()}
    out, _, max_abs_h = m(_randn(10, 2, 3, seed=1), return_max_abs_h=True)
    assert max_abs_h.shape == (2, 2) and not max_abs_h.requires_grad
    assert max_abs_h[1, 1].item() == out[..., 4:].abs().max().item()
    assert all(torch.equal(v, m.state_dict()[k]) for k, v in state.items())  # forward is pure (eval mode)
    out2, _ = m(_randn(10, 2, 3, seed=1))
    assert torch.equal(out, out2)
    eta = eta_bound(m, max_abs_h)
    assert eta.shape == (2, 2)
    U = m.weight_hh_l1_reverse.detach().numpy()
    max_h = out[..., 4:].abs().max().item()  # last layer, reverse half
    want = max_h / 4 * np.linalg.norm(U[4:], 2) + np.linalg.norm(U[:4], 2)
    assert abs(eta[1, 1].item() - want) < 1e-12
    eta2 = eta_bound(m, max_abs_h=2.0)
    U0 = m.weight_hh_l0.detach().numpy()
    assert abs(eta2[0, 0].item() - (0.5 * np.linalg.norm(U0[4:], 2) + np.linalg.norm(U0[:4], 2))) < 1e-12
    assert torch.isinf(eta_bound(m, float("inf"))).all()  # an overflowed forward pass
    with pytest.raises(ValueError, match="max_abs_h must be >= 0"):
        eta_bound(m, max_abs_h=-1.0)
    with pytest.raises(ValueError, match=r"shape \(2, 2\)"):
        eta_bound(m, max_abs_h=torch.ones(4))
    with pytest.raises(TypeError, match="LiGRU or SLiGRU"):
        eta_bound(nn.GRU(3, 4), 1.0)


# --- torch.compile -----------------------------------------------------------------------------------------------

# torch 2.13's own inductor import (torch/utils/mkldnn.py) calls the deprecated torch.jit.script_method
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
@pytest.mark.slow
def test_compiled_step_equals_eager():
    torch._dynamo.reset()
    step = torch.compile(ligru_step, backend="inductor", dynamic=False)
    params = LiGRUParams(_randn(8, 4, seed=1))
    h, w = _randn(2, 4, seed=2), _randn(2, 8, seed=3)
    start = time.perf_counter()
    for stabilised in (False, True):
        torch.testing.assert_close(step(params, h, w, None, stabilised), ligru_step(params, h, w, None, stabilised),
                                   rtol=0, atol=1e-12)
    assert time.perf_counter() - start < 120  # compile time, for the record (we compile the step, not the loop)


# --- bad input ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        (dict(hidden_size=0), ValueError, "hidden_size must be greater than zero"),
        (dict(nonlinearity="gelu"), ValueError, "Unknown nonlinearity 'gelu'"),
        (dict(backend="cuda"), ValueError, "backend must be one of auto, loop, fused, got 'cuda'"),
        (dict(ff_normalization="groupnorm"), ValueError, "ff_normalization must be"),
        (dict(recurrent_dropout=1.0), ValueError, r"recurrent_dropout should be a number in range \[0, 1\)"),
        (dict(ln_eps=-1e-5), ValueError, "ln_eps must be a finite number >= 0"),
        (dict(recurrent_affine=1), TypeError, "recurrent_affine should be of type bool"),
    ],
)
def test_bad_constructor_arguments(kwargs, exc, match):
    args = dict(input_size=3, hidden_size=4) | kwargs
    with pytest.raises(exc, match=match):
        SLiGRU(**args)


@pytest.mark.parametrize("cls", CELLS)
def test_bad_forward_calls(cls):
    m = cls(3, 4, num_layers=2)
    with pytest.raises(ValueError, match="Expected input to be 2D or 3D, got 4D"):
        m(torch.zeros(5, 2, 3, 1))
    with pytest.raises(ValueError, match="Expected 3, got 6"):
        m(torch.zeros(5, 2, 6))
    with pytest.raises(ValueError, match=r"Expected hidden size \(2, 2, 4\), got \[1, 2, 4\]"):
        m(torch.zeros(5, 2, 3), torch.zeros(1, 2, 4))
    with pytest.raises(ValueError, match="hx dtype"):
        m(torch.zeros(5, 2, 3), torch.zeros(2, 2, 4, dtype=D64))
    with pytest.raises(ValueError, match="does not match weight dtype"):
        m(torch.zeros(5, 2, 3, dtype=D64))
    with pytest.raises(TypeError, match="PackedSequence"):
        m(nn.utils.rnn.pack_padded_sequence(torch.zeros(5, 2, 3), [5, 3]))


# --- SpeechBrain, held out -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls_name", ["LiGRU", "SLiGRU"])
def test_against_speechbrain(cls_name):
    sb = pytest.importorskip("speechbrain.nnet.RNN")
    T, B, F, H = 7, 3, 4, 5
    ref = getattr(sb, cls_name)(hidden_size=H, input_shape=(B, T, F), num_layers=2).double().eval()
    ours = (LiGRU if cls_name == "LiGRU" else SLiGRU)(F, H, num_layers=2, batch_first=True, dtype=D64).eval()
    with torch.no_grad():
        for i in range(2):
            layer = ref.rnn[i]
            getattr(ours, f"weight_ih_l{i}").copy_(layer.w.weight)
            getattr(ours, f"weight_hh_l{i}").copy_(layer.u.weight)
            getattr(ours, f"norm_l{i}").load_state_dict(layer.norm.state_dict())
    x = _randn(B, T, F, seed=1)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_ref, _ = ref(xa)
    out, _ = ours(xb)
    torch.testing.assert_close(out, out_ref, rtol=0, atol=1e-12)
    out_ref.square().sum().backward()
    out.square().sum().backward()
    torch.testing.assert_close(xb.grad, xa.grad, rtol=0, atol=1e-10)
    torch.testing.assert_close(ours.weight_hh_l0.grad, ref.rnn[0].u.weight.grad, rtol=0, atol=1e-10)


# --- the adding problem ------------------------------------------------------------------------------------------

def test_adding_problem_targets_and_markers():
    from wrec.tasks.adding import CONSTANT_PREDICTOR_MSE, adding_problem

    x, y = adding_problem(20_000, 11, seed=3)
    assert x.shape == (20_000, 11, 2) and y.shape == (20_000,)
    values, markers = x[..., 0], x[..., 1]
    assert set(np.unique(markers)) == {0.0, 1.0}
    np.testing.assert_array_equal(markers[:, :5].sum(1), 1)  # one marker in [0, T//2) ...
    np.testing.assert_array_equal(markers[:, 5:].sum(1), 1)  # ... and one in [T//2, T)
    direct = np.array([sum(v for v, m in zip(vs, ms, strict=True) if m) for vs, ms in zip(values[:50], markers[:50],
                                                                                           strict=True)])
    np.testing.assert_allclose(y[:50], direct, rtol=0, atol=1e-15)
    assert values.min() >= 0 and values.max() < 1
    # the constant predictor 1 has MSE Var(v_a + v_b) = 1/6; sd of the estimate ≈ 0.0012 at n = 2·10⁴
    assert abs(np.mean((y - 1) ** 2) - CONSTANT_PREDICTOR_MSE) < 0.006
    assert abs(y.mean() - 1) < 0.012
    x2, y2 = adding_problem(20_000, 11, seed=3)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    with pytest.raises(ValueError, match="length must be >= 2"):
        adding_problem(4, 1)
    with pytest.raises(ValueError, match="batch must be >= 1"):
        adding_problem(0, 10)


# --- experiments, end to end through the CLI at smoke size --------------------------------------------------------

def _cli_run(monkeypatch, tmp_path, name, module, tiny):
    from typer.testing import CliRunner

    from wrec.cli import app
    from wrec.experiments import EXPERIMENTS

    monkeypatch.setitem(EXPERIMENTS, name, module)
    monkeypatch.setattr(module.Config, "quick", classmethod(lambda cls, **kw: cls(**{**tiny, **kw})))
    result = CliRunner().invoke(app, ["run", name, "--quick", "--workers", "1", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    folder = tmp_path / name
    import pandas as pd

    return result.output, pd.read_csv(folder / "table.csv"), pd.read_csv(folder / "targets.csv"), folder


def test_gain_sweep_experiment(monkeypatch, tmp_path):
    from wrec.experiments import sligru_gain_sweep as exp

    tiny = dict(gains=(0.5, 1.0, 8.0), hidden_size=32, batch=2, length=300, replicates=2)
    out, table, targets, folder = _cli_run(monkeypatch, tmp_path, "sligru-gain-sweep", exp, tiny)
    assert "reproduction targets" in out and len(targets) == 3
    sl = table[table.cell == "SLiGRU"]
    assert (sl.rel_dev_max <= 1e-3).all()  # scale invariance up to eps
    assert (sl.rel_dev_eps0_max <= 1e-5).all()  # exact without eps (float32 arithmetic)
    li = table[table.cell == "LiGRU"].set_index("gain")
    assert li.loc[0.5, "nonfinite"] == 0 and li.loc[1.0, "nonfinite"] == 0
    assert not li.loc[8.0, "max_abs_h_median"] < li.loc[1.0, "max_abs_h_median"] * 10  # blown up (or inf)
    assert (folder / "sligru-gain-sweep.png").stat().st_size > 10_000
    assert (folder / "sligru-gain-sweep-trajectories.png").exists()


def test_adding_targets_are_gated_on_configs_where_the_li_grus_gradient_grows():
    """The gate is decided from the Li-GRU's own trajectory (peak over its first steps), never from the ratio."""
    from wrec.experiments import sligru_adding as exp

    rows = []
    for lr, li_curve in ((1e-2, [1.0] * 10 + [50.0] + [1.0] * 9), (3e-3, [1.0] * 20)):  # grows; flat
        for rep in range(5):
            for cell, curve in (("LiGRU", li_curve), ("SLiGRU", [1.0] * 20)):
                rows += [{"record": "step", "length": 100, "lr": lr, "ff_norm": "none", "cell": cell,
                          "replicate": rep, "step": k, "grad_norm": g} for k, g in enumerate(curve)]
                rows.append({"record": "final", "length": 100, "lr": lr, "ff_norm": "none", "cell": cell,
                             "replicate": rep, "peak_grad_norm": max(curve), "diverged": False})
    results = pd.DataFrame(rows)
    growth = exp.li_gru_growth(results)
    assert growth[(100, 1e-2, "none")] == 50.0 and growth[(100, 3e-3, "none")] == 1.0
    held = exp.targets(results).set_index("target")["held"]
    assert held["median Li-GRU / SLi-GRU peak ‖∇‖ (configs where Li-GRU's gradient grows ≥ 2×: 1)"]
    assert not held["median Li-GRU / SLi-GRU peak ‖∇‖ (other configs, reported: 1)"]


def test_adding_experiment_and_divergence_is_reported(monkeypatch, tmp_path):
    from wrec.experiments import sligru_adding as exp

    tiny = dict(lengths=(20,), lrs=(1e-2, 1e30), hidden_size=8, batch=8, steps=4, replicates=1, test_size=50)
    out, table, targets, folder = _cli_run(monkeypatch, tmp_path, "sligru-adding", exp, tiny)
    assert 2 <= len(targets) <= 4 and "median Li-GRU / SLi-GRU" in out
    assert "LiGRU_growth" in table  # the gate's measure, per configuration
    sane = table[table.lr == 1e-2]
    assert (sane.diverged == 0).all() and sane.test_mse_median.notna().all()
    # lr = 1e30 puts ~1e30 into the weights after one Adam step: the loss overflows and the run stops, reported
    wild = table[table.lr == 1e30]
    assert (wild.diverged == 1).all() and wild.test_mse_median.isna().all()
    assert (wild.first_nonfinite_step >= 1).all()
    assert (folder / "sligru-adding.png").exists() and (folder / "sligru-adding-training.png").exists()
    stored = exp.sweep.run(exp.evaluate, exp.Config(**tiny).tasks()[:1])
    steps = stored[stored.record == "step"]
    assert np.isfinite(steps.loss).all() and len(steps) == 4
    with pytest.raises(ValueError, match="cells must be among"):
        exp.Config(cells=("GRU",))
