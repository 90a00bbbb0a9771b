"""Learning rules for :class:`~wrec.spiking.rsnn.RSNN`, from most to least global. Each fills ``p.grad``.

Every rule has ``compute_grads(net, x, target) -> loss``: it adds its estimate of ∂E/∂p to ``p.grad`` of every
trained parameter (accumulating like ``loss.backward()``; call ``optimizer.zero_grad()`` between steps) and
returns E = (1/T) Σ_t CE(y_t, target) averaged over the batch, so one torch optimizer trains the network whatever
the rule. All rules use the network's surrogate ψ.

- :class:`BPTT`: autograd through the unrolled loop (exact transposes, the whole trajectory stored).
- :class:`EProp` (Bellec et al., Nat. Commun. 11, 3625, 2020): eligibility traces forward in time and a broadcast
  learning signal L_{j,t} = Σ_k B_{jk}(π_{k,t} − y*_k)/T, π_t = softmax(y_t). B = W_outᵀ (``"symmetric"``) or a
  fixed random matrix (``"random"``); layers below the top always get the output error through a fixed random B.
  Online (O(1) memory in T) or, as a reference, by autograd with z_{t−1} detached in the recurrent and reset terms.
- :class:`LocalErrors` (DECOLLE, Kaiser et al., Front. Neurosci. 14, 424, 2020): each layer below the top has a
  fixed random leaky readout G_l and its own loss; no gradient crosses layers; e-prop within a layer.

Eligibility traces (LIF; input i of neuron j, ``x`` the layer's input, ``z`` its spikes):
x̄_t = α x̄_{t−1} + x_t, ẑ_t = α ẑ_{t−1} + z_{t−1}; e_{ji,t} = ψ_{j,t}·(x̄ or ẑ)_{i,t}; because the readout is
leaky the eligibility is filtered with κ, ē_t = κ ē_{t−1} + e_t, and ∂̂E/∂W_{ji} = Σ_t L_{j,t} ē_{ji,t}.
ALIF adds ε^a_{t+1} = ψ_t ε^v_t + (ρ − ψ_t β) ε^a_t and e_t = ψ_t(ε^v_t − β ε^a_t) with ε^v = x̄ or ẑ.
The readout gradient is exact: ∂E/∂W_out,kj = Σ_t (π_{k,t} − y*_k) z̄^κ_{j,t}/T, z̄^κ the κ-filtered spikes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from wrec.nn._rnn import _check_bool, _check_int
from wrec.spiking.rsnn import (
    RSNN,
    centered_potential,
    check_target,
    initial_state,
    leaky,
    lif_step,
    rsnn_loss,
    surrogate_derivative,
)

FEEDBACK = ("symmetric", "random")


def _check_call(net: object, x: Tensor, target: object) -> tuple[Tensor, Tensor]:
    if not isinstance(net, RSNN):
        raise TypeError(f"net must be a wrec.spiking.RSNN, got {type(net).__name__}")
    x, batched = net.prepare_input(x)
    if not batched:
        raise ValueError(f"x must be batched (3-D), got shape {tuple(x.shape[::2])}")
    return x, check_target(target, x.shape[1], net.output_size)


def _add_grad(p: Tensor, g: Tensor) -> None:
    p.grad = g.detach().clone() if p.grad is None else p.grad + g


def _random_matrix(rows: int, cols: int, scale: float, generator: torch.Generator, like: Tensor) -> Tensor:
    """U(−scale, scale) drawn on the CPU from ``generator`` (device-independent numbers), then moved."""
    m = (torch.rand(rows, cols, generator=generator, dtype=torch.float64) * 2 - 1) * scale
    return m.to(dtype=like.dtype, device=like.device)


class _FeedbackLinear(torch.autograd.Function):
    """Forward z Wᵀ + b; backward sends the error to z through ``feedback`` (H, K) instead of Wᵀ.

    With ``weight`` zero it is a silent broadcast: no effect on y, but z receives ∂E/∂y · feedbackᵀ.
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


