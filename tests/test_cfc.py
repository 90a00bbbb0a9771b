"""Checks of wrec.nn.cfc (Tumma et al., ICLR 2024) against exact references: exact rank and mask density, spectral laws
at init, gradcheck, step == sequence and nn.GRU's shapes, the dense low-rank-sparse RNNs against torch's own, ncps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from wrec.nn.cfc import (
    CfC,
    CfCCell,
    LowRankSparse,
    LowRankSparseGRU,
    LowRankSparseLSTM,
    LowRankSparseRNN,
    recurrent_matrices,
    spectral_summary,
)
from wrec.weights import low_rank_sparse_factors

D64 = torch.float64


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------- exact rank, mask density, masked zeros


@pytest.mark.parametrize("rank", [1, 4, 16])
def test_rank_is_exact_at_init_and_after_training_and_masked_entries_stay_zero(rank):
    H = 32
    cell = CfCCell(3, H, rank=rank, sparsity=0.5, generator=gen(rank), dtype=D64)
    opt = torch.optim.Adam(cell.parameters(), lr=1e-2)
    u = torch.randn(20, 8, 3, dtype=D64, generator=gen(1))
    masks = {k: b.mask.clone() for k, b in cell.rec.items()}
    for k, b in cell.rec.items():
        assert torch.linalg.matrix_rank(b.P @ b.Q.t()).item() == rank, k
    for _ in range(20):
        out, _ = cell.sequence(u, torch.zeros(8, H, dtype=D64), 1.0)
        loss = out.square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    for k, b in cell.rec.items():
        assert torch.linalg.matrix_rank(b.P @ b.Q.t()).item() == rank, k
        assert torch.equal(b.mask, masks[k])  # the mask is a buffer: never trained
        W = b()
        assert bool((W[masks[k] == 0] == 0).all())  # masked entries are exactly 0, not small
        assert int((W != 0).sum()) == int(masks[k].sum())


def test_full_rank_without_mask_reproduces_the_initial_matrix():
    W0 = torch.randn(24, 24, dtype=D64, generator=gen(0))
    block = LowRankSparse(24, 24, rank=24, sparsity=0.0, init=W0, dtype=D64)
    assert torch.max(torch.abs(block() - W0)).item() < 1e-12
    P, Q, M = low_rank_sparse_factors(24, 24, 24, 0.0, init=W0.numpy(), seed=0)
    assert np.max(np.abs(P @ Q.T - W0.numpy())) < 1e-12
    assert np.all(M == 1)


def test_factors_are_the_truncated_svd_with_balanced_singular_values():
    W0 = np.random.default_rng(0).standard_normal((20, 12))
    P, Q, _ = low_rank_sparse_factors(20, 12, 5, 0.0, init=W0, seed=0)
    U, s, Vt = np.linalg.svd(W0)
    np.testing.assert_allclose(P @ Q.T, (U[:, :5] * s[:5]) @ Vt[:5], atol=1e-12)
    np.testing.assert_allclose(P.T @ P, np.diag(s[:5]), atol=1e-12)  # P = U_r Σ_r^½
    np.testing.assert_allclose(Q.T @ Q, np.diag(s[:5]), atol=1e-12)


@pytest.mark.parametrize("sparsity", [0.5, 0.8, 0.95])
def test_mask_density(sparsity):
    H = 64
    exact = LowRankSparse(H, H, 16, sparsity, mask="exact", generator=gen(0))
    assert exact.mask.mean().item() == round(H * H * (1 - sparsity)) / (H * H)
    dens = [LowRankSparse(H, H, 16, sparsity, generator=gen(s)).mask.mean().item() for s in range(5)]
    se = np.sqrt(sparsity * (1 - sparsity) / (5 * H * H))
    assert abs(np.mean(dens) - (1 - sparsity)) < 4 * se


def test_shared_mask_is_one_mask_for_every_head():
    shared = CfCCell(2, 16, rank=4, sparsity=0.5, shared_mask=True, generator=gen(0))
    masks = [b.mask for b in shared.rec.values()]
    assert all(torch.equal(m, masks[0]) for m in masks)
    own = CfCCell(2, 16, rank=4, sparsity=0.5, generator=gen(0))
    masks = [b.mask for b in own.rec.values()]
    assert not torch.equal(masks[0], masks[1])


def test_generator_reproduces_and_leaves_the_global_rng_alone():
    state = torch.random.get_rng_state()
    a = CfC(3, 8, rank=2, sparsity=0.5, generator=gen(7))
    assert torch.equal(torch.random.get_rng_state(), state)
    b = CfC(3, 8, rank=2, sparsity=0.5, generator=gen(7))
    for (na, pa), (nb, pb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert na == nb and torch.equal(pa, pb)


# -------------------------------------------------------------------------- spectral laws at initialisation


def _mean_spectra(n: int, rank: int, sparsity: float, init: str, draws: int = 5) -> tuple[float, float]:
    out = [spectral_summary(LowRankSparse(n, n, rank, sparsity, init, generator=gen(1000 * n + d), dtype=D64)())
           for d in range(draws)]
    return float(np.mean([o["rho"] for o in out])), float(np.mean([o["norm"] for o in out]))


@pytest.mark.parametrize("n", [64, 128])
def test_spectral_laws_at_initialisation(n):
    tol = 0.15
    # full rank: masking scales the entry variance by 1 − s, so ρ by √(1 − s) (circular law)
    rho_full, norm_full = _mean_spectra(n, n, 0.0, "glorot")
    for s in (0.5, 0.8):
        rho, _ = _mean_spectra(n, n, s, "glorot")
        assert rho == pytest.approx(np.sqrt(1 - s) * rho_full, rel=tol), s
    # orthogonal rank r: ρ ≈ √((r/n)(1 − s)). At r = n/16 = 4 or 8, s = 0, one draw's sd is 20–27 % of ρ (measured
    # over 200 draws), so a mean of 5 cannot resolve ±15 %: 20 draws there (more draws, same tolerance)
    for r in (n, n // 4, n // 16):
        for s in (0.0, 0.5, 0.8):
            rho, _ = _mean_spectra(n, r, s, "orthogonal", draws=20 if r == n // 16 else 5)
            assert rho == pytest.approx(np.sqrt(r / n * (1 - s)), rel=tol), (r, s)
    # truncation keeps the top singular value: same W₀ draw, any rank
    for init in ("glorot", "orthogonal"):
        full = spectral_summary(LowRankSparse(n, n, n, 0.0, init, generator=gen(5), dtype=D64)())["norm"]
        trunc = spectral_summary(LowRankSparse(n, n, n // 4, 0.0, init, generator=gen(5), dtype=D64)())["norm"]
        assert trunc == pytest.approx(full, rel=1e-10)
    # monotone decrease in s (s >= 0.5) and in r
    for init in ("glorot", "orthogonal"):
        for r in (n, n // 4):
            spectra = [_mean_spectra(n, r, s, init) for s in (0.5, 0.8, 0.95)]
            assert spectra[0][0] > spectra[1][0] > spectra[2][0]
            assert spectra[0][1] > spectra[1][1] > spectra[2][1]
        rhos = [_mean_spectra(n, r, 0.5, init)[0] for r in (n, n // 4, n // 16)]
        assert rhos[0] > rhos[1] > rhos[2]
    # the exception: masking a full-rank orthogonal matrix raises ‖·‖₂ above 1 (1.27 at s = 0.5, mean of 5 draws)
    _, norm = _mean_spectra(n, n, 0.5, "orthogonal")
    assert norm > 1.0
    if n == 128:
        assert norm == pytest.approx(1.27, rel=tol)
        assert norm_full == pytest.approx(1.97, rel=tol)


# ------------------------------------------------------------------------------------------------ gradcheck


@pytest.mark.parametrize("mode", ["default", "no_gate", "pure"])
def test_gradcheck_cell(mode):
    cell = CfCCell(3, 4, mode=mode, rank=2, sparsity=0.5, generator=gen(0), dtype=D64)
    names = [n for n, _ in cell.named_parameters()]
    assert any(n.endswith(".P") for n in names) and any(n.endswith(".Q") for n in names) and "bias" in names
    params = tuple(p.detach().clone().requires_grad_() for p in cell.parameters())
    u = torch.randn(2, 3, dtype=D64, generator=gen(1), requires_grad=True)
    h = torch.randn(2, 4, dtype=D64, generator=gen(2), requires_grad=True)
    ts = (0.5 + torch.rand(2, 1, dtype=D64, generator=gen(3))).requires_grad_()

    def f(u, h, ts, *p):
        return torch.func.functional_call(cell, dict(zip(names, p, strict=True)), (u, h, ts))

    assert torch.autograd.gradcheck(f, (u, h, ts, *params), atol=1e-7)


def test_gradcheck_sequence_through_time():
    m = CfC(2, 3, rank=2, sparsity=0.5, generator=gen(0), dtype=D64)
    names = [n for n, _ in m.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for p in m.parameters())
    x = torch.randn(6, 2, 2, dtype=D64, generator=gen(1), requires_grad=True)

    def f(x, *p):
        return torch.func.functional_call(m, dict(zip(names, p, strict=True)), (x,))[0]

    assert torch.autograd.gradcheck(f, (x, *params))


# ------------------------------------------------------------------------ step == sequence, nn.GRU's shapes


@pytest.mark.parametrize("mode", ["default", "no_gate", "pure"])
def test_step_by_step_equals_sequence(mode):
    m = CfC(3, 8, mode=mode, rank=3, sparsity=0.5, generator=gen(0), dtype=D64)
    x = torch.randn(7, 4, 3, dtype=D64, generator=gen(1))
    ts = 0.1 + torch.rand(7, 4, dtype=D64, generator=gen(2))
    h0 = torch.randn(1, 4, 8, dtype=D64, generator=gen(3))
    out, h_n = m(x, h0, timespans=ts)
    h = h0[0]
    for t in range(7):
        h = m.cell()(x[t], h, ts[t].unsqueeze(1))
        torch.testing.assert_close(out[t], h, rtol=0, atol=1e-14)
    torch.testing.assert_close(h_n[0], h, rtol=0, atol=1e-14)
    # unbatched (T, F) with timespans (T,) is sample 0 of the batch
    out0, _ = m(x[:, 0], h0[:, 0], timespans=ts[:, 0])
    torch.testing.assert_close(out0, out[:, 0], rtol=0, atol=1e-14)


def test_reverse_direction_sees_time_and_timespans_reversed():
    m = CfC(2, 5, bidirectional=True, batch_first=True, generator=gen(0), dtype=D64)
    x = torch.randn(3, 6, 2, dtype=D64, generator=gen(1))
    ts = 0.1 + torch.rand(3, 6, 1, dtype=D64, generator=gen(2))
    out, h_n = m(x, timespans=ts)
    rev = m.cell(0, 1)
    h = torch.zeros(3, 5, dtype=D64)
    for t in reversed(range(6)):
        h = rev(x[:, t], h, ts[:, t])
        torch.testing.assert_close(out[:, t, 5:], h, rtol=0, atol=1e-14)
    torch.testing.assert_close(h_n[1], h, rtol=0, atol=1e-14)


CALLS = [
    ({}, (5, 3, 4), False),
    ({"batch_first": True}, (3, 5, 4), False),
    ({"num_layers": 2, "bidirectional": True}, (5, 3, 4), True),
    ({"num_layers": 2, "batch_first": True, "bidirectional": True}, (5, 4), True),  # unbatched
    ({}, (5, 4), False),
]


@pytest.mark.parametrize(("kwargs", "shape", "with_hx"), CALLS)
def test_shapes_match_nn_gru(kwargs, shape, with_hx):
    x = torch.randn(*shape)
    ref = nn.GRU(4, 6, **kwargs)
    layers = kwargs.get("num_layers", 1) * (2 if kwargs.get("bidirectional") else 1)
    hx = torch.zeros((layers, 6) if len(shape) == 2 else (layers, 3, 6)) if with_hx else None
    want = [tuple(t.shape) for t in ref(x, hx)]
    for m in (CfC(4, 6, **kwargs, rank=2, sparsity=0.5), LowRankSparseGRU(4, 6, **kwargs, rank=2),
              LowRankSparseRNN(4, 6, **kwargs, sparsity=0.5)):
        assert [tuple(t.shape) for t in m(x, hx)] == want, type(m).__name__


def _copy_torch_weights(dst: nn.Module, src: nn.Module, gates: tuple[str, ...]) -> None:
    H = src.hidden_size
    with torch.no_grad():
        for name, p in src.named_parameters():
            if name.startswith("weight_hh"):
                blocks = getattr(dst, "hh" + name[len("weight_hh"):])
                for i, g in enumerate(gates):
                    blocks[g].weight.copy_(p[i * H:(i + 1) * H])
            else:
                getattr(dst, name).copy_(p)


@pytest.mark.parametrize(("ours", "theirs", "gates"), [
    (LowRankSparseRNN, nn.RNN, ("h",)), (LowRankSparseGRU, nn.GRU, ("r", "z", "n")),
    (LowRankSparseLSTM, nn.LSTM, ("i", "f", "g", "o")),
])
def test_dense_low_rank_sparse_rnns_equal_torch(ours, theirs, gates):
    kw = {"num_layers": 2, "bidirectional": True, "batch_first": True, "dtype": D64}
    ref = theirs(3, 5, **kw)
    m = ours(3, 5, **kw)
    _copy_torch_weights(m, ref, gates)
    x = torch.randn(4, 7, 3, dtype=D64, generator=gen(0))
    h0 = torch.randn(4, 4, 5, dtype=D64, generator=gen(1))
    hx = (h0, torch.randn(4, 4, 5, dtype=D64, generator=gen(2))) if theirs is nn.LSTM else h0
    got, want = m(x, hx), ref(x, hx)
    torch.testing.assert_close(got[0], want[0], rtol=0, atol=1e-12)
    for a, b in zip(*(o[1] if isinstance(o[1], tuple) else (o[1],) for o in (got, want)), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    # recurrent_matrices reads the same gate blocks from both
    mine, torchs = recurrent_matrices(m), recurrent_matrices(ref)
    assert mine.keys() == torchs.keys()
    for k in mine:
        torch.testing.assert_close(mine[k], torchs[k], rtol=0, atol=0)


def test_low_rank_sparse_gru_blocks_have_the_rank_and_mask():
    m = LowRankSparseGRU(3, 16, rank=4, sparsity=0.8, generator=gen(0), dtype=D64)
    for k, W in recurrent_matrices(m).items():
        block = m.hh_l0[k.split(".")[1]]
        assert torch.linalg.matrix_rank(block.P @ block.Q.t()).item() == 4
        assert bool((W[block.mask == 0] == 0).all())
    n_params = sum(p.numel() for p in m.parameters())
    assert n_params == 3 * 16 * 3 + 2 * 3 * 16 + 3 * 2 * 16 * 4  # W_ih, biases, P and Q per gate


def test_spectral_summary_of_known_matrices():
    s = spectral_summary(torch.diag(torch.tensor([3.0, -2.0, 0.0])))
    assert s == {"rho": pytest.approx(3.0), "norm": pytest.approx(3.0), "rank": 2}
    rect = spectral_summary(np.ones((2, 3)))
    assert np.isnan(rect["rho"]) and rect["norm"] == pytest.approx(np.sqrt(6)) and rect["rank"] == 1
    with pytest.raises(ValueError, match="non-finite"):
        spectral_summary(np.array([[np.nan]]))


def test_backbone_structure_is_on_the_first_layers_h_columns():
    cell = CfCCell(3, 8, rank=2, sparsity=0.5, backbone_layers=2, backbone_units=16, generator=gen(0), dtype=D64)
    W = recurrent_matrices(cell)["backbone"]
    assert W.shape == (16, 8)
    assert spectral_summary(W)["rank"] <= 8
    out = cell(torch.randn(4, 3, dtype=D64), torch.zeros(4, 8, dtype=D64))
    assert out.shape == (4, 8) and bool(torch.isfinite(out).all())


# ------------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(("build", "exc", "match"), [
    (lambda: CfC(3, 8, rank=9), ValueError, r"rank must be None \(dense\) or an int in \[1, 8\]"),
    (lambda: CfC(3, 8, rank=0), ValueError, r"rank must be"),
    (lambda: CfC(3, 8, rank=2.0), TypeError, r"rank must be an int"),
    (lambda: CfC(3, 8, sparsity=1.0), ValueError, r"sparsity must be in \[0, 1\)"),
    (lambda: CfC(3, 8, sparsity=-0.1), ValueError, r"sparsity must be in \[0, 1\)"),
    (lambda: CfC(3, 8, mode="gated"), ValueError, r"mode must be one of 'default', 'no_gate', 'pure', got 'gated'"),
    (lambda: CfC(3, 8, mask="random"), ValueError, r"mask must be one of"),
    (lambda: CfC(3, 8, init="he"), ValueError, r"init must be one of"),
    (lambda: LowRankSparseGRU(3, 8, rank=9), ValueError, r"rank must be .* \[1, 8\]"),
    (lambda: LowRankSparseLSTM(3, 8, sparsity=1.5), ValueError, r"sparsity must be in \[0, 1\)"),
    (lambda: LowRankSparseLSTM(3, 8, proj_size=2), ValueError, r"proj_size must be 0"),
    (lambda: LowRankSparse(4, 6, rank=5), ValueError, r"rank must be .* \[1, 4\]"),
    (lambda: LowRankSparse(4, 4, 2, init=torch.zeros(3, 3)), ValueError, r"init must be one of .* shape \(4, 4\)"),
    (lambda: CfC(3, 0), ValueError, r"hidden_size must be greater than zero"),
])
def test_bad_constructor_arguments(build, exc, match):
    with pytest.raises(exc, match=match):
        build()


def test_bad_forward_arguments():
    m = CfC(3, 8)
    x = torch.randn(5, 2, 3)
    with pytest.raises(ValueError, match=r"timespans must be a float or a tensor of shape \(5, 2\)"):
        m(x, timespans=torch.ones(2, 5))
    with pytest.raises(ValueError, match=r"timespans must be finite and >= 0"):
        m(x, timespans=-torch.ones(5, 2))
    with pytest.raises(ValueError, match=r"Expected hidden size \(1, 2, 8\)"):
        m(x, torch.zeros(1, 3, 8))
    with pytest.raises(ValueError, match=r"input.size\(-1\) must be equal to input_size"):
        m(torch.randn(5, 2, 4))
    cell = m.cell()
    with pytest.raises(ValueError, match=r"ts must be a float or a tensor of shape \(2, 1\)"):
        cell(torch.randn(2, 3), torch.zeros(2, 8), torch.ones(3, 1))
    with pytest.raises(ValueError, match=r"hx must have shape \(2, 8\)"):
        cell(torch.randn(2, 3), torch.zeros(2, 7))


# ------------------------------------------------------------------------------------------- held out: ncps


@pytest.mark.parametrize("mode", ["default", "no_gate", "pure"])
def test_matches_ncps_cfc_cell(mode):
    ncps = pytest.importorskip("ncps.torch")
    F_in, H, B = 3, 6, 4
    ref = ncps.CfCCell(F_in, H, mode=mode, backbone_layers=0).double()
    ours = CfCCell(F_in, H, mode=mode, rank=H, sparsity=0.0, dtype=D64)
    heads = ["ff1"] if mode == "pure" else ["ff1", "ff2", "time_a", "time_b"]
    with torch.no_grad():
        ours.weight_in.copy_(torch.cat([getattr(ref, k).weight[:, :F_in] for k in heads]))
        ours.bias.copy_(torch.cat([getattr(ref, k).bias for k in heads]))
        for k in heads:
            ours.rec[k].reset_parameters(init=getattr(ref, k).weight[:, F_in:].detach().clone())
        if mode == "pure":
            ours.A.copy_(ref.A.reshape(-1))
            ours.w_tau.copy_(ref.w_tau.reshape(-1))
    h_ref = h = torch.zeros(B, H, dtype=D64)
    g = gen(0)
    for _ in range(50):
        u = torch.randn(B, F_in, dtype=D64, generator=g)
        ts = 0.1 + 2 * torch.rand(B, 1, dtype=D64, generator=g)
        h_ref, _ = ref(u, h_ref, ts)
        h = ours(u, h, ts)
        torch.testing.assert_close(h, h_ref, rtol=0, atol=1e-12)


def test_low_rank_sparse_parametrization_of_any_weight():
    """``low_rank_sparse_`` turns a module's weight into (P Qᵀ) ⊙ M, P Qᵀ the rank-r truncation of its value, and
    a redraw through the module's own reset goes through the right inverse (RSNN's W_rec here)."""
    from wrec.nn import low_rank_sparse_
    from wrec.spiking.rsnn import RSNN

    lin = torch.nn.Linear(6, 5, dtype=torch.float64)
    w0 = lin.weight.detach().clone()
    low_rank_sparse_(lin, "weight", 2, 0.5, mask="exact", generator=torch.Generator().manual_seed(0))
    plist = lin.parametrizations.weight
    U, S, Vh = torch.linalg.svd(w0)
    torch.testing.assert_close(plist.original0 @ plist.original1.T, (U[:, :2] * S[:2]) @ Vh[:2])
    assert float(plist[0].mask.sum()) == 15  # exactly round(30 · 0.5) ones
    torch.testing.assert_close(lin.weight, (plist.original0 @ plist.original1.T) * plist[0].mask)
    net = low_rank_sparse_(RSNN(4, (8,), 3, dtype=torch.float64), "weight_hh_l0", 3)
    net.reset_parameters(torch.Generator().manual_seed(5))
    fresh = RSNN(4, (8,), 3, dtype=torch.float64, generator=torch.Generator().manual_seed(5)).weight_hh_l0.detach()
    U, S, Vh = torch.linalg.svd(fresh)
    torch.testing.assert_close(net.weight_hh_l0, (U[:, :3] * S[:3]) @ Vh[:3])
    for kwargs, error, match in (({"rank": 6}, ValueError, r"rank must be None \(dense\) or an int in \[1, 5\]"),
                                 ({"rank": None}, ValueError, "rank must be an int"),
                                 ({"rank": 2, "sparsity": 1.0}, ValueError, "sparsity must be in"),
                                 ({"rank": 2, "mask": "grid"}, ValueError, "mask must be one of")):
        with pytest.raises(error, match=match):
            low_rank_sparse_(torch.nn.Linear(6, 5), "weight", **kwargs)
    with pytest.raises(ValueError, match="must be a 2-D weight"):
        low_rank_sparse_(torch.nn.Linear(6, 5), "bias", 1)
