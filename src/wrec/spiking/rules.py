"""Learning rules for ``wrec.spiking.rsnn.RSNN``, from most to least global. Each fills ``p.grad``.

Every rule has ``compute_grads(net, x, target) -> loss``: it adds its estimate of ∂E/∂p to ``p.grad`` of every
trained parameter (accumulating like ``loss.backward()``; call ``optimizer.zero_grad()`` between steps) and
returns E = (1/T) Σ_t CE(y_t, target) averaged over the batch, so one torch optimizer trains the network whatever
the rule. All rules use the network's surrogate ψ.

- ``BPTT``: autograd through the unrolled loop (exact transposes, the whole trajectory stored).
- ``FeedbackAlignment`` (Lillicrap et al., Nat. Commun. 7, 13276, 2016): BPTT with a fixed random matrix in
  place of every weight transpose on the error's path (W_out, W_in above the first layer, W_rec).
- ``DirectFeedbackAlignment`` (Nøkland, NeurIPS 2016): the output error reaches every layer through a fixed
  random B_l, no gradient crosses layers, and each layer runs exact BPTT in time (e-prop without its truncation).
- ``EProp`` (Bellec et al., Nat. Commun. 11, 3625, 2020): eligibility traces forward in time and a broadcast
  learning signal L_{j,t} = Σ_k B_{jk}(π_{k,t} − y*_k)/T, π_t = softmax(y_t). B = W_outᵀ (``"symmetric"``) or a
  fixed random matrix (``"random"``); layers below the top always get the output error through a fixed random B.
  Online (O(1) memory in T) or, as a reference, by autograd with z_{t−1} detached in the recurrent and reset terms.
- ``LocalErrors`` (DECOLLE, Kaiser et al., Front. Neurosci. 14, 424, 2020): each layer below the top has a
  fixed random leaky readout G_l and its own loss; no gradient crosses layers; e-prop within a layer.

The rules estimate ∂E/∂W for the matrices the step uses (W_in, W_rec ⊙ (1 − I), W_out, b) and pass the estimate on
to whatever parameters produce them (the autapse mask, or a ``torch.nn.utils.parametrize`` parametrization such as
``wrec.nn.low_rank_sparse_`` or torch's ``spectral_norm``): a structured W_rec trains with every rule.

Eligibility traces (LIF; input i of neuron j, ``x`` the layer's input, ``z`` its spikes):
x̄_t = α x̄_{t−1} + x_t, ẑ_t = α ẑ_{t−1} + z_{t−1}; e_{ji,t} = ψ_{j,t}·(x̄ or ẑ)_{i,t}; because the readout is
leaky the eligibility is filtered with κ, ē_t = κ ē_{t−1} + e_t, and ∂̂E/∂W_{ji} = Σ_t L_{j,t} ē_{ji,t}.
ALIF adds ε^a_{t+1} = ψ_t ε^v_t + (ρ − ψ_t β) ε^a_t and e_t = ψ_t(ε^v_t − β ε^a_t) with ε^v = x̄ or ẑ.
The readout gradient is exact: ∂E/∂W_out,kj = Σ_t (π_{k,t} − y*_k) z̄^κ_{j,t}/T, z̄^κ the κ-filtered spikes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypedDict

import torch
import torch.nn.functional as F
from torch import Tensor

from wrec.rnn import check_bool, check_int
from wrec.spiking.rsnn import (
    RSNN,
    FeedbackLinear,
    LIFState,
    centered_potential,
    check_target,
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


def _backward(net: RSNN, loss: Tensor) -> None:
    """Add ∂loss/∂p to ``p.grad`` of every trained parameter of ``net`` (parametrizations' originals included)."""
    params = [p for p in net.parameters() if p.requires_grad]
    for p, g in zip(params, torch.autograd.grad(loss, params, allow_unused=True), strict=True):
        if g is not None:
            _add_grad(p, g)


class BPTT:
    """Backpropagation through time with the surrogate derivative: the exact gradient of the surrogate network.

    ``detach_reset`` stops the gradient through the soft reset −θ z_{t−1} (as e-prop does).
    """

    def __init__(self, detach_reset: bool = False) -> None:
        self.detach_reset = check_bool(detach_reset, "detach_reset")

    def compute_grads(self, net: RSNN, x: Tensor, target: Tensor) -> Tensor:
        """Fill ``p.grad``; return the loss. Shape: x ``(T, B, N_in)`` (or batch_first), target ``(B,)``."""
        x, target = _check_call(net, x, target)
        z = net.hidden(x, detach_reset=self.detach_reset)[-1]
        loss = rsnn_loss(net.readout(z), target)
        _backward(net, loss)
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
    truncate = True  # e-prop's stop-gradients in time (DFA keeps the exact temporal gradient)

    def _signals(self, net: RSNN, like: Tensor) -> tuple[list[Tensor], list[Tensor | None]]:
        raise NotImplementedError

    def compute_grads(self, net: RSNN, x: Tensor, target: Tensor) -> Tensor:
        """Fill ``p.grad``; return the loss. Shape: x ``(T, B, N_in)`` (or batch_first), target ``(B,)``."""
        x, target = _check_call(net, x, target)
        feedback, local = self._signals(net, net.weight_out)
        if not self.online:
            return _autograd_grads(net, x, target, feedback, local, truncate=self.truncate)
        with torch.enable_grad():  # the matrices the step uses, built once and kept linked to their parameters
            weights = [net.layer_weights(i) for i in range(net.num_layers)]
        grads, loss = _online_grads(net, x, target, feedback, local, weights)
        matrices = [w for pair in weights for w in pair if w is not None] + [net.weight_out, net.bias_out]
        pairs = [(m, g) for m, g in zip(matrices, grads, strict=True) if m.requires_grad]
        # on to the parameters behind the matrices (the autapse mask, parametrizations)
        torch.autograd.backward([m for m, _ in pairs], [g for _, g in pairs])
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
        self.online = check_bool(online, "online")
        self.seed = check_int(seed, "seed")
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
    this is symmetric e-prop. ``online`` as in ``EProp``.
    """

    def __init__(self, *, readouts: Sequence[Tensor] | None = None, online: bool = True, seed: int = 0) -> None:
        if readouts is not None and not all(isinstance(g, Tensor) for g in readouts):
            raise TypeError("readouts must be None or a sequence of (K, H_l) tensors")
        self._given = None if readouts is None else [g.detach() for g in readouts]
        self.online = check_bool(online, "online")
        self.seed = check_int(seed, "seed")
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


class _TensorKw(TypedDict):
    """The dtype and device of new tensors (``torch.zeros(..., **kw)``)."""

    dtype: torch.dtype
    device: torch.device


@torch.no_grad()
def _online_grads(net: RSNN, x: Tensor, target: Tensor, feedback: list[Tensor], local: list[Tensor | None],
                  weights: list[tuple[Tensor, Tensor | None]]) -> tuple[list[Tensor], Tensor]:
    """One forward pass with eligibility traces; memory O(B·H·N) per layer, independent of T. ``weights``: per
    layer (W_in, W_rec ⊙ (1 − I) or None) as ``RSNN.layer_weights`` gives them. Returns the gradient
    estimates for those matrices in order (W_rec's unmasked: the mask's backward zeroes the diagonal), then for
    W_out and b."""
    T, B, _ = x.shape
    p = net.params
    alpha, kappa, rho, beta = p.alpha, p.kappa, p.rho, p.beta
    dt = _TensorKw(dtype=x.dtype, device=x.device)
    sizes = (net.input_size, *net.hidden_sizes)
    onehot = F.one_hot(target, net.output_size).to(x.dtype)
    scale = 1.0 / (T * B)  # the loss averages over time and batch
    states = [LIFState.zeros(B, h, **dt) for h in net.hidden_sizes]
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
    y_local = {i: torch.zeros(B, net.output_size, **dt) for i, g in enumerate(local) if g is not None}
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
            readout = local[i]
            if readout is None:
                e_l = err
            else:
                y_local[i] = kappa * y_local[i] + states[i].z @ readout.T
                e_l = (torch.softmax(y_local[i], -1) - onehot) * scale
            signal = (e_l @ feedback[i].T).T[:, None, :]  # learning signal L^l_t as (H, 1, B)
            for k in kinds[i]:
                grad[i][k] += torch.bmm(signal, ebar[i][k]).squeeze(1)
    return [g[k] for i, g in enumerate(grad) for k in kinds[i]] + [g_out, g_b], loss


def _autograd_grads(net: RSNN, x: Tensor, target: Tensor, feedback: list[Tensor], local: list[Tensor | None], *,
                    truncate: bool = True) -> Tensor:
    """The stop-gradient construction of e-prop, differentiated by autograd into ``p.grad`` (the reference for the
    online rule); returns the loss.

    z_{t−1} is detached in the recurrent and reset terms (``truncate``; False keeps the exact gradient in time, as
    DFA does) and between layers; the output error reaches layer l through F_l (a silent broadcast for lower
    layers) or through the layer's own local readout and loss.
    """
    kappa = net.params.kappa
    spikes = net.hidden(x, detach_reset=truncate, detach_recurrent=truncate, detach_inputs=True)
    top = len(spikes) - 1
    drive = FeedbackLinear.apply(spikes[top], net.weight_out, net.bias_out, feedback[top])
    total = torch.zeros((), dtype=x.dtype, device=x.device)
    for i in range(top):
        readout = local[i]
        if readout is None:  # broadcast of the network's output error through F_l
            silent = torch.zeros(net.output_size, net.hidden_sizes[i], dtype=x.dtype, device=x.device)
            drive = drive + FeedbackLinear.apply(spikes[i], silent, None, feedback[i])
        else:
            total = total + rsnn_loss(leaky(spikes[i] @ readout.T, kappa), target)
    loss = rsnn_loss(leaky(drive, kappa), target)
    _backward(net, loss + total)
    return loss.detach()


class DirectFeedbackAlignment(EProp):
    """Direct feedback alignment in time: the output error L_t = (π_t − y*) B_lᵀ / T reaches every layer through a
    fixed random B_l ``(H_l, K)`` (U(±1/√H_l), drawn from ``seed`` as random e-prop's), no gradient crosses layers,
    and each layer's weights get the exact gradient in time of ⟨L, z^l⟩ (through W_rec and the reset: what e-prop
    truncates). ``feedback="symmetric"`` uses W_outᵀ at the top (one layer: BPTT), or give one matrix per layer.
    Computed by autograd (memory grows with T, as BPTT's)."""

    truncate = False

    def __init__(self, feedback: str | Sequence[Tensor] = "random", *, seed: int = 0) -> None:
        super().__init__(feedback, online=False, seed=seed)

    def __repr__(self) -> str:
        return f"DirectFeedbackAlignment(feedback={self.feedback!r}, seed={self.seed})"


class FeedbackAlignment:
    """BPTT in which the error travels back through fixed random matrices instead of the weights' transposes:
    B_out in place of W_out, B_l in place of W_in of every layer above the first, B_rec in place of W_rec (with a
    zero diagonal, like W_rec). Each B has its weight's shape, U(±1/√n_in), drawn once per network shape from
    ``seed``, or is given in ``feedback`` (parameter name -> matrix, e.g. ``{"weight_out": ...}``; names not given
    are drawn). Weight gradients use the true presynaptic activity; credit in time is exact (reset path included).
    """

    def __init__(self, feedback: Mapping[str, Tensor] | None = None, *, seed: int = 0) -> None:
        if feedback is not None and not (isinstance(feedback, Mapping)
                                         and all(isinstance(b, Tensor) for b in feedback.values())):
            raise TypeError("feedback must be None or a mapping from parameter name to a tensor")
        self._given = {} if feedback is None else {k: b.detach() for k, b in feedback.items()}
        self.seed = check_int(seed, "seed")
        self._random: dict[tuple, dict[str, Tensor]] = {}

    def feedback_weights(self, net: RSNN) -> dict[str, Tensor]:
        """Name -> B (the weight's shape) for W_out, W_in of layers ≥ 1 and every W_rec of ``net``."""
        shapes = {"weight_out": (net.output_size, net.hidden_sizes[-1])}
        for i in range(net.num_layers):
            h = net.hidden_sizes[i]
            if i > 0:
                shapes[f"weight_ih_l{i}"] = (h, net.hidden_sizes[i - 1])
            if net.recurrent:
                shapes[f"weight_hh_l{i}"] = (h, h)
        unknown = set(self._given) - set(shapes)
        if unknown:
            raise ValueError(f"feedback names {sorted(unknown)} are not feedback paths of this network; "
                             f"expected some of {sorted(shapes)}")
        like = net.weight_out
        key = (net.hidden_sizes, net.output_size, net.recurrent, like.dtype, like.device)
        if key not in self._random:
            gen = torch.Generator().manual_seed(self.seed)
            drawn = {name: _random_matrix(*shape, shape[1] ** -0.5, gen, like) for name, shape in shapes.items()}
            for name in drawn:
                if name.startswith("weight_hh"):
                    drawn[name].fill_diagonal_(0.0)
            self._random[key] = drawn
        out = dict(self._random[key])
        for name, b in self._given.items():
            if tuple(b.shape) != shapes[name]:
                raise ValueError(f"feedback[{name!r}] must have shape {shapes[name]}, got {tuple(b.shape)}")
            out[name] = b.to(like)
        return out

    def compute_grads(self, net: RSNN, x: Tensor, target: Tensor) -> Tensor:
        """Fill ``p.grad``; return the loss. Shape: x ``(T, B, N_in)`` (or batch_first), target ``(B,)``."""
        x, target = _check_call(net, x, target)
        b = self.feedback_weights(net)

        def t(name: str) -> Tensor | None:
            return b[name].T if name in b else None

        paths = [(t(f"weight_ih_l{i}"), t(f"weight_hh_l{i}")) for i in range(net.num_layers)]
        z = net.hidden(x, feedback=paths)[-1]
        loss = rsnn_loss(net.readout(z, feedback=t("weight_out")), target)
        _backward(net, loss)
        return loss.detach()

    def __repr__(self) -> str:
        return f"FeedbackAlignment(seed={self.seed})"


RULES = ("bptt", "eprop", "eprop-random", "local", "fa", "dfa")
Rule = BPTT | EProp | LocalErrors | FeedbackAlignment | DirectFeedbackAlignment


def make_rule(name: str, *, seed: int = 0, online: bool = True) -> Rule:
    """A rule by name: ``"bptt"``, ``"eprop"`` (symmetric), ``"eprop-random"``, ``"local"``, ``"fa"`` (feedback
    alignment) or ``"dfa"`` (direct feedback alignment). ``online`` picks e-prop's (and local errors') online
    implementation or the autograd one (same gradients; faster on a CPU at small T, memory growing with T)."""
    if name == "bptt":
        return BPTT()
    if name == "eprop":
        return EProp("symmetric", online=online, seed=seed)
    if name == "eprop-random":
        return EProp("random", online=online, seed=seed)
    if name == "local":
        return LocalErrors(online=online, seed=seed)
    if name == "fa":
        return FeedbackAlignment(seed=seed)
    if name == "dfa":
        return DirectFeedbackAlignment(seed=seed)
    raise ValueError(f"rule must be one of {RULES}, got {name!r}")