class BPTT:
    """Backpropagation through time with the surrogate derivative: the exact gradient of the surrogate network.

    ``detach_reset`` stops the gradient through the soft reset −θ z_{t−1} (as e-prop does).
    """

    def __init__(self, detach_reset: bool = False) -> None:
        self.detach_reset = _check_bool(detach_reset, "detach_reset")

    def compute_grads(self, net: RSNN, x: Tensor, target: Tensor) -> Tensor:
        """Fill ``p.grad``; return the loss. Shape: x ``(T, B, N_in)`` (or batch_first), target ``(B,)``."""
        x, target = _check_call(net, x, target)
        z = net.hidden(x, detach_reset=self.detach_reset)[-1]
        loss = rsnn_loss(net.readout(z), target)
        params = [p for p in net.parameters() if p.requires_grad]
        for p, g in zip(params, torch.autograd.grad(loss, params), strict=True):
            _add_grad(p, g)
        return loss.detach()

    def __repr__(self) -> str:
        return f"BPTT(detach_reset={self.detach_reset})"


class _Online:
    """Shared machinery of the eligibility-trace rules: per layer a source of its learning signal.

    Layer l's learning signal is L^l_t = (π^{(l)}_t − y*) F_lᵀ / T with F_l ``(H_l, K)``; π^{(l)} is the network's
    output (``local[l]`` None) or the softmax of the layer's own fixed leaky readout κ y + G_l z (``local[l]``
    = G_l ``(K, H_l)``), whose loss then trains that layer only.
    """

    online: bool

    def _signals(self, net: RSNN, like: Tensor) -> tuple[list[Tensor], list[Tensor | None]]:
        raise NotImplementedError

    def compute_grads(self, net: RSNN, x: Tensor, target: Tensor) -> Tensor:
        """Fill ``p.grad``; return the loss. Shape: x ``(T, B, N_in)`` (or batch_first), target ``(B,)``."""
        x, target = _check_call(net, x, target)
        feedback, local = self._signals(net, net.weight_out)
        run = _online_grads if self.online else _autograd_grads
        grads, loss = run(net, x, target, feedback, local)
        for p, g in grads:
            _add_grad(p, g)
        return loss


class EProp(_Online):
    """e-prop: eligibility traces times a broadcast output error.

    ``feedback``: ``"symmetric"`` (top layer B = W_outᵀ, the current readout), ``"random"`` (fixed random B for
    every layer, drawn once per network shape from ``seed``: U(±1/√H_l), as DFA), or an explicit sequence of one
    ``(H_l, K)`` matrix per layer. Layers below the top always use a fixed random B (there is no transpose to
    take). ``online=True`` runs forward in time with O(1) memory in T; ``online=False`` is the autograd reference
    (z_{t−1} detached in the recurrent and reset terms, B in the readout's backward), equal to float precision.
    """

    def __init__(self, feedback: str | Sequence[Tensor] = "symmetric", *, online: bool = True, seed: int = 0) -> None:
        if isinstance(feedback, str):
            if feedback not in FEEDBACK:
                raise ValueError(f"feedback must be one of {FEEDBACK} or a sequence of (H_l, K) tensors, "
                                 f"got {feedback!r}")
            self._given = None
        else:
            if not all(isinstance(b, Tensor) for b in feedback):
                raise TypeError("feedback must be 'symmetric', 'random' or a sequence of (H_l, K) tensors")
            self._given = [b.detach() for b in feedback]
        self.feedback = feedback if isinstance(feedback, str) else "given"
        self.online = _check_bool(online, "online")
        self.seed = _check_int(seed, "seed")
        self._random: dict[tuple, list[Tensor]] = {}

    def feedback_weights(self, net: RSNN) -> list[Tensor]:
        """The B ``(H_l, K)`` of every layer for this network (the top one is W_outᵀ when symmetric)."""
        return self._signals(net, net.weight_out)[0]

    def _signals(self, net: RSNN, like: Tensor) -> tuple[list[Tensor], list[Tensor | None]]:
        K = net.output_size
        if self._given is not None:
            if len(self._given) != net.num_layers:
                raise ValueError(f"feedback has {len(self._given)} matrices, the network has {net.num_layers} layers")
            for i, (b, h) in enumerate(zip(self._given, net.hidden_sizes, strict=True)):
                if tuple(b.shape) != (h, K):
                    raise ValueError(f"feedback[{i}] must have shape ({h}, {K}), got {tuple(b.shape)}")
            B = [b.to(like) for b in self._given]
        else:
            key = (net.hidden_sizes, K, like.dtype, like.device)
            if key not in self._random:
                gen = torch.Generator().manual_seed(self.seed)
                self._random[key] = [_random_matrix(h, K, h ** -0.5, gen, like) for h in net.hidden_sizes]
            B = list(self._random[key])
            if self.feedback == "symmetric":
                B[-1] = net.weight_out.detach().T
        return B, [None] * net.num_layers

    def __repr__(self) -> str:
        return f"EProp(feedback={self.feedback!r}, online={self.online}, seed={self.seed})"


