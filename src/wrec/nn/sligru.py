"""Light GRU (Li-GRU) and stabilised light GRU (SLi-GRU) as drop-in ``torch.nn.GRU`` replacements.

Moumen & Parcollet, "Stabilising and accelerating light gated recurrent units for automatic speech recognition",
ICASSP 2023 (arXiv 2302.10144). One layer, one direction, with ``w_t = NORM(W x)_t`` computed for all t at once:

    Li-GRU:   g_t = w_t + U h_{t−1}            SLi-GRU:  g_t = w_t + LN(U h_{t−1})
    [a_t, ẑ_t] = split(g_t);  z_t = σ(ẑ_t);  h̃_t = φ(a_t) ⊙ m;  h_t = z_t ⊙ h_{t−1} + (1 − z_t) ⊙ h̃_t

W (2H×F) and U (2H×H) have no bias (rows 0…H−1 candidate, H…2H−1 update gate); NORM is BatchNorm1d over the
(B·T, 2H) matrix (default), LayerNorm or none, and its shift is the layer's only bias; LN normalises the 2H
features of U h per sample and step (eps ``ln_eps``, no affine unless ``recurrent_affine``); m is a
recurrent-dropout mask drawn once per sequence. The LN makes the recurrent drive invariant to the scale of h
and U, which stops the ReLU candidate's runaway growth.

Backends: ``loop`` runs ``ligru_step`` under autograd (the readable reference); ``fused`` is a
``torch.autograd.Function`` whose forward runs the loop without a graph and whose backward through time is
written by hand; ``auto`` takes ``fused`` when a gradient is needed and ``loop`` otherwise.
"""

from __future__ import annotations

import math
from functools import partial
from numbers import Real
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wrec.rnn import RNNOptions, rnn_forward

NONLINEARITIES = ("relu", "tanh", "leaky_relu", "sin")
FF_NORMALIZATIONS = ("batchnorm", "layernorm", None)
BACKENDS = ("auto", "loop", "fused")
_LEAKY_SLOPE = 0.01  # torch's default negative slope


def _phi(a: Tensor, nonlinearity: str) -> Tensor:
    if nonlinearity == "relu":
        return torch.relu(a)
    if nonlinearity == "tanh":
        return torch.tanh(a)
    if nonlinearity == "leaky_relu":
        return F.leaky_relu(a, _LEAKY_SLOPE)
    return torch.sin(a)


def _phi_prime(a: Tensor, nonlinearity: str) -> Tensor:
    if nonlinearity == "relu":
        return (a > 0).to(a.dtype)
    if nonlinearity == "tanh":
        return 1 - torch.tanh(a).square()
    if nonlinearity == "leaky_relu":
        return torch.where(a > 0, 1.0, _LEAKY_SLOPE).to(a.dtype)
    return torch.cos(a)


class LiGRUParams(NamedTuple):
    """What one step needs besides the state: the recurrent weight and the recurrent LN's settings.

    ``weight_hh`` U (2H, H); ``ln_weight``/``ln_bias`` (2H,) the optional affine of the recurrent LN (SLi-GRU).
    """

    weight_hh: Tensor
    nonlinearity: str = "relu"
    ln_eps: float = 1e-5
    ln_weight: Tensor | None = None
    ln_bias: Tensor | None = None


def ligru_step(params: LiGRUParams, h: Tensor, w_t: Tensor, mask: Tensor | None, stabilised: bool) -> Tensor:
    """One Li-GRU (``stabilised=False``) or SLi-GRU (``stabilised=True``) step, a pure function.

    g = w_t + U h (Li-GRU) or w_t + LN(U h) (SLi-GRU); [a, ẑ] = split(g); z = σ(ẑ); h̃ = φ(a) ⊙ m;
    returns z ⊙ h + (1 − z) ⊙ h̃. ``mask`` None means no recurrent dropout (m = 1).

    Shape: h (B, H); w_t (B, 2H) = NORM(W x)_t; mask (B, H) or None; returns (B, H).
    """
    r = h @ params.weight_hh.t()  # (B, 2H)
    if stabilised:
        r = F.layer_norm(r, r.shape[-1:], params.ln_weight, params.ln_bias, params.ln_eps)
    a, z_hat = (w_t + r).chunk(2, dim=-1)
    z = torch.sigmoid(z_hat)
    candidate = _phi(a, params.nonlinearity)
    if mask is not None:
        candidate = candidate * mask
    return z * h + (1 - z) * candidate


