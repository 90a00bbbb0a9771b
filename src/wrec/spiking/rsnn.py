"""Recurrent spiking networks of (adaptive) leaky integrate-and-fire neurons with a leaky readout, in torch.

Discrete time (Δt = 1), one hidden layer ``l`` of ``H_l`` neurons after another, ``K`` outputs:

    v_t = α v_{t−1} + W_in x_t + W_rec z_{t−1} − θ z_{t−1}         (soft reset; no W_rec in a feed-forward layer)
    a_t = ρ a_{t−1} + z_{t−1},   A_t = θ + β a_t                  (ALIF only; LIF: A_t = θ)
    z_t = H(v_t − A_t)  (strictly >),   y_t = κ y_{t−1} + W_out z_t + b,   logits = (1/T) Σ_t y_t

with α = e^{−1/τ_m}, ρ = e^{−1/τ_a}, κ = e^{−1/τ_out} (Bellec et al., Nat. Commun. 11, 3625, 2020). The input of
layer ``l > 0`` is the spike train of layer ``l − 1`` at the same step. The spike's derivative is replaced by a
surrogate ψ(u), u = v − A (triangle, fast sigmoid or arctan); every learning rule of ``wrec.spiking.rules``
uses the same ψ. W_rec has no autapses: its diagonal is masked by a buffer, so its gradient there is zero.

``lif_step`` is the pure step; ``RSNN.hidden`` and ``RSNN.forward`` are the loop.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wrec import _checks
from wrec.rnn import RNNOptions, check_bool, check_int, prepare_input

SURROGATES = ("triangle", "fast-sigmoid", "atan")


@dataclass(frozen=True)
class LIFParameters:
    """Neuron and readout constants (time in steps of Δt = 1; voltages in units where the threshold is θ).

    ``surrogate`` picks ψ(u), u = v − A_t: ``"triangle"`` (γ/θ)·max(0, 1 − |u|/θ) (e-prop's pseudo-derivative),
    ``"fast-sigmoid"`` 1/(k|u| + 1)² with k = ``slope``, ``"atan"`` (a/2)/(1 + (π a u/2)²) with a = ``atan_alpha``.
    ``adaptive`` turns LIF into ALIF with threshold θ + β a_t and adaptation time constant ``tau_adapt``.
    """

    tau_mem: float = 10.0
    tau_out: float = 10.0
    threshold: float = 1.0
    surrogate: str = "triangle"
    gamma: float = 0.3
    slope: float = 25.0
    atan_alpha: float = 2.0
    adaptive: bool = False
    tau_adapt: float = 200.0
    beta: float = 1.8

    def __post_init__(self) -> None:
        for name in ("tau_mem", "tau_out", "threshold", "gamma", "slope", "atan_alpha", "tau_adapt"):
            _checks.real(getattr(self, name), name, low=0.0, low_open=True)
        _checks.real(self.beta, "beta", low=0.0)
        check_bool(self.adaptive, "adaptive")
        if self.surrogate not in SURROGATES:
            raise ValueError(f"surrogate must be one of {SURROGATES}, got {self.surrogate!r}")

    @property
    def alpha(self) -> float:
        """Membrane decay per step, e^{−1/τ_m}."""
        return math.exp(-1.0 / self.tau_mem)

    @property
    def kappa(self) -> float:
        """Readout decay per step, e^{−1/τ_out}."""
        return math.exp(-1.0 / self.tau_out)

    @property
    def rho(self) -> float:
        """Adaptation decay per step, e^{−1/τ_a}."""
        return math.exp(-1.0 / self.tau_adapt)


class LIFState(NamedTuple):
    """State of one layer after step t. Shape: each ``(B, H)``.

    ``v`` membrane potential v_t, ``z`` spikes z_t, ``a`` adaptation a_t (zeros for LIF).
    """

    v: Tensor
    z: Tensor
    a: Tensor

    @classmethod
    def zeros(cls, batch: int, hidden: int, *, dtype: torch.dtype | None = None,
              device: torch.device | str | None = None) -> LIFState:
        """The rest state v_0 = z_0 = a_0 = 0, each ``(B, H)``."""
        zeros = torch.zeros(batch, hidden, dtype=dtype, device=device)
        return cls(zeros, zeros, zeros)


# ---------------------------------------------------------------------------------------------------------------
# Surrogate spike functions: forward H(u) with H(0) = 0, backward ψ(u).


def triangle_derivative(u: Tensor, gamma: float, threshold: float) -> Tensor:
    """ψ(u) = (γ/θ)·max(0, 1 − |u|/θ)."""
    return (gamma / threshold) * torch.clamp(1.0 - u.abs() / threshold, min=0.0)


def fast_sigmoid_derivative(u: Tensor, slope: float) -> Tensor:
    """ψ(u) = 1/(k|u| + 1)²."""
    return 1.0 / (slope * u.abs() + 1.0) ** 2


def atan_derivative(u: Tensor, alpha: float) -> Tensor:
    """ψ(u) = (a/2)/(1 + (π a u/2)²)."""
    return (alpha / 2) / (1.0 + (math.pi * alpha * u / 2) ** 2)


class TriangleSpike(torch.autograd.Function):
    """z = H(u) (strictly u > 0); dz/du := (γ/θ)·max(0, 1 − |u|/θ)."""

    @staticmethod
    def forward(ctx, u: Tensor, gamma: float, threshold: float) -> Tensor:
        ctx.save_for_backward(u)
        ctx.constants = (gamma, threshold)
        return (u > 0).to(u.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:
        (u,) = ctx.saved_tensors
        return grad * triangle_derivative(u, *ctx.constants), None, None


class FastSigmoidSpike(torch.autograd.Function):
    """z = H(u); dz/du := 1/(k|u| + 1)²."""

    @staticmethod
    def forward(ctx, u: Tensor, slope: float) -> Tensor:
        ctx.save_for_backward(u)
        ctx.slope = slope
        return (u > 0).to(u.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        (u,) = ctx.saved_tensors
        return grad * fast_sigmoid_derivative(u, ctx.slope), None


class ATanSpike(torch.autograd.Function):
    """z = H(u); dz/du := (a/2)/(1 + (π a u/2)²)."""

    @staticmethod
    def forward(ctx, u: Tensor, alpha: float) -> Tensor:
        ctx.save_for_backward(u)
        ctx.alpha = alpha
        return (u > 0).to(u.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        (u,) = ctx.saved_tensors
        return grad * atan_derivative(u, ctx.alpha), None


def spike(u: Tensor, params: LIFParameters) -> Tensor:
    """H(u) with the surrogate derivative ``params.surrogate``. Shape: any."""
    if params.surrogate == "triangle":
        return TriangleSpike.apply(u, params.gamma, params.threshold)
    if params.surrogate == "fast-sigmoid":
        return FastSigmoidSpike.apply(u, params.slope)
    return ATanSpike.apply(u, params.atan_alpha)


def surrogate_derivative(u: Tensor, params: LIFParameters) -> Tensor:
    """ψ(u) of ``params.surrogate``: exactly what ``spike``'s backward multiplies by. Shape: any."""
    if params.surrogate == "triangle":
        return triangle_derivative(u, params.gamma, params.threshold)
    if params.surrogate == "fast-sigmoid":
        return fast_sigmoid_derivative(u, params.slope)
    return atan_derivative(u, params.atan_alpha)


# ---------------------------------------------------------------------------------------------------------------
# The pure step and the filters.


class FeedbackLinear(torch.autograd.Function):
    """Forward z Wᵀ (+ b); backward sends the error to z through ``feedback`` ``(n_in, n_out)`` instead of Wᵀ.

    The weight's gradient is the exact one. ``feedback`` = Wᵀ is plain autograd; a fixed random matrix is feedback
    alignment; with ``weight`` zero it is a silent broadcast (no effect on the output, but z receives the error).
    """

    @staticmethod
    def forward(ctx, z: Tensor, weight: Tensor, bias: Tensor | None, feedback: Tensor) -> Tensor:
        ctx.save_for_backward(z, feedback)
        y = z @ weight.T
        return y if bias is None else y + bias

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor, Tensor | None, None]:
        z, feedback = ctx.saved_tensors
        g2 = grad.reshape(-1, grad.shape[-1])  # (T·B, K)
        grad_w = g2.T @ z.reshape(-1, z.shape[-1])
        return grad @ feedback.T, grad_w, g2.sum(0) if ctx.needs_input_grad[2] else None, None


