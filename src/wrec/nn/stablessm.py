"""StableSSM: diagonal state-space models whose recurrent eigenvalues are stably reparameterised.

S. Wang, Q. Li, "StableSSM: Alleviating the Curse of Memory in State-space Models through Stable
Reparameterization", ICML 2024. Each mode's continuous eigenvalue is a_n = f(w_n) + iθ_n with the unconstrained
w_n trained and f one of

    direct    f(w) = w                     G_f(w) = 1/w²
    exp       f(w) = −eʷ  (S4/S4D)          G_f(w) = e^{−w}
    softplus  f(w) = −log(1 + eʷ)          G_f(w) = σ(w)/log²(1 + eʷ)
    best      f(w) = −1/(a w² + b)         G_f(w) = 2a|w|

where G_f = |f′|/f² is the gradient scale (|∂L/∂w| ≤ C·G_f(w), the paper's optimisation bound); "best" is the f
with G_f(w)/|w| constant. Every f but "direct" keeps Re a < 0 for every w, so training can bring an eigenvalue
towards the stability boundary but never across it. f is applied with ``torch.nn.utils.parametrize`` on w.

Zero-order hold with step Δ: λ = exp(Δa), B̄ = (λ − 1)/a · B, h_t = λ ⊙ h_{t−1} + B̄ u_t, y_t = 2 Re(Cᵀh_t) + D u_t
(the 2 counts the conjugate half of the spectrum; real modes use 1), i.e. y = K * u + D u with
K_l = 2 Re Σ_n C_n B̄_n λ_n^l. Three modes compute the same map: ``conv`` (FFT convolution with K), ``scan``
(chunked: closed form within chunks of 64 steps by matrix products, a parallel prefix scan of the chunk states
across them; ``chunked_scan``) and ``recurrent`` (a step loop); ``step`` advances one time step in O(1). On one
CPU thread (H = N = 64, B = 16, L = 1000, float32, forward + backward; benchmarks/stablessm_modes.py) scan took
0.20 s, conv 0.38 s and the step loop 1.5 s; a parallel scan over all L steps took 10 s, bound by the memory
traffic of its (B, L, H, N) complex states, which the chunked scan never forms.

Differences from the reference code: every reparameterisation starts from the same eigenvalues (the reference
starts "direct" at Re a = +0.5, an unstable mode); an unknown reparameterisation raises ValueError.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize

from wrec import _checks
from wrec.rnn import RNNInputError, RNNOptions, prepare_input, rnn_forward

REPARAMS = ("direct", "exp", "softplus", "best")
MODES = ("conv", "scan", "recurrent")


# --------------------------------------------------------------------------------------------------------------
# reparameterisations


def _check_reparam(name: object, a: float, b: float) -> tuple[str, float, float]:
    if not isinstance(name, str) or name not in REPARAMS:
        raise ValueError(f"reparam must be one of {REPARAMS}, got {name!r}")
    a = _checks.real(a, "a", low=0.0, low_open=True)
    b = _checks.real(b, "b")
    if name == "best" and b <= 0:
        raise ValueError(f"b must be > 0 for reparam='best' (it bounds |f| <= 1/b), got {b}")
    return name, a, b


def reparam_fn(name: str, a: float = 1.0, b: float = 0.1) -> Callable[[Tensor], Tensor]:
    """f: w ↦ Re a, elementwise (table of the module docstring; a, b only for "best")."""
    name, a, b = _check_reparam(name, a, b)
    if name == "direct":
        return lambda w: w
    if name == "exp":
        return lambda w: -torch.exp(w)
    if name == "softplus":
        return lambda w: -F.softplus(w)
    return lambda w: -1.0 / (a * w * w + b)


def reparam_inverse(name: str, A0: Any, a: float = 1.0, b: float = 0.1) -> Tensor:
    """The w with f(w) = −A0 for decay rates A0 > 0 ("best": the positive root, clamped ≥ 1e-3; needs A0 < 1/b).

    Shape: w has A0's shape; float64 unless A0 is a floating tensor.
    """
    name, a, b = _check_reparam(name, a, b)
    A0 = A0 if isinstance(A0, Tensor) and A0.is_floating_point() else torch.as_tensor(A0, dtype=torch.float64)
    if torch.isnan(A0).any() or (A0 <= 0).any():
        raise ValueError(f"A0 must hold decay rates > 0, got min {A0.min().item()}")
    if name == "direct":
        return -A0
    if name == "exp":
        return torch.log(A0)
    if name == "softplus":
        return A0 + torch.log(-torch.expm1(-A0))  # log(expm1(A0)) without overflow for large A0
    if (A0 >= 1 / b).any():
        raise ValueError(f"A0 must be < 1/b = {1 / b} for reparam='best' (|f| <= 1/b), got max {A0.max().item()}")
    return torch.sqrt((1 / A0 - b) / a).clamp_min(1e-3)


def gradient_scale(name: str, w: Any, a: float = 1.0, b: float = 0.1) -> Tensor:
    """The analytic gradient scale G_f(w) = |f′(w)| / f(w)² (module docstring table).

    Shape: as w.
    """
    name, a, b = _check_reparam(name, a, b)
    w = w if isinstance(w, Tensor) and w.is_floating_point() else torch.as_tensor(w, dtype=torch.float64)
    if name == "direct":
        return 1.0 / (w * w)
    if name == "exp":
        return torch.exp(-w)
    if name == "softplus":
        return torch.sigmoid(w) / F.softplus(w) ** 2
    return 2 * a * w.abs()


class _Reparam(nn.Module):
    """The parametrization Re a = f(w) with its right inverse (so ``module.re_a = value`` sets w)."""

    def __init__(self, name: str, a: float, b: float) -> None:
        super().__init__()
        self.name, self.a, self.b = _check_reparam(name, a, b)
        self.f = reparam_fn(self.name, self.a, self.b)

    def forward(self, w: Tensor) -> Tensor:
        return self.f(w)

    def right_inverse(self, re_a: Tensor) -> Tensor:
        return reparam_inverse(self.name, -re_a, self.a, self.b).to(re_a.dtype)

    def extra_repr(self) -> str:
        return f"{self.name!r}" + (f", a={self.a}, b={self.b}" if self.name == "best" else "")


def _unconstrained(module: nn.Module, name: str) -> Tensor:
    """The unconstrained tensor that the optimiser trains under ``module``'s parametrized attribute ``name``
    (``module.parametrizations.<name>.original``, registered by ``torch.nn.utils.parametrize``)."""
    original: Tensor = getattr(module.parametrizations, name).original
    return original


def _torch_generator(seed: _checks.Seed | torch.Generator, device=None) -> torch.Generator | None:
    """None (torch's global RNG, as nn.GRU's initialisation) or a torch.Generator derived from ``seed``."""
    if seed is None or isinstance(seed, torch.Generator):
        return seed
    g = torch.Generator(device=device or "cpu")
    return g.manual_seed(int(_checks.rng(seed).integers(2**62)))


# --------------------------------------------------------------------------------------------------------------
# the diagonal linear recurrence, three ways


class _LinearScan(torch.autograd.Function):
    """h_t = λ ⊙ h_{t−1} + x_t (h_{−1} = h0) by a parallel prefix scan; backward is the reverse scan
    ĝ_t = g_t + λ̄ ĝ_{t+1}, so that nothing but h itself is kept for it (autograd through the scan's levels would
    keep their intermediate states too)."""

    @staticmethod
    def forward(ctx, lam: Tensor, x: Tensor, h0: Tensor) -> Tensor:
        h = _scan(lam, x, h0)
        ctx.save_for_backward(lam, h, h0)
        return h

    @staticmethod
    def backward(ctx, g: Tensor):
        lam, h, h0 = ctx.saved_tensors
        lam_c = lam.conj()
        gh = _scan(lam_c, g.flip(1), torch.zeros_like(h0)).flip(1)  # (B, L, H, N)
        grad_h0 = lam_c * gh[:, 0]
        grad_lam = (gh[:, 1:] * h[:, :-1].conj()).sum((0, 1)) + (gh[:, 0] * h0.conj()).sum(0)
        return grad_lam, gh, grad_h0


def _scan(lam: Tensor, x: Tensor, h0: Tensor) -> Tensor:
    """All h_t of h_t = λ ⊙ h_{t−1} + x_t from h_{−1} = h0. Shape: x (B, L, H, N)."""
    x = x.clone()
    x[:, 0] += lam * h0
    return _pairwise_scan(x, lam)


def _pairwise_scan(x: Tensor, p: Tensor) -> Tensor:
    """Work-efficient (Blelloch-style) prefix scan of h_t = p ⊙ h_{t−1} + x_t, h_{−1} = 0: each pair (x_{2i}, x_{2i+1})
    combines to x_{2i+1} + p x_{2i}, whose scan with p² gives the odd states h_{2i+1}; then h_{2i} = x_{2i} +
    p h_{2i−1}. O(L) work and memory in ⌈log₂ L⌉ levels (a doubling scan would touch L states at every level)."""
    L = x.size(1)
    if L == 1:
        return x
    if L % 2:
        x = torch.cat([x, torch.zeros_like(x[:, :1])], 1)
    pairs = x.unflatten(1, (-1, 2))
    even, odd = pairs[:, :, 0], pairs[:, :, 1]
    h_odd = _pairwise_scan(odd + p * even, p * p)
    h_even = even.clone()
    h_even[:, 1:] += p * h_odd[:, :-1]
    return torch.stack([h_even, h_odd], 2).flatten(1, 2)[:, :L]


def ssm_apply(u: Tensor, lam: Tensor, Bbar: Tensor, C: Tensor, h0: Tensor | None, mode: str,
              factor: float = 2.0) -> Tensor:
    """y_t = factor · Re Σ_n C_n h_{t,n}, h_t = λ ⊙ h_{t−1} + B̄ u_t, in one of the three modes (no D term).

    Shape: u (B, L, H) real; lam, Bbar, C (H, N) complex; h0 (B, H, N) complex or None; y (B, L, H).
    """
    if mode == "conv":
        L = u.size(1)
        ell = torch.arange(L, device=u.device, dtype=u.dtype)
        # an underflowed λ = 0 is replaced by the smallest normal number: log 0 = −inf would make λ⁰ = e^{0·(−inf)}
        # NaN, while e^{l log tiny} is exactly λ^l (1 at l = 0, 0 after), with a zero gradient there
        tiny = torch.finfo(u.dtype).tiny
        log_lam = torch.where(lam.abs() < tiny, torch.full_like(lam, tiny), lam).log()
        K = kernel_from(C * Bbar, log_lam, L, factor)
        y = fft_conv(u, K.transpose(0, 1))
        if h0 is not None:
            powers = torch.exp(log_lam.unsqueeze(-1) * (ell + 1))  # (H, N, L): λ^{t+1}
            y = y + factor * torch.einsum("hn,bhn,hnl->blh", C, h0, powers).real
        return y
    if h0 is None:
        h0 = torch.zeros(u.size(0), *lam.shape, dtype=lam.dtype, device=lam.device)
    if mode == "scan":
        return chunked_scan(u, lam, Bbar, C, h0, factor)
    ys, h = [], h0
    for t in range(u.size(1)):  # the input term is formed per step: no (B, L, H, N) tensor
        h = lam * h + Bbar * u[:, t].unsqueeze(-1)
        ys.append(factor * (C * h).sum(-1).real)
    return torch.stack(ys, 1)


SCAN_CHUNK = 64


def chunked_scan(u: Tensor, lam: Tensor, Bbar: Tensor, C: Tensor, h0: Tensor, factor: float = 2.0,
                 chunk: int = SCAN_CHUNK) -> Tensor:
    """``ssm_apply``'s map by a chunked scan (the state-passing algorithm of Dao & Gu, "Transformers are SSMs",
    ICML 2024, for a diagonal λ). With t = kT + j (0 ≤ j < T) and S_k the state after chunk k (S_{−1} = h0):

        y_{kT+j} = Σ_{i≤j} K_{j−i} u_{kT+i} + factor · Re Σ_n C_n λ_n^{j+1} S_{k−1,n}
        S_k = λ^T ⊙ S_{k−1} + Σ_{i<T} λ^{T−1−i} B̄ u_{kT+i},      K_l = factor · Re Σ_n C_n B̄_n λ_n^l

    Within a chunk this is two real matrix products per channel (u by [T×T Toeplitz of K | λ^{T−1−i} B̄], the
    start states by C λ^{j+1}); across chunks the parallel prefix scan runs on L/T states, so no (B, L, H, N)
    tensor is formed. Only λ^0 … λ^T appear, formed by repeated products as in the recurrence: with |λ| ≤ 1 they
    stay in [0, 1] and underflow at worst to 0, and no negative power (which overflows) is used.

    Shape: u (B, L, H) real; lam, Bbar, C (H, N) complex; h0 (B, H, N) complex; y (B, L, H).
    """
    batch, L, H = u.shape
    N = lam.size(-1)
    u = u.to(lam.real.dtype)  # as the recurrence promotes B̄ u
    T = min(_checks.integer(chunk, "chunk", low=1), L)
    n_chunks = -(-L // T)
    if n_chunks * T > L:  # zero inputs after the end change no earlier output
        u = F.pad(u, (0, 0, 0, n_chunks * T - L))
    # λ^j by repeated products, as the recurrence forms them: exp(j log λ) would give NaN at an underflowed λ = 0
    steps = torch.cat([torch.ones_like(lam).unsqueeze(-1), lam.unsqueeze(-1).expand(*lam.shape, T)], -1)
    powers = torch.cumprod(steps, -1)  # (H, N, T+1): λ^j
    j = torch.arange(T, device=u.device)
    K = factor * (C * Bbar).unsqueeze(-1).mul(powers[..., :T]).real.sum(1)  # (H, T): K_l
    lag = j[None, :] - j[:, None]  # (T, T): t − s at [s, t]
    toeplitz = K[:, lag.clamp_min(0)] * (lag >= 0)  # (H, T, T): K_{t−s} at [s, t] for s ≤ t
    into_state = torch.view_as_real(Bbar.unsqueeze(-1) * powers[..., :T].flip(-1))  # (H, N, T, 2): B̄ λ^{T−1−s}
    weights = torch.cat([toeplitz, into_state.permute(0, 2, 1, 3).reshape(H, T, 2 * N)], -1)  # (H, T, T + 2N)
    u_chunks = u.view(batch, n_chunks, T, H).permute(3, 0, 1, 2).reshape(H, batch * n_chunks, T)
    y, x = (u_chunks @ weights).split([T, 2 * N], -1)  # (H, B·K, T) within-chunk convolution; (H, B·K, 2N)
    x = torch.view_as_complex(x.contiguous().view(H, batch, n_chunks, N, 2)).permute(1, 2, 0, 3)  # (B, K, H, N)
    ends = _LinearScan.apply(powers[..., T], x, h0)  # (B, K, H, N): S_k
    starts = torch.cat([h0.unsqueeze(1), ends[:, :-1]], 1)  # (B, K, H, N): S_{k−1}
    out = C.unsqueeze(-1) * powers[..., 1:]  # (H, N, T): C λ^{j+1}
    from_state = factor * torch.stack([out.real, -out.imag], 2).reshape(H, 2 * N, T)  # Re(C λ S) = [Re, −Im]·S
    s = torch.view_as_real(starts).permute(2, 0, 1, 3, 4).reshape(H, batch * n_chunks, 2 * N)
    y = y + s @ from_state  # (H, B·K, T)
    return y.view(H, batch, n_chunks * T).permute(1, 2, 0)[:, :L]


def kernel_from(CB: Tensor, log_lam: Tensor, L: int, factor: float = 2.0) -> Tensor:
    """K_l = factor · Re Σ_n CB_n λ_n^l with λ^l = e^{l Re log λ}(cos(l Im log λ) + i sin(l Im log λ)), in real
    arithmetic (a complex exp of every (n, l) is several times slower on CPU, and inductor has no complex codegen).

    Shape: CB, log_lam (H, N) complex → K (H, L) real.
    """
    ell = torch.arange(L, device=CB.device, dtype=log_lam.real.dtype)
    magnitude = torch.exp(log_lam.real.unsqueeze(-1) * ell)  # (H, N, L)
    angle = log_lam.imag.unsqueeze(-1) * ell
    return factor * (torch.einsum("hn,hnl->hl", CB.real, magnitude * torch.cos(angle))
                     - torch.einsum("hn,hnl->hl", CB.imag, magnitude * torch.sin(angle)))


def fft_conv(u: Tensor, K: Tensor) -> Tensor:
    """Causal convolution y_t = Σ_{s≤t} K_s u_{t−s} by zero-padded FFT (length 2L: no wrap-around).

    Shape: u (B, L, H), K (L, H) → y (B, L, H).
    """
    L = u.size(1)
    n = 2 * L
    Y = torch.fft.rfft(u, n=n, dim=1) * torch.fft.rfft(K, n=n, dim=0)
    return torch.fft.irfft(Y, n=n, dim=1)[:, :L]


# --------------------------------------------------------------------------------------------------------------
# the kernel


class DiagonalSSMKernel(nn.Module):
    """The diagonal SSM of H independent channels, N/2 complex modes each (N real modes if ``real``).

    Continuous a_n = f(w_n) + iθ_n with θ_n = πn (S4D-Lin; θ = 0 if ``real``), fixed B = 1, trained C, w and
    log Δ (one step per channel, Δ ~ logU[dt_min, dt_max]); all modes start at Re a = −init_decay. Zero-order hold:
    λ = exp(Δa), B̄ = (λ − 1)/a · B. ``forward(L)`` is the convolution kernel K_l = 2 Re Σ_n C_n B̄_n λ_n^l.

    Shape: K (H, L); eigenvalues (H, N/2) complex.
    """

    w: Tensor  # Re a = f(raw_w), computed by the parametrization on every access
    theta: Tensor  # buffer: Im a
    B: Tensor  # buffer: the fixed input vector

    def __init__(self, d_model: int, d_state: int = 64, reparam: str = "exp", a: float = 1.0, b: float = 0.1,
                 dt_min: float = 1e-3, dt_max: float = 1e-1, real: bool = False, init_decay: float = 0.5,
                 device=None, dtype=None, *, seed: _checks.Seed | torch.Generator = None) -> None:
        super().__init__()
        self.d_model = _checks.integer(d_model, "d_model", low=1)
        self.d_state = _checks.integer(d_state, "d_state", low=1 if real else 2)
        if not real and d_state % 2:
            raise ValueError(f"d_state must be even for complex modes (N/2 conjugate pairs), got {d_state}")
        self.dt_min = _checks.real(dt_min, "dt_min", low=0.0, low_open=True)
        self.dt_max = _checks.real(dt_max, "dt_max", low=self.dt_min)
        self.init_decay = _checks.real(init_decay, "init_decay", low=0.0, low_open=True)
        self.reparam, self.a, self.b = _check_reparam(reparam, a, b)
        if self.reparam == "best" and self.init_decay >= 1 / self.b:
            raise ValueError(f"init_decay must be < 1/b = {1 / self.b} for reparam='best', got {init_decay}")
        self.real = bool(real)
        self.factor = 1.0 if self.real else 2.0
        factory = {"device": device, "dtype": dtype or torch.get_default_dtype()}
        n = self.d_state if self.real else self.d_state // 2
        H = self.d_model
        self.w = nn.Parameter(torch.full((H, n), -self.init_decay, **factory))  # Re a; registering stores f⁻¹
        self.log_dt = nn.Parameter(torch.empty(H, **factory))
        self.C = nn.Parameter(torch.empty(H, n, 1 if self.real else 2, **factory))  # real view of complex C
        theta = torch.zeros(n, **factory) if self.real else math.pi * torch.arange(n, **factory)
        self.register_buffer("theta", theta.expand(H, n).clone())
        self.register_buffer("B", torch.ones(H, n, **factory))
        parametrize.register_parametrization(self, "w", _Reparam(self.reparam, self.a, self.b))
        self.reset_parameters(seed)

    def reset_parameters(self, seed: _checks.Seed | torch.Generator = None) -> None:
        """Re a = −init_decay for every mode, log Δ ~ U[log dt_min, log dt_max], C ~ CN(0, 1) (S4D)."""
        g = _torch_generator(seed, self.log_dt.device)
        with torch.no_grad():
            self.w = torch.full_like(self.w, -self.init_decay)  # through the right inverse: w = f⁻¹(−A0)
            lo, hi = math.log(self.dt_min), math.log(self.dt_max)
            self.log_dt.copy_(torch.rand(self.log_dt.shape, generator=g, dtype=self.log_dt.dtype) * (hi - lo) + lo)
            scale = 1.0 if self.real else 0.5**0.5
            self.C.copy_(torch.randn(self.C.shape, generator=g, dtype=self.C.dtype) * scale)

    @property
    def raw_w(self) -> Tensor:
        """The unconstrained parameter w that the optimiser trains (Re a = f(w))."""
        return _unconstrained(self, "w")

    def eigenvalues(self) -> Tensor:
        """The continuous eigenvalues a_n = f(w_n) + iθ_n. Shape: (H, N/2) complex."""
        return torch.complex(self.w, self.theta)

    def stability_margin(self) -> Tensor:
        """min_n −Re a_n per channel (> 0: stable). Shape: (H,)."""
        return (-self.w).amin(-1)

    def complex_C(self) -> Tensor:
        C = self.C if not self.real else torch.cat([self.C, torch.zeros_like(self.C)], -1)
        return torch.view_as_complex(C)

    def discretize(self) -> tuple[Tensor, Tensor]:
        """Zero-order hold: (λ = exp(Δa), B̄ = (λ − 1)/a · B), each (H, N/2) complex."""
        a = self.eigenvalues()
        dt = torch.exp(self.log_dt).unsqueeze(-1)
        lam = torch.exp(dt * a)
        return lam, (lam - 1) / a * self.B

    def forward(self, L: int) -> Tensor:
        """K_l = factor · Re Σ_n C_n B̄_n λ_n^l, l = 0..L−1. Shape: (H, L)."""
        L = _checks.integer(L, "L", low=1)
        a = self.eigenvalues()
        dt = torch.exp(self.log_dt).unsqueeze(-1)
        lam = torch.exp(dt * a)
        return kernel_from(self.complex_C() * (lam - 1) / a * self.B, dt * a, L, self.factor)

    def extra_repr(self) -> str:
        return f"{self.d_model}, d_state={self.d_state}, reparam={self.reparam!r}, real={self.real}"


# --------------------------------------------------------------------------------------------------------------
# the block and the nn.GRU-compatible module


class _Block(nn.Module):
    """One StableSSM layer (one direction): z = encoder(x); s = SSM(z̃) + D z̃ with z̃ = z (post-norm) or LN(z)
    (pre-norm); out = z + GLU(W GELU(s)); post-norm: out = LN(out)."""

    def __init__(self, in_features: int, H: int, kernel_kw: dict, bias: bool, prenorm: bool, factory: dict,
                 seed) -> None:
        super().__init__()
        self.encoder = nn.Linear(in_features, H, bias=bias, **factory)
        self.kernel = DiagonalSSMKernel(H, **kernel_kw, **factory, seed=seed)
        self.D = nn.Parameter(torch.empty(H, **factory))
        self.output = nn.Linear(H, 2 * H, bias=bias, **factory)
        self.norm = nn.LayerNorm(H, **factory)
        self.prenorm = prenorm

    def mix(self, z: Tensor, s: Tensor) -> Tensor:
        out = z + F.glu(self.output(F.gelu(s)), dim=-1)
        return out if self.prenorm else self.norm(out)

    def forward(self, x: Tensor, mode: str, h0: Tensor | None = None) -> Tensor:
        """Shape: x (B, L, F) → (B, L, H)."""
        z = self.encoder(x)
        v = self.norm(z) if self.prenorm else z
        lam, Bbar = self.kernel.discretize()
        s = ssm_apply(v, lam, Bbar, self.kernel.complex_C(), h0, mode, self.kernel.factor) + self.D * v
        return self.mix(z, s)

    def step(self, x: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        """Shape: x (B, F), h (B, H, N/2) complex → (y (B, H), h)."""
        z = self.encoder(x)
        v = self.norm(z) if self.prenorm else z
        lam, Bbar = self.kernel.discretize()
        h = lam * h + Bbar * v.unsqueeze(-1).to(Bbar.dtype)
        s = self.kernel.factor * (self.kernel.complex_C() * h).sum(-1).real + self.D * v
        return self.mix(z, s), h


class StableSSM(nn.Module):
    """A stack of StableSSM blocks with ``torch.nn.GRU``'s constructor and forward contract.

    Each layer and direction is one block (Wang & Li, ICML 2024): a linear encoder to ``hidden_size``
    channels, the diagonal SSM (``d_state`` real state numbers per channel, eigenvalues a = f(w) + iθ with f =
    ``reparam``), + D u, GELU, a 1×1 linear to 2H and GLU, a residual connection and LayerNorm (post-norm, or
    pre-norm if ``prenorm``). Layers stack as in nn.GRU: the next layer reads both directions, ``dropout``
    acts between layers. ``mode`` ("conv", "scan", "recurrent") changes only the speed, never the map.

    ``h_n`` and ``hx``: an SSM channel's recurrent state is N/2 complex numbers, not one real number, so it does not
    fit nn.GRU's ``(D·num_layers, B, H)``. ``h_n`` is, with nn.GRU's layout, each layer's and direction's **output
    at its last step** (for nn.GRU the same thing as its hidden state: ``h_n[-1]`` equals ``output[-1, :, :H]`` for
    a unidirectional stack, so code that classifies from ``h_n`` works unchanged). ``hx`` is checked as nn.GRU
    checks it, and must be None or zeros (the zero state); a nonzero ``hx`` raises ValueError, because H numbers do
    not determine the state. To carry the full state across calls use ``step(x_t, state)`` with the state from
    ``initial_state`` (O(1) per step).

    Shape (D = 2 if bidirectional else 1): input (L, B, input_size), (B, L, input_size) if batch_first, or
    (L, input_size); output (L, B, D·hidden_size) in the input's layout; h_n (D·num_layers, B, hidden_size).
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, device=None,
                 dtype=None, *, d_state: int = 64, reparam: str = "exp", a: float = 1.0, b: float = 0.1,
                 mode: str = "conv", prenorm: bool = False, dt_min: float = 1e-3, dt_max: float = 1e-1,
                 real: bool = False, init_decay: float = 0.5,
                 seed: _checks.Seed | torch.Generator = None) -> None:
        super().__init__()
        self.options = RNNOptions(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.bidirectional = bias, batch_first, bidirectional
        self.dropout = self.options.dropout
        self.mode = self._check_mode(mode)
        self.prenorm = bool(prenorm)
        kernel_kw = {"d_state": d_state, "reparam": reparam, "a": a, "b": b, "dt_min": dt_min, "dt_max": dt_max,
                     "real": real, "init_decay": init_decay}
        factory = {"device": device, "dtype": dtype}
        g = _torch_generator(seed)
        self.layers = nn.ModuleDict()
        # nn.Linear draws its default initialisation from torch's global RNG; with a seed, that draw is discarded
        # (reset_parameters redraws from the generator) and the global stream is left as it was
        with torch.random.fork_rng(devices=[]) if g is not None else contextlib.nullcontext():
            for layer in range(num_layers):
                for direction in range(self.options.num_directions):
                    self.layers[RNNOptions.suffix(layer, direction).lstrip("_")] = _Block(
                        self.options.layer_input_size(layer), hidden_size, kernel_kw, bias, self.prenorm, factory,
                        g)
        self._generator = g
        self.reset_parameters()

    @staticmethod
    def _check_mode(mode: object) -> str:
        if not isinstance(mode, str) or mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        return mode

    def reset_parameters(self) -> None:
        """Encoder/output linears as nn.Linear, D ~ N(0, 1) (S4D), the kernels by their own reset."""
        g = self._generator
        with torch.no_grad():
            for block in self._blocks():
                for lin in (block.encoder, block.output):
                    bound = 1 / math.sqrt(lin.in_features)
                    lin.weight.copy_(torch.rand(lin.weight.shape, generator=g, dtype=lin.weight.dtype) * 2 * bound
                                     - bound)
                    if lin.bias is not None:
                        lin.bias.copy_(torch.rand(lin.bias.shape, generator=g, dtype=lin.bias.dtype) * 2 * bound
                                       - bound)
                block.D.copy_(torch.randn(block.D.shape, generator=g, dtype=block.D.dtype))
                block.norm.reset_parameters()
                block.kernel.reset_parameters(g)

    def _block(self, layer: int, direction: int) -> _Block:
        return cast(_Block, self.layers[RNNOptions.suffix(layer, direction).lstrip("_")])

    def _blocks(self) -> list[_Block]:
        """Every block, layer by layer, forward before reverse (the order of ``layers``)."""
        return [self._block(layer, direction) for layer in range(self.num_layers)
                for direction in range(self.options.num_directions)]

    def forward(self, input: Tensor, hx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(output, h_n) as nn.GRU; h_n holds each layer's and direction's last output (class docstring)."""
        dtype = self._block(0, 0).D.dtype
        if hx is not None:
            prepare_input(self.options, input, hx, dtype=dtype, name="StableSSM")  # nn.GRU's checks first
        if isinstance(hx, Tensor) and bool((hx != 0).any()):
            raise ValueError("StableSSM: hx must be None or zeros: an SSM channel's state is d_state/2 complex "
                             "numbers and cannot be set from hx of shape (D*num_layers, B, hidden_size); carry "
                             "the full state with step(x_t, state) instead")
        mode = self._check_mode(self.mode)

        def layer_fn(layer: int, direction: int, x: Tensor, h0: Tensor) -> tuple[Tensor, Tensor]:
            out = self._block(layer, direction)(x.transpose(0, 1), mode).transpose(0, 1)  # (T, B, H)
            return out, out[-1]

        return rnn_forward(self.options, input, hx, layer_fn, training=self.training, dtype=dtype,
                           generator=None, name="StableSSM")

    def initial_state(self, batch_size: int | None = None) -> Tensor:
        """The zero state for ``step``. Shape: (num_layers, B, H, N/2) complex ((num_layers, H, N/2) if None)."""
        k = self._block(0, 0).kernel
        n = k.d_state if k.real else k.d_state // 2
        shape = (self.num_layers, self.hidden_size, n) if batch_size is None else (
            self.num_layers, _checks.integer(batch_size, "batch_size", low=1), self.hidden_size, n)
        return torch.zeros(shape, dtype=k.eigenvalues().dtype, device=k.w.device)

    def step(self, x_t: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """One time step through every layer in O(1) (unidirectional stacks only; dropout is not applied, as in
        inference). ``state`` from ``initial_state`` or a previous step (None: zeros).

        Shape: x_t (B, input_size) or (input_size,); state (num_layers, B, H, N/2) complex (unbatched:
        (num_layers, H, N/2)); returns (y_t (B, H) or (H,), new state).
        """
        if self.bidirectional:
            raise ValueError("StableSSM.step needs a unidirectional model: the reverse direction reads the future")
        if not isinstance(x_t, Tensor) or x_t.dim() not in (1, 2) or x_t.size(-1) != self.input_size:
            got = tuple(x_t.shape) if isinstance(x_t, Tensor) else type(x_t).__name__
            raise RNNInputError(f"StableSSM.step: x_t must be a tensor of shape (B, {self.input_size}) or "
                                f"({self.input_size},), got {got}")
        batched = x_t.dim() == 2
        x = x_t if batched else x_t.unsqueeze(0)
        if state is None:
            state = self.initial_state(x.size(0))
        elif not batched:
            state = state.unsqueeze(1)
        expected = tuple(self.initial_state(x.size(0)).shape)
        if not isinstance(state, Tensor) or tuple(state.shape) != expected or not state.is_complex():
            got = tuple(state.shape) if isinstance(state, Tensor) else type(state).__name__
            raise RNNInputError(f"StableSSM.step: state must be a complex tensor of shape {expected}, got {got}")
        new = []
        for layer in range(self.num_layers):
            x, h = self._block(layer, 0).step(x, state[layer])
            new.append(h)
        state = torch.stack(new)
        return (x, state) if batched else (x.squeeze(0), state.squeeze(1))

    def extra_repr(self) -> str:
        k = self._block(0, 0).kernel
        return (self.options.extra_repr() + f", d_state={k.d_state}, reparam={k.reparam!r}, mode={self.mode!r}"
                + (", prenorm=True" if self.prenorm else ""))


# --------------------------------------------------------------------------------------------------------------
# the minimal model of the theory


class LinearDiagonalSSM(nn.Module):
    """The linear model of the curse-of-memory theorems: real diagonal, m modes,

        h_t = λ ⊙ h_{t−1} + U x_t,   y_t = C h_t,   λ_n = exp(Δ f(w_n)),

    computed as y = K * x with K_l = C diag(λ^l) U (FFT). ``init_decay``: the initial decay rates A0 (a scalar, or
    m values; e.g. log-uniform in [0.01, 1] in the curse-of-memory experiment); every reparameterisation starts
    from the same λ.
    U ~ N(0, 1), C ~ N(0, 1/m).

    Shape: x (B, T, input_size) → y (B, T, output_size).
    """

    def __init__(self, input_size: int, hidden_size: int, output_size: int, reparam: str = "direct",
                 a: float = 1.0, b: float = 0.1, dt: float = 1.0, *, init_decay: Any = 0.5, device=None,
                 dtype=None, seed: _checks.Seed | torch.Generator = None) -> None:
        super().__init__()
        self.input_size = _checks.integer(input_size, "input_size", low=1)
        self.hidden_size = _checks.integer(hidden_size, "hidden_size", low=1)
        self.output_size = _checks.integer(output_size, "output_size", low=1)
        self.reparam, self.a, self.b = _check_reparam(reparam, a, b)
        self.dt = _checks.real(dt, "dt", low=0.0, low_open=True)
        factory = {"device": device, "dtype": dtype or torch.get_default_dtype()}
        A0 = torch.as_tensor(np.broadcast_to(_checks.array(init_decay, "init_decay", ndim=(0, 1)),
                                             (self.hidden_size,)).copy(), **factory)
        if (A0 <= 0).any():
            raise ValueError(f"init_decay must be > 0, got min {A0.min().item()}")
        g = _torch_generator(seed)
        self.w = nn.Parameter(-A0)  # Re a; registering the parametrization stores w = f⁻¹(−A0)
        self.U = nn.Parameter(torch.randn(self.hidden_size, self.input_size, generator=g, **factory))
        self.C = nn.Parameter(torch.randn(self.output_size, self.hidden_size, generator=g, **factory)
                              / self.hidden_size**0.5)
        parametrize.register_parametrization(self, "w", _Reparam(self.reparam, self.a, self.b))

    @property
    def raw_w(self) -> Tensor:
        """The unconstrained w (what the optimiser trains)."""
        return _unconstrained(self, "w")

    def decay(self) -> Tensor:
        """f(w): continuous decay rates, Re a (negative when stable). Shape: (m,)."""
        return self.w

    def eigenvalues(self) -> Tensor:
        """λ_n = exp(Δ f(w_n)). Shape: (m,)."""
        return torch.exp(self.dt * self.w)

    def stability_margin(self) -> Tensor:
        """min_n −f(w_n) (= min_n |f(w_n)| when every mode is stable; negative if one is not)."""
        return (-self.w).min()

    def kernel(self, T: int) -> Tensor:
        """K_l = C diag(λ^l) U. Shape: (T, output_size, input_size)."""
        ell = torch.arange(T, dtype=self.w.dtype, device=self.w.device).unsqueeze(-1)
        powers = torch.exp(ell * (self.dt * self.w))  # (T, m)
        return torch.einsum("om,tm,mi->toi", self.C, powers, self.U)

    def forward(self, x: Tensor) -> Tensor:
        """Shape: (B, T, input_size) → (B, T, output_size)."""
        if not isinstance(x, Tensor) or x.dim() != 3 or x.size(-1) != self.input_size:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"x must be a tensor of shape (B, T, {self.input_size}), got {got}")
        T = x.size(1)
        K = self.kernel(T)
        n = 2 * T
        X = torch.fft.rfft(x, n=n, dim=1)  # (B, F, i)
        Kf = torch.fft.rfft(K, n=n, dim=0)  # (F, o, i)
        return torch.fft.irfft(torch.einsum("bfi,foi->bfo", X, Kf), n=n, dim=1)[:, :T]

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, {self.output_size}, reparam={self.reparam!r}, dt={self.dt}"


# --------------------------------------------------------------------------------------------------------------
# memory function


def memory_function(model: Callable, T: int = 1024, input_dim: int = 1) -> np.ndarray:
    """M(t) = |y_{t+1} − y_t| of a sequence map under the Heaviside input u_t = 1 (t ≥ 0), t = 0..T−2.

    ``model`` maps (B, T, input_dim) to (B, T, out) (or (T, B, ·) if it has ``batch_first = False``; a tuple
    output uses its first element, as ``(output, h_n)``). Run in eval mode without gradients.

    Shape: (T − 1,) for one output, else (T − 1, out).
    """
    T = _checks.integer(T, "T", low=2)
    input_dim = _checks.integer(input_dim, "input_dim", low=1)
    if not callable(model):
        raise TypeError(f"model must be callable, got {type(model).__name__}")
    params = list(model.parameters()) if isinstance(model, nn.Module) else []
    factory = {"dtype": params[0].dtype, "device": params[0].device} if params else {"dtype": torch.float64}
    u = torch.ones(1, T, input_dim, **factory)
    time_major = getattr(model, "batch_first", True) is False
    was_training = getattr(model, "training", False)
    if isinstance(model, nn.Module):
        model.eval()
    try:
        with torch.no_grad():
            y = model(u.transpose(0, 1) if time_major else u)
    finally:
        if isinstance(model, nn.Module):
            model.train(was_training)
    y = y[0] if isinstance(y, tuple) else y
    y = (y[:, 0] if time_major else y[0]).double().cpu().numpy()  # (T, out)
    M = np.abs(np.diff(y, axis=0))
    return M[:, 0] if M.shape[1] == 1 else M