class LocalErrors(_Online):
    """DECOLLE-style local errors: layer l < top learns from its own fixed random leaky readout G_l.

    y^l_t = κ y^l_{t−1} + G_l z^l_t (G_l ~ U(±1/√H_l), drawn from ``seed``, or ``readouts``: one ``(K, H_l)`` per
    layer below the top), loss (1/T) Σ_t CE(y^l_t, target), input z^{l−1} detached, e-prop-style updates with
    L^l = (π^l − y*) G_l / T. The top layer uses the real readout (symmetric e-prop), so with one hidden layer
    this is symmetric e-prop. ``online`` as in :class:`EProp`.
    """

    def __init__(self, *, readouts: Sequence[Tensor] | None = None, online: bool = True, seed: int = 0) -> None:
        if readouts is not None and not all(isinstance(g, Tensor) for g in readouts):
            raise TypeError("readouts must be None or a sequence of (K, H_l) tensors")
        self._given = None if readouts is None else [g.detach() for g in readouts]
        self.online = _check_bool(online, "online")
        self.seed = _check_int(seed, "seed")
        self._random: dict[tuple, list[Tensor]] = {}

    def local_readouts(self, net: RSNN) -> list[Tensor]:
        """G_l ``(K, H_l)`` of every layer below the top."""
        return [g for g in self._signals(net, net.weight_out)[1] if g is not None]

    def _signals(self, net: RSNN, like: Tensor) -> tuple[list[Tensor], list[Tensor | None]]:
        K, lower = net.output_size, net.hidden_sizes[:-1]
        if self._given is not None:
            if len(self._given) != len(lower):
                raise ValueError(f"readouts must hold {len(lower)} matrices (one per layer below the top), "
                                 f"got {len(self._given)}")
            for i, (g, h) in enumerate(zip(self._given, lower, strict=True)):
                if tuple(g.shape) != (K, h):
                    raise ValueError(f"readouts[{i}] must have shape ({K}, {h}), got {tuple(g.shape)}")
            G = [g.to(like) for g in self._given]
        else:
            key = (net.hidden_sizes, K, like.dtype, like.device)
            if key not in self._random:
                gen = torch.Generator().manual_seed(self.seed)
                self._random[key] = [_random_matrix(K, h, h ** -0.5, gen, like) for h in lower]
            G = self._random[key]
        local: list[Tensor | None] = [*G, None]
        feedback = [g.T for g in G] + [net.weight_out.detach().T]
        return feedback, local

    def __repr__(self) -> str:
        return f"LocalErrors(online={self.online}, seed={self.seed})"