def _loop(params: LiGRUParams, w: Tensor, h0: Tensor, mask: Tensor | None, stabilised: bool) -> Tensor:
    h, outs = h0, []
    for t in range(w.size(0)):
        h = ligru_step(params, h, w[t], mask, stabilised)
        outs.append(h)
    return torch.stack(outs)


class _FusedLightGRU(torch.autograd.Function):
    """The whole-sequence recurrence with a hand-written backward through time (``backend="fused"``).

    Backward, from dh (the output's gradient plus the carry from t+1):
    dz = dh ⊙ (h_{t−1} − h̃) ⊙ z(1−z); da = dh ⊙ (1−z) ⊙ m ⊙ φ′(a); dg = [da, dz];
    dr = rstd ⊙ (dĝ − mean(dĝ) − n̂ ⊙ mean(dĝ ⊙ n̂)) with dĝ = γ ⊙ dg (LN backward; dr = dg for Li-GRU);
    dh_{t−1} = dh ⊙ z + dr U; dU = Σ_t dr_tᵀ h_{t−1}; dw_t = dg; dγ = Σ dg ⊙ n̂; dβ = Σ dg.
    The per-step work is only what the carry needs; everything else is done on (T, B, ·) blocks at once.
    """

    @staticmethod
    def forward(ctx, w, h0, U, mask, ln_weight, ln_bias, stabilised, nonlinearity, eps, save):
        T, B, H2 = w.shape
        H = H2 // 2
        Ut = U.t()
        G = torch.empty_like(w)  # g_t, the pre-activations
        Z = w.new_empty(T, B, H)
        out = w.new_empty(T, B, H)
        if stabilised:
            Nhat = torch.empty_like(w)
            Rstd = w.new_empty(T, B, 1)
        h = h0
        for t in range(T):
            if stabilised:
                n_hat, _, rstd = torch.native_layer_norm(h @ Ut, (H2,), None, None, eps)
                Nhat[t], Rstd[t] = n_hat, rstd
                if ln_weight is not None:
                    n_hat = torch.addcmul(ln_bias, n_hat, ln_weight) if ln_bias is not None else n_hat * ln_weight
                torch.add(w[t], n_hat, out=G[t])
            else:
                torch.addmm(w[t], h, Ut, out=G[t])
            torch.sigmoid(G[t, :, H:], out=Z[t])
            cand = _phi(G[t, :, :H], nonlinearity)
            if mask is not None:
                cand = cand * mask
            # z ⊙ h + (1 − z) ⊙ h̃ = h̃ + z ⊙ (h − h̃)
            torch.lerp(cand, h, Z[t], out=out[t])
            h = out[t]
        ctx.stabilised, ctx.nonlinearity = stabilised, nonlinearity
        ctx.has_ln_bias = ln_bias is not None
        if save:
            saved = [h0, U, out, G, Z, mask, ln_weight]
            if stabilised:
                saved += [Nhat, Rstd]
            ctx.save_for_backward(*saved)
        return out

    @staticmethod
    def backward(ctx, d_out):
        h0, U, out, G, Z, mask, ln_weight, *ln_saved = ctx.saved_tensors
        T, B, H = out.shape
        stabilised = ctx.stabilised
        h_prev = torch.cat([h0.unsqueeze(0), out[:-1]])  # (T, B, H)
        A = G[..., :H]
        dphi = _phi_prime(A, ctx.nonlinearity)
        cand = _phi(A, ctx.nonlinearity)
        if mask is not None:
            dphi, cand = dphi * mask, cand * mask
        one_minus_z = 1 - Z
        # dg_t = coef_t ⊙ [dh_t, dh_t]: the gate factors of da and dz, stacked as (T, B, 2, H)
        coef = torch.stack([one_minus_z * dphi, (h_prev - cand) * Z * one_minus_z], dim=2)
        dG = torch.empty_like(G)
        dR = torch.empty_like(G) if stabilised else dG
        if stabilised:
            Nhat, Rstd = ln_saved
        dh = torch.zeros_like(h0)
        for t in range(T - 1, -1, -1):
            dh = dh + d_out[t]
            dg = dG[t]
            torch.mul(coef[t], dh.unsqueeze(1), out=dg.view(B, 2, H))
            if stabilised:
                dgh = dg * ln_weight if ln_weight is not None else dg
                n_hat = Nhat[t]
                m1 = dgh.mean(-1, keepdim=True)
                m2 = (dgh * n_hat).mean(-1, keepdim=True)
                dr = dR[t]
                torch.sub(dgh, m1, out=dr)
                dr.sub_(n_hat * m2).mul_(Rstd[t])
            else:
                dr = dg
            dh = torch.addmm(dh * Z[t], dr, U)
        H2 = 2 * H
        dU = dR.reshape(T * B, H2).t() @ h_prev.reshape(T * B, H)
        d_ln_weight = d_ln_bias = None
        if stabilised and ln_weight is not None:
            d_ln_weight = (dG * Nhat).sum((0, 1))
            d_ln_bias = dG.sum((0, 1)) if ctx.has_ln_bias else None
        return dG, dh, dU, None, d_ln_weight, d_ln_bias, None, None, None, None