def linear(z: Tensor, weight: Tensor, bias: Tensor | None = None, feedback: Tensor | None = None) -> Tensor:
    """z Wᵀ (+ b), its error sent back through ``feedback`` ``(n_in, n_out)`` in place of Wᵀ when given."""
    if feedback is None:
        y = z @ weight.T
        return y if bias is None else y + bias
    return FeedbackLinear.apply(z, weight, bias, feedback)


def lif_step(
    params: LIFParameters,
    state: LIFState,
    x_t: Tensor,
    w_in: Tensor,
    w_rec: Tensor | None = None,
    *,
    detach_reset: bool = False,
    detach_recurrent: bool = False,
    feedback_in: Tensor | None = None,
    feedback_rec: Tensor | None = None,
) -> LIFState:
    """One step of a (A)LIF layer: ``state`` holds (v, z, a) at t−1, the result holds them at t.

    v_t = α v_{t−1} + W_in x_t + W_rec z_{t−1} − θ z_{t−1};  a_t = ρ a_{t−1} + z_{t−1};  z_t = H(v_t − θ − β a_t).
    ``detach_reset`` / ``detach_recurrent`` stop the gradient through z_{t−1} in the reset / W_rec term (never in
    the adaptation, which stays a path inside the neuron as e-prop requires). ``w_rec`` None: feed-forward layer.
    ``feedback_in`` ``(N, H)`` / ``feedback_rec`` ``(H, H)`` carry the error to x_t / z_{t−1} in place of
    W_inᵀ / W_recᵀ (feedback alignment; the forward values do not change).

    Shape: x_t ``(B, N)``, w_in ``(H, N)``, w_rec ``(H, H)``, state fields ``(B, H)``.
    """
    z_prev = state.z
    # summed in snnTorch's order (leak + input, + recurrent, − reset), so float32 runs agree with it bit for bit
    v = params.alpha * state.v + linear(x_t, w_in, feedback=feedback_in)
    if w_rec is not None:
        v = v + linear(z_prev.detach() if detach_recurrent else z_prev, w_rec, feedback=feedback_rec)
    v = v - params.threshold * (z_prev.detach() if detach_reset else z_prev)
    if params.adaptive:
        a = params.rho * state.a + z_prev
        u = v - params.threshold - params.beta * a
    else:
        a = state.a
        u = v - params.threshold
    return LIFState(v, spike(u, params), a)