def _trained(net: RSNN) -> list[tuple[Tensor, str, int]]:
    """(parameter, kind, layer) for every parameter that requires a gradient."""
    out = []
    for layer in range(net.num_layers):
        w_in, w_rec = net.layer_parameters(layer)
        out.append((w_in, "in", layer))
        if w_rec is not None:
            out.append((w_rec, "rec", layer))
    out += [(net.weight_out, "out", -1), (net.bias_out, "bias", -1)]
    return [item for item in out if item[0].requires_grad]


def _collect(net: RSNN, g_in: list[Tensor], g_rec: list[Tensor | None], g_out: Tensor,
             g_b: Tensor) -> list[tuple[Tensor, Tensor]]:
    found = {"in": g_in, "rec": g_rec}
    out = []
    for p, kind, layer in _trained(net):
        if kind == "out":
            out.append((p, g_out))
        elif kind == "bias":
            out.append((p, g_b))
        else:
            out.append((p, found[kind][layer]))
    return out


@torch.no_grad()
def _online_grads(net: RSNN, x: Tensor, target: Tensor, feedback: list[Tensor],
                  local: list[Tensor | None]) -> tuple[list[tuple[Tensor, Tensor]], Tensor]:
    """One forward pass with eligibility traces; memory O(B·H·N) per layer, independent of T."""
    T, B, _ = x.shape
    p = net.params
    alpha, kappa, rho, beta = p.alpha, p.kappa, p.rho, p.beta
    dt = {"dtype": x.dtype, "device": x.device}
    sizes = (net.input_size, *net.hidden_sizes)
    onehot = F.one_hot(target, net.output_size).to(x.dtype)
    scale = 1.0 / (T * B)  # the loss averages over time and batch
    weights = [net.layer_weights(i) for i in range(net.num_layers)]
    states = [initial_state(B, h, **dt) for h in net.hidden_sizes]
    psi_prev = [torch.zeros(B, h, **dt) for h in net.hidden_sizes]
    # per layer and per kind ("in": input x̄, "rec": recurrent ẑ): ε^v, ε^a, ē and the gradient
    kinds = [("in", "rec") if net.recurrent else ("in",) for _ in net.hidden_sizes]
    width = [{"in": sizes[i], "rec": sizes[i + 1]} for i in range(net.num_layers)]
    ev = [{k: torch.zeros(B, width[i][k], **dt) for k in kinds[i]} for i in range(net.num_layers)]
    # (H, B, N) layout: in-place updates, and the gradient is one batched (1, B) × (B, N) product per neuron
    ea = [{k: torch.zeros(sizes[i + 1], B, width[i][k], **dt) for k in kinds[i]} if p.adaptive else {}
          for i in range(net.num_layers)]
    ebar = [{k: torch.zeros(sizes[i + 1], B, width[i][k], **dt) for k in kinds[i]} for i in range(net.num_layers)]
    grad = [{k: torch.zeros(sizes[i + 1], width[i][k], **dt) for k in kinds[i]} for i in range(net.num_layers)]
    y = torch.zeros(B, net.output_size, **dt)
    y_local = [None if g is None else torch.zeros(B, net.output_size, **dt) for g in local]
    zbar = torch.zeros(B, net.hidden_sizes[-1], **dt)
    bbar = 0.0
    g_out = torch.zeros_like(net.weight_out)
    g_b = torch.zeros_like(net.bias_out)
    loss = torch.zeros((), **dt)
    for t in range(T):
        inp = x[t]
        for i in range(net.num_layers):
            s = states[i]
            presyn = {"in": inp, "rec": s.z}  # x_t and z_{t−1}
            for k in kinds[i]:
                if p.adaptive:  # ε^a_t = ψ_{t−1} ε^v_{t−1} + (ρ − ψ_{t−1} β) ε^a_{t−1}
                    ea[i][k].mul_((rho - beta * psi_prev[i]).T[:, :, None])
                    ea[i][k].addcmul_(psi_prev[i].T[:, :, None], ev[i][k][None])
                ev[i][k] = alpha * ev[i][k] + presyn[k]
            s = lif_step(p, s, inp, *weights[i])
            psi = surrogate_derivative(centered_potential(p, s), p).T  # (H, B)
            for k in kinds[i]:
                trace = ev[i][k][None] - beta * ea[i][k] if p.adaptive else ev[i][k][None]
                ebar[i][k].mul_(kappa).addcmul_(psi[:, :, None], trace)  # ē_t = κ ē_{t−1} + ψ_t ε_t, (H, B, N)
            states[i], psi_prev[i] = s, psi.T
            inp = s.z
        z = inp
        y = kappa * y + z @ net.weight_out.T + net.bias_out
        zbar = kappa * zbar + z
        bbar = kappa * bbar + 1.0
        err = (torch.softmax(y, -1) - onehot) * scale  # (B, K)
        loss += F.cross_entropy(y, target, reduction="sum") * scale
        g_out += err.T @ zbar
        g_b += err.sum(0) * bbar
        for i in range(net.num_layers):
            if local[i] is None:
                e_l = err
            else:
                y_local[i] = kappa * y_local[i] + states[i].z @ local[i].T
                e_l = (torch.softmax(y_local[i], -1) - onehot) * scale
            signal = (e_l @ feedback[i].T).T[:, None, :]  # learning signal L^l_t as (H, 1, B)
            for k in kinds[i]:
                grad[i][k] += torch.bmm(signal, ebar[i][k]).squeeze(1)
    g_in = [grad[i]["in"] for i in range(net.num_layers)]
    g_rec: list[Tensor | None] = [None] * net.num_layers
    if net.recurrent:
        g_rec = [grad[i]["rec"] * getattr(net, f"mask_hh_l{i}") for i in range(net.num_layers)]
    return _collect(net, g_in, g_rec, g_out, g_b), loss