def fused_light_gru(
    w: Tensor,
    h0: Tensor,
    weight_hh: Tensor,
    mask: Tensor | None = None,
    *,
    stabilised: bool,
    nonlinearity: str = "relu",
    ln_eps: float = 1e-5,
    ln_weight: Tensor | None = None,
    ln_bias: Tensor | None = None,
) -> Tensor:
    """All T steps of ``ligru_step`` as one autograd node with a hand-written backward through time.

    Shape: w (T, B, 2H); h0 (B, H); weight_hh (2H, H); mask (B, H) or None; returns h_1…h_T (T, B, H).
    """
    # grad mode is off inside Function.forward and needs_input_grad ignores no_grad: decide here what to save
    save = torch.is_grad_enabled()
    return _FusedLightGRU.apply(w, h0, weight_hh, mask, ln_weight, ln_bias, stabilised, nonlinearity, ln_eps, save)


def _check_light_gru_options(nonlinearity: object, ff_normalization: object, backend: object,
                             recurrent_dropout: object, recurrent_affine: object, ln_eps: object) -> None:
    """Raise ValueError/TypeError naming the first of the cell's own options (beyond nn.GRU's) that is invalid."""
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from {', '.join(NONLINEARITIES)}")
    if ff_normalization not in FF_NORMALIZATIONS:
        raise ValueError(f"ff_normalization must be 'batchnorm', 'layernorm' or None, got {ff_normalization!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if isinstance(recurrent_dropout, bool) or not isinstance(recurrent_dropout, Real) \
            or not 0 <= float(recurrent_dropout) < 1:
        raise ValueError(f"recurrent_dropout should be a number in range [0, 1), got {recurrent_dropout!r}")
    if not isinstance(recurrent_affine, bool):
        raise TypeError(f"recurrent_affine should be of type bool, got: {type(recurrent_affine).__name__}")
    if isinstance(ln_eps, bool) or not isinstance(ln_eps, Real) or not (0 <= float(ln_eps) < math.inf):
        raise ValueError(f"ln_eps must be a finite number >= 0, got {ln_eps!r}")


class _LightGRU(nn.Module):
    """Shared body of ``LiGRU`` and ``SLiGRU`` (abstract: only the two subclasses are built)."""

    _stabilised: bool
    weight_ih_l0: Tensor  # the first layer's weights (registered in __init__ with every other layer's)
    weight_hh_l0: Tensor

    def __init__(self, input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, device,
                 dtype, nonlinearity, ff_normalization, recurrent_dropout, recurrent_affine, ln_eps, backend):
        super().__init__()
        opts = RNNOptions(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional)
        _check_light_gru_options(nonlinearity, ff_normalization, backend, recurrent_dropout, recurrent_affine, ln_eps)
        self._opts = opts
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout, self.bidirectional = bias, batch_first, opts.dropout, bidirectional
        self.nonlinearity, self.ff_normalization, self.backend = nonlinearity, ff_normalization, backend
        self.recurrent_dropout, self.recurrent_affine, self.ln_eps = float(recurrent_dropout), recurrent_affine, \
            float(ln_eps)
        factory = {"device": device, "dtype": dtype}
        H2 = 2 * hidden_size
        for layer in range(num_layers):
            for direction in range(opts.num_directions):
                sfx = opts.suffix(layer, direction)
                self.register_parameter(f"weight_ih{sfx}",
                                        nn.Parameter(torch.empty(H2, opts.layer_input_size(layer), **factory)))
                self.register_parameter(f"weight_hh{sfx}", nn.Parameter(torch.empty(H2, hidden_size, **factory)))
                if ff_normalization is not None:
                    norm = (nn.BatchNorm1d(H2, momentum=0.05, **factory) if ff_normalization == "batchnorm"
                            else nn.LayerNorm(H2, **factory))
                    if not bias:  # the shift is the layer's only bias: keep it, frozen at 0, out of parameters()
                        del norm.bias
                        norm.register_buffer("bias", torch.zeros(H2, **factory))
                    self.add_module(f"norm{sfx}", norm)
                if self._stabilised and recurrent_affine:
                    self.register_parameter(f"ln_weight{sfx}", nn.Parameter(torch.empty(H2, **factory)))
                    self.register_parameter(f"ln_bias{sfx}",
                                            nn.Parameter(torch.empty(H2, **factory)) if bias else None)
        self.reset_parameters()

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """U orthogonal (orthonormal columns), W torch's Linear default U(±1/√F), norms to identity.

        ``generator`` (optional) makes the draw reproducible without touching torch's global RNG.
        """
        for layer in range(self.num_layers):
            for direction in range(self._opts.num_directions):
                sfx = self._opts.suffix(layer, direction)
                nn.init.kaiming_uniform_(getattr(self, f"weight_ih{sfx}"), a=math.sqrt(5), generator=generator)
                nn.init.orthogonal_(getattr(self, f"weight_hh{sfx}"), generator=generator)
                norm = getattr(self, f"norm{sfx}", None)
                if norm is not None:
                    norm.reset_parameters()
                    if not self.bias:
                        norm.bias.zero_()
                if self._stabilised and self.recurrent_affine:
                    nn.init.ones_(getattr(self, f"ln_weight{sfx}"))
                    if self.bias:
                        nn.init.zeros_(getattr(self, f"ln_bias{sfx}"))

    def flatten_parameters(self) -> None:
        """No-op, for code written against ``torch.nn.GRU`` (the weights are already separate tensors)."""

    def extra_repr(self) -> str:
        s = self._opts.extra_repr()
        if self.nonlinearity != "relu":
            s += f", nonlinearity={self.nonlinearity!r}"
        if self.ff_normalization != "batchnorm":
            s += f", ff_normalization={self.ff_normalization!r}"
        if self.recurrent_dropout:
            s += f", recurrent_dropout={self.recurrent_dropout}"
        if self._stabilised and self.recurrent_affine:
            s += ", recurrent_affine=True"
        if self._stabilised and self.ln_eps != 1e-5:
            s += f", ln_eps={self.ln_eps}"
        if self.backend != "auto":
            s += f", backend={self.backend!r}"
        return s

    def forward(self, input: Tensor, hx: Tensor | None = None, *, generator: torch.Generator | None = None,
                return_max_abs_h: bool = False) -> tuple[Tensor, Tensor] | tuple[Tensor, Tensor, Tensor]:
        """Run the stack as ``torch.nn.GRU.forward`` does.

        ``generator`` (optional, keyword only) draws the dropout masks (between layers and recurrent); None uses
        torch's global RNG as nn.GRU does. ``return_max_abs_h=True`` (keyword only) also returns max|h| over
        time, batch and units per layer and direction (detached), the input of ``eta_bound``. The module
        itself is not modified (apart from BatchNorm's running statistics in training mode, as in torch).

        Shape: input (T, B, F), (B, T, F) if batch_first, or unbatched (T, F); hx (D·num_layers, B, H) or
        (D·num_layers, H) unbatched; returns output (T, B, D·H) in the input's layout and h_n like hx
        (and max_abs_h (num_layers, D)).
        """
        peaks: list[Tensor] | None = [] if return_max_abs_h else None
        layer_fn = partial(self._layer, generator=generator, peaks=peaks)
        output, h_n = rnn_forward(self._opts, input, hx, layer_fn, training=self.training,
                                  dtype=self.weight_ih_l0.dtype, generator=generator, name=type(self).__name__)
        if peaks is None:
            return output, h_n
        return output, h_n, torch.stack(peaks).reshape(self.num_layers, self._opts.num_directions)

    def _layer(self, layer: int, direction: int, x: Tensor, h0: Tensor, generator: torch.Generator | None,
               peaks: list[Tensor] | None) -> tuple[Tensor, Tensor]:
        sfx = self._opts.suffix(layer, direction)
        T, B, _ = x.shape
        w = F.linear(x, getattr(self, f"weight_ih{sfx}"))  # (T, B, 2H)
        norm = getattr(self, f"norm{sfx}", None)
        if isinstance(norm, nn.BatchNorm1d):
            w = norm(w.reshape(T * B, -1)).reshape(T, B, -1)  # statistics over all B·T rows at once
        elif norm is not None:
            w = norm(w)
        mask = None
        if self.training and self.recurrent_dropout > 0:
            p = self.recurrent_dropout
            mask = torch.empty_like(h0).bernoulli_(1 - p, generator=generator) / (1 - p)
        affine = self._stabilised and self.recurrent_affine
        params = LiGRUParams(getattr(self, f"weight_hh{sfx}"), self.nonlinearity, self.ln_eps,
                             getattr(self, f"ln_weight{sfx}") if affine else None,
                             getattr(self, f"ln_bias{sfx}") if affine else None)
        backend = self.backend
        if backend == "auto":
            needs_grad = torch.is_grad_enabled() and (w.requires_grad or h0.requires_grad
                                                      or params.weight_hh.requires_grad)
            backend = "fused" if needs_grad else "loop"
        if backend == "fused":
            out = fused_light_gru(w, h0, params.weight_hh, mask, stabilised=self._stabilised,
                                  nonlinearity=self.nonlinearity, ln_eps=self.ln_eps, ln_weight=params.ln_weight,
                                  ln_bias=params.ln_bias)
        else:
            out = _loop(params, w, h0, mask, self._stabilised)
        if peaks is not None:  # rnn_forward calls layer-major, then direction: the order of h_n
            with torch.no_grad():
                peaks.append(out.abs().amax())
        return out, out[-1]


class LiGRU(_LightGRU):
    """Light GRU (Ravanelli et al. 2018): g_t = NORM(W x)_t + U h_{t−1}, ReLU candidate, no reset gate.

    A drop-in replacement for ``torch.nn.GRU`` (same constructor arguments, ``forward(input, hx=None)``, output
    and ``h_n`` layout). Extra keyword arguments: ``nonlinearity`` ('relu', 'tanh', 'leaky_relu', 'sin'),
    ``ff_normalization`` ('batchnorm' (momentum 0.05, over B·T rows), 'layernorm' or None), ``recurrent_dropout``
    (a per-sequence mask on the candidate), ``backend`` ('auto', 'loop', 'fused'). Its ReLU candidate is
    unbounded: with a large recurrent gain the state and the gradients can explode (use ``SLiGRU``).

    Parameters per layer k (and ``_reverse``): ``weight_ih_l{k}`` (2H, F), ``weight_hh_l{k}`` (2H, H),
    ``norm_l{k}`` (the feed-forward normaliser; ``bias=False`` freezes its shift at 0).

    Shape: see ``forward``.
    """

    _stabilised = False

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, device=None,
                 dtype=None, *, nonlinearity: str = "relu", ff_normalization: str | None = "batchnorm",
                 recurrent_dropout: float = 0.0, backend: str = "auto") -> None:
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, device,
                         dtype, nonlinearity, ff_normalization, recurrent_dropout, False, 1e-5, backend)