def centered_potential(params: LIFParameters, state: LIFState) -> Tensor:
    """u_t = v_t − A_t, the argument of H and ψ. Shape: ``(B, H)``."""
    if params.adaptive:
        return state.v - params.threshold - params.beta * state.a
    return state.v - params.threshold


def leaky(drive: Tensor, decay: float) -> Tensor:
    """y_t = decay·y_{t−1} + drive_t, y_0 = 0, along dim 0. Shape: ``(T, ...)`` -> same."""
    out = []
    y = torch.zeros_like(drive[0])
    for d in drive:
        y = decay * y + d
        out.append(y)
    return torch.stack(out, 0)


def rsnn_loss(y: Tensor, target: Tensor) -> Tensor:
    """(1/T) Σ_t CE(y_t, target), averaged over the batch: the online loss every rule can use.

    Shape: y ``(T, B, K)``, target ``(B,)`` integer labels; returns a scalar.
    """
    T, B, K = y.shape
    return F.cross_entropy(y.reshape(T * B, K), target.repeat(T))


# ---------------------------------------------------------------------------------------------------------------
# The network.


class RSNN(nn.Module):
    """A stack of (A)LIF layers, recurrent (W_rec with zero diagonal) or feed-forward, and a leaky readout.

    Initialisation (``generator`` draws it): W_in ~ N(0, 1/N_in), W_rec ~ N(0, 0.25/H) with a zero diagonal,
    W_out ~ N(0, 1/H_top), b = 0. Parameters ``weight_ih_l{l}`` ``(H_l, N_l)``, ``weight_hh_l{l}`` ``(H_l, H_l)``
    (recurrent only; its diagonal mask is the buffer ``mask_hh_l{l}``), ``weight_out`` ``(K, H_top)``,
    ``bias_out`` ``(K,)``.

    ``forward(input) -> (y, spikes)``. Shape: input ``(T, B, N_in)`` (``(B, T, N_in)`` if ``batch_first``, or
    unbatched ``(T, N_in)``); y ``(T, B, K)`` and the top layer's spikes ``(T, B, H_top)``, in the input's layout.
    """

    def __init__(
        self,
        input_size: int,
        hidden_sizes: Sequence[int] = (100,),
        output_size: int = 10,
        recurrent: bool = True,
        params: LIFParameters = LIFParameters(),
        batch_first: bool = False,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if isinstance(hidden_sizes, int) or not isinstance(hidden_sizes, Sequence) or len(hidden_sizes) == 0:
            raise TypeError(f"hidden_sizes must be a non-empty sequence of ints, got {hidden_sizes!r}")
        for h in hidden_sizes:
            if check_int(h, "hidden_sizes[i]") <= 0:
                raise ValueError(f"hidden_sizes must hold positive ints, got {tuple(hidden_sizes)}")
        if check_int(output_size, "output_size") <= 0:
            raise ValueError(f"output_size must be greater than zero, got {output_size}")
        if not isinstance(params, LIFParameters):
            raise TypeError(f"params must be a LIFParameters, got {type(params).__name__}")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        # RNNOptions validates input_size and batch_first with torch's messages, and prepares every input
        self._options = RNNOptions(input_size, hidden_sizes[0], batch_first=batch_first)
        self.input_size = input_size
        self.hidden_sizes = tuple(int(h) for h in hidden_sizes)
        self.output_size = output_size
        self.recurrent = check_bool(recurrent, "recurrent")
        self.params = params
        self.batch_first = batch_first
        sizes = (input_size, *self.hidden_sizes)
        for layer, (n_in, h) in enumerate(itertools.pairwise(sizes)):
            self.register_parameter(f"weight_ih_l{layer}",
                                    nn.Parameter(torch.empty(h, n_in, device=device, dtype=dtype)))
            if recurrent:
                self.register_parameter(f"weight_hh_l{layer}",
                                        nn.Parameter(torch.empty(h, h, device=device, dtype=dtype)))
                self.register_buffer(f"mask_hh_l{layer}", 1.0 - torch.eye(h, device=device, dtype=dtype))
        self.weight_out = nn.Parameter(torch.empty(output_size, self.hidden_sizes[-1], device=device, dtype=dtype))
        self.bias_out = nn.Parameter(torch.empty(output_size, device=device, dtype=dtype))
        self.reset_parameters(generator)

    @property
    def num_layers(self) -> int:
        return len(self.hidden_sizes)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Redraw the weights as documented in the class (from ``generator``; None: torch's global RNG). A
        parametrized weight (``torch.nn.utils.parametrize``) gets the draw through its right inverse."""
        from torch.nn.utils import parametrize

        def draw(name: str, std: float, mask: Tensor | None = None) -> None:
            w = torch.empty_like(getattr(self, name)).normal_(0.0, std, generator=generator)
            w = w if mask is None else w * mask
            if parametrize.is_parametrized(self, name):
                setattr(self, name, w)
            else:
                getattr(self, name).copy_(w)

        with torch.no_grad():
            sizes = (self.input_size, *self.hidden_sizes)
            for layer in range(self.num_layers):
                draw(f"weight_ih_l{layer}", 1.0 / math.sqrt(sizes[layer]))
                if self.recurrent:
                    draw(f"weight_hh_l{layer}", 0.5 / math.sqrt(sizes[layer + 1]), getattr(self, f"mask_hh_l{layer}"))
            draw("weight_out", 1.0 / math.sqrt(self.hidden_sizes[-1]))
            self.bias_out.zero_()

    def layer_weights(self, layer: int) -> tuple[Tensor, Tensor | None]:
        """(W_in ``(H, N)``, W_rec ⊙ (1 − I) ``(H, H)`` or None) of ``layer`` as used in the step."""
        w_in = getattr(self, f"weight_ih_l{layer}")
        if not self.recurrent:
            return w_in, None
        return w_in, getattr(self, f"weight_hh_l{layer}") * getattr(self, f"mask_hh_l{layer}")

    def prepare_input(self, input: Tensor) -> tuple[Tensor, bool]:
        """Check ``input`` and return it time-major ``(T, B, N_in)`` with whether it was batched.

        Raises ``TypeError`` for a non-tensor or non-float input and ``ValueError`` for a wrong rank, feature
        size or dtype, T < 1 or non-finite values.
        """
        x, _, batched = prepare_input(self._options, input, None, dtype=self.weight_out.dtype, name="RSNN")
        # min and max propagate NaN and show ±inf; unlike isfinite(x) they need no (T, B, N) temporaries, which
        # would make the O(1)-in-T memory of online e-prop O(T)
        if not all(bool(torch.isfinite(m)) for m in torch.aminmax(x.detach())):
            bad = int((~torch.isfinite(x.detach())).sum())
            raise ValueError(f"RSNN: input has {bad} non-finite value(s) (NaN or inf); remove or replace them")
        return x, batched

    def hidden(
        self,
        x: Tensor,
        *,
        detach_reset: bool = False,
        detach_recurrent: bool = False,
        detach_inputs: bool = False,
        feedback: Sequence[tuple[Tensor | None, Tensor | None]] | None = None,
    ) -> list[Tensor]:
        """Spike trains of every layer for a time-major input (see ``prepare_input``).

        ``detach_inputs`` stops the gradient between layers (each layer sees the one below as a fixed input).
        ``feedback``: per layer (B_in ``(N_l, H_l)`` or None, B_rec ``(H_l, H_l)`` or None), the matrices that
        carry the error backwards in place of W_inᵀ and W_recᵀ (see ``lif_step``).
        Shape: x ``(T, B, N_in)``; returns one ``(T, B, H_l)`` per layer.
        """
        T, B, _ = x.shape
        if feedback is not None and len(feedback) != self.num_layers:
            raise ValueError(f"feedback must hold one (B_in, B_rec) pair per layer ({self.num_layers}), "
                             f"got {len(feedback)}")
        out = []
        inp = x
        for layer, h in enumerate(self.hidden_sizes):
            w_in, w_rec = self.layer_weights(layer)
            b_in, b_rec = (None, None) if feedback is None else feedback[layer]
            state = LIFState.zeros(B, h, dtype=x.dtype, device=x.device)
            spikes = []
            for t in range(T):
                state = lif_step(self.params, state, inp[t], w_in, w_rec, detach_reset=detach_reset,
                                 detach_recurrent=detach_recurrent, feedback_in=b_in, feedback_rec=b_rec)
                spikes.append(state.z)
            z = torch.stack(spikes, 0)  # (T, B, H_l)
            out.append(z)
            inp = z.detach() if detach_inputs else z
        return out

    def readout(self, z: Tensor, feedback: Tensor | None = None) -> Tensor:
        """y_t = κ y_{t−1} + W_out z_t + b; ``feedback`` ``(H_top, K)`` carries the error to z in place of W_outᵀ.

        Shape: z ``(T, B, H_top)`` -> y ``(T, B, K)``."""
        return leaky(linear(z, self.weight_out, self.bias_out, feedback), self.params.kappa)

    def forward(self, input: Tensor, *, detach_reset: bool = False) -> tuple[Tensor, Tensor]:
        """(y ``(T, B, K)``, top-layer spikes ``(T, B, H_top)``), in the input's layout."""
        x, batched = self.prepare_input(input)
        z = self.hidden(x, detach_reset=detach_reset)[-1]
        y = self.readout(z)
        if not batched:
            return y.squeeze(1), z.squeeze(1)
        if self.batch_first:
            return y.transpose(0, 1), z.transpose(0, 1)
        return y, z

    def logits(self, input: Tensor) -> Tensor:
        """(1/T) Σ_t y_t. Shape: ``(B, K)`` (unbatched: ``(K,)``)."""
        y, _ = self.forward(input)
        return y.mean(dim=1 if self.batch_first and y.dim() == 3 else 0)

    def extra_repr(self) -> str:
        kind = "ALIF" if self.params.adaptive else "LIF"
        s = f"{self.input_size}, hidden_sizes={self.hidden_sizes}, output_size={self.output_size}, {kind}"
        if not self.recurrent:
            s += ", recurrent=False"
        if self.batch_first:
            s += ", batch_first=True"
        return s


def check_target(target: object, batch: int, classes: int) -> Tensor:
    """Integer labels ``(B,)`` in [0, K), else TypeError/ValueError naming ``target``."""
    if not isinstance(target, Tensor):
        raise TypeError(f"target must be a torch.Tensor of class indices, got {type(target).__name__}")
    if target.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise TypeError(f"target must hold integer class indices, got dtype {target.dtype}")
    if target.dim() != 1 or target.numel() != batch:
        raise ValueError(f"target must have shape ({batch},) to match the input's batch, got {tuple(target.shape)}")
    if batch and (int(target.min()) < 0 or int(target.max()) >= classes):
        raise ValueError(f"target must lie in [0, {classes}), got range [{int(target.min())}, {int(target.max())}]")
    return target.long()