def _autograd_grads(net: RSNN, x: Tensor, target: Tensor, feedback: list[Tensor],
                    local: list[Tensor | None]) -> tuple[list[tuple[Tensor, Tensor]], Tensor]:
    """The stop-gradient construction of e-prop, differentiated by autograd (the reference for the online rule).

    z_{t−1} is detached in the recurrent and reset terms and between layers; the output error reaches layer l
    through F_l (a silent broadcast for lower layers) or through the layer's own local readout and loss.
    """
    kappa = net.params.kappa
    spikes = net.hidden(x, detach_reset=True, detach_recurrent=True, detach_inputs=True)
    top = len(spikes) - 1
    drive = _FeedbackLinear.apply(spikes[top], net.weight_out, net.bias_out, feedback[top])
    total = torch.zeros((), dtype=x.dtype, device=x.device)
    for i in range(top):
        if local[i] is None:  # broadcast of the network's output error through F_l
            silent = torch.zeros(net.output_size, net.hidden_sizes[i], dtype=x.dtype, device=x.device)
            drive = drive + _FeedbackLinear.apply(spikes[i], silent, None, feedback[i])
        else:
            total = total + rsnn_loss(leaky(spikes[i] @ local[i].T, kappa), target)
    loss = rsnn_loss(leaky(drive, kappa), target)
    params = [item[0] for item in _trained(net)]
    grads = torch.autograd.grad(loss + total, params)
    return list(zip(params, grads, strict=True)), loss.detach()


RULES = ("bptt", "eprop", "eprop-random", "local")


def make_rule(name: str, *, seed: int = 0) -> BPTT | EProp | LocalErrors:
    """A rule by name: ``"bptt"``, ``"eprop"`` (symmetric), ``"eprop-random"`` or ``"local"``."""
    if name == "bptt":
        return BPTT()
    if name == "eprop":
        return EProp("symmetric", seed=seed)
    if name == "eprop-random":
        return EProp("random", seed=seed)
    if name == "local":
        return LocalErrors(seed=seed)
    raise ValueError(f"rule must be one of {RULES}, got {name!r}")