class SLiGRU(_LightGRU):
    """Stabilised light GRU (Moumen & Parcollet 2023): g_t = NORM(W x)_t + LN(U h_{t−1}).

    The layer norm over the 2H recurrent features (eps ``ln_eps``; learnable scale and shift only with
    ``recurrent_affine=True``) makes the recurrent drive independent of the scale of h and U, so the ReLU
    candidate cannot run away. Everything else as ``LiGRU``, a drop-in replacement for ``torch.nn.GRU``;
    with ``recurrent_affine`` the LN's scale and shift are ``ln_weight_l{k}``, ``ln_bias_l{k}`` (2H,).

    Shape: see ``forward``.
    """

    _stabilised = True

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, device=None,
                 dtype=None, *, nonlinearity: str = "relu", ff_normalization: str | None = "batchnorm",
                 recurrent_dropout: float = 0.0, recurrent_affine: bool = False, ln_eps: float = 1e-5,
                 backend: str = "auto") -> None:
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, device,
                         dtype, nonlinearity, ff_normalization, recurrent_dropout, recurrent_affine, ln_eps, backend)


def eta_bound(module: LiGRU | SLiGRU, max_abs_h: float | Tensor) -> Tensor:
    """η = (max|h|/4)·‖U_z‖₂ + ‖U_h‖₂ per layer and direction: a bound on the one-step Jacobian of the Li-GRU.

    U_h, U_z are the candidate and gate blocks of U. η > 1 allows (it does not prove) growth of gradients; it
    is loose (it exceeded 1 for both cells in every run we measured). For SLi-GRU the LN's Jacobian is not
    included: read it as a monitor of ‖U‖ and max|h|, as the reference code does.
    ``max_abs_h``: one value for every layer, or the per-layer, per-direction values a forward pass returns with
    ``return_max_abs_h=True``. A forward pass that overflowed (inf or NaN) gives an inf or NaN η.

    Shape: max_abs_h () or (num_layers, D); returns (num_layers, D).
    """
    if not isinstance(module, _LightGRU):
        raise TypeError(f"module must be a LiGRU or SLiGRU, got {type(module).__name__}")
    D, H = module._opts.num_directions, module.hidden_size
    m = torch.as_tensor(max_abs_h, dtype=module.weight_hh_l0.dtype).detach()
    if m.shape not in ((), (module.num_layers, D)):
        raise ValueError(f"max_abs_h must be a number or have shape ({module.num_layers}, {D}), got "
                         f"{tuple(m.shape)}")
    if torch.any(m < 0):
        raise ValueError(f"max_abs_h must be >= 0, got {max_abs_h!r}")
    m = m.expand(module.num_layers, D)
    eta = torch.empty(module.num_layers, D, dtype=module.weight_hh_l0.dtype)
    with torch.no_grad():
        for layer in range(module.num_layers):
            for direction in range(D):
                U = getattr(module, f"weight_hh{module._opts.suffix(layer, direction)}").detach()
                norm_h = torch.linalg.matrix_norm(U[:H], ord=2)
                norm_z = torch.linalg.matrix_norm(U[H:], ord=2)
                eta[layer, direction] = m[layer, direction] / 4 * norm_z + norm_h
    return eta
