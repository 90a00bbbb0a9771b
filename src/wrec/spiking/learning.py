"""Local learning rules for spike coding networks.

Unsupervised learning of the feedforward weights F and the fast recurrent weights Ω of an autoencoder SCN
(Brendel, Bourdoukan, Vertechi, Machens, Denève, PLoS CB 2020; Vertechi et al., NeurIPS 2014). At a spike
of neuron k, with V and r taken just before that spike and x the current filtered input:

    Ω[:, k] ← Ω[:, k] − ε_Ω [β(V + μ r) + Ω[:, k]],   then  Ω_kk ← Ω_kk − ε_Ω μ      (voltage balance)
    F[k, :] ← F[k, :] + ε_F (α x − F[k, :])                                          (feedforward)

Their fixed point is Ω → −s F Fᵀ − μI for a scale s > 0, which ``metrics.alignment_error`` measures.
The rules are pure functions of the weights, and ``autoencoder_step`` is the pure learning step (``scn.step`` with
the rules at its spike hook); ``learn_autoencoder`` runs the same arithmetic on arrays it updates in place.

Shapes: N neurons, J signal dimensions, K checkpoints.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import NamedTuple

import numpy as np

from wrec import _checks, dynamics
from wrec import checkpoint as checkpoint_store
from wrec._checks import Seed
from wrec.spiking.metrics import alignment_error
from wrec.spiking.scn import (
    MODES,
    SCNParams,
    SCNWeights,
    _step,
    _storm,
    derived_weights,
    optimal_weights,
    simulate,
)
from wrec.tasks.signals import leaky_integral, linear_response, smoothed_white_noise

Array = np.ndarray
PRESETS = ("brendel2020_fig2", "brendel2020_si")
_INPUT_CHUNK_BLOCKS = 50  # input blocks generated at once (bounded memory for long runs)


@dataclass(frozen=True)
class AutoencoderLearning:
    """Parameters of unsupervised autoencoder learning (Brendel et al. 2020); defaults are preset
    ``"brendel2020_fig2"`` (the authors' code for their Fig. 2).

    Attributes:
        n: N, neurons.
        j: J, signal dimensions.
        leak: λ (1/s), leak of V, r and x.
        dt: time step (s).
        eps_fast: ε_Ω, learning rate of the recurrent rule (≥ 0).
        eps_ff: ε_F, learning rate of the feedforward rule (≥ 0).
        alpha: α, the scale of x in the feedforward rule.
        beta: β, the scale of V + μr in the recurrent rule.
        mu: μ, quadratic cost (≥ 0); enters the recurrent rule and the reset.
        nu: ν, linear cost (≥ 0; documentation: the thresholds are ``threshold``).
        threshold: T (> 0), the same for every neuron.
        mode: spike rule of ``scn.step``, ``"single"`` (the authors' code) or ``"sequential"``.
        sigma_v: s.d. of the voltage noise per step.
        sigma_t: s.d. of the threshold noise per step (inside the argmax).
        init_ff_norm: ‖F_n‖ of the random initial feedforward rows.
        init_fast_random: a in Ω₀ = −a·U(0, 1) − b I.
        init_fast_diag: b in Ω₀ = −a·U(0, 1) − b I.
        input_width: s.d. (steps) of the Gaussian smoothing of the input noise.
        input_amplitude: amplitude of the input current c.
        input_block: steps after which the input noise is redrawn.
    """

    n: int = 20
    j: int = 2
    leak: float = 50.0
    dt: float = 1e-3
    eps_fast: float = 1e-3
    eps_ff: float = 1e-4
    alpha: float = 0.18
    beta: float = 1 / 0.9
    mu: float = 0.02 / 0.9
    nu: float = 0.0
    threshold: float = 0.5
    mode: str = "single"
    sigma_v: float = 1e-3
    sigma_t: float = 1e-2
    init_ff_norm: float = 1.0
    init_fast_random: float = 0.2
    init_fast_diag: float = 0.5
    input_width: float = 30.0
    input_amplitude: float = 2000.0
    input_block: int = 1000

    def __post_init__(self) -> None:
        _checks.integer(self.n, "n", low=1)
        _checks.integer(self.j, "j", low=1)
        _checks.integer(self.input_block, "input_block", low=1)
        for name in ("eps_fast", "eps_ff", "mu", "nu", "sigma_v", "sigma_t", "init_fast_random",
                     "init_fast_diag", "leak"):
            object.__setattr__(self, name, _checks.real(getattr(self, name), name, low=0.0))
        for name in ("dt", "threshold", "init_ff_norm", "input_width"):
            object.__setattr__(self, name, _checks.real(getattr(self, name), name, low=0.0, low_open=True))
        for name in ("alpha", "beta", "input_amplitude"):
            object.__setattr__(self, name, _checks.real(getattr(self, name), name))
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        self.scn_params()  # checks dt·leak < 0.1

    @classmethod
    def preset(cls, name: str) -> AutoencoderLearning:
        """A published parameter set: ``"brendel2020_fig2"`` (the authors' Fig. 2 code) or
        ``"brendel2020_si"`` (the supplementary text: slower rates, ‖F_n‖ = 0.8, Ω₀ = −0.5 I)."""
        if name == "brendel2020_fig2":
            return cls()
        if name == "brendel2020_si":
            return cls(eps_fast=1e-4, eps_ff=1e-5, alpha=0.21, beta=1.25, mu=0.02, sigma_t=2e-2,
                       init_ff_norm=0.8, init_fast_random=0.0)
        raise ValueError(f"preset must be one of {PRESETS}, got {name!r}")

    def scn_params(self) -> SCNParams:
        """The simulation parameters of the network being learned."""
        return SCNParams(leak=self.leak, dt=self.dt, mu=self.mu, nu=self.nu, sigma_v=self.sigma_v,
                         sigma_t=self.sigma_t, mode=self.mode)

    @cached_property
    def constants(self) -> SCNParams:
        """``scn_params()``, built once (the learning step reads it at every step)."""
        return self.scn_params()

    @cached_property
    def spike_cap(self) -> int:
        """The spike-storm guard of the network being learned (``SCNParams.spike_cap``)."""
        return self.constants.spike_cap(self.n)


@dataclass(frozen=True, eq=False)
class LearningTrace:
    """What ``learn_autoencoder`` returns.

    Attributes:
        steps: (K,) learning steps at the checkpoints (0 = before learning).
        err_fast: (K,) err_Ω = ``metrics.alignment_error(Ω, F)`` at each checkpoint.
        rate: (K,) mean firing rate (Hz, over neurons) between the previous checkpoint and this one; NaN at 0.
        F: (K, N, J) feedforward weights at each checkpoint.
        fast: (K, N, N) recurrent weights Ω at each checkpoint.
        weights: the learned weights (after the last step).
        n_spikes: total number of spikes during learning.
    """

    steps: Array
    err_fast: Array
    rate: Array
    F: Array
    fast: Array
    weights: SCNWeights
    n_spikes: int


def _recurrent_column(column: Array, V: Array, r: Array, k: int, eps: float, beta: float, mu: float) -> None:
    """The recurrent rule's arithmetic, once, in place on Ω's column k (a view: ``fast[:, k]`` or ``Ωᵀ[k]``):
    column ← column − ε[β(V + μr) + column], then column[k] ← column[k] − εμ."""
    column -= eps * (beta * (V + mu * r) + column)
    column[k] -= eps * mu


def _feedforward_row(row: Array, x: Array, eps: float, alpha: float) -> None:
    """The feedforward rule's arithmetic, once, in place on F's row k: row ← row + ε(αx − row)."""
    row += eps * (alpha * x - row)


def _recurrent(fast: Array, V: Array, r: Array, k: int, eps: float, beta: float, mu: float) -> Array:
    out = fast.copy()
    _recurrent_column(out[:, k], V, r, k, eps, beta, mu)
    return out


def _feedforward(F: Array, x: Array, k: int, eps: float, alpha: float) -> Array:
    out = F.copy()
    _feedforward_row(out[k], x, eps, alpha)
    return out


def recurrent_update(fast: Array, V: Array, r: Array, k: int, eps: float, beta: float, mu: float) -> Array:
    """Ω[:, k] ← Ω[:, k] − ε[β(V + μr) + Ω[:, k]], then Ω_kk ← Ω_kk − εμ (a new array; Ω is not modified).

    Shape: fast (N, N); V, r (N,), taken just before the spike of neuron k.
    """
    fast = _checks.square(fast, "fast")
    n = fast.shape[0]
    V, r = _vec(V, "V", n), _vec(r, "r", n)
    k = _checks.integer(k, "k", low=0, high=n - 1)
    eps = _checks.real(eps, "eps", low=0.0)
    beta = _checks.real(beta, "beta")
    mu = _checks.real(mu, "mu", low=0.0)
    return _recurrent(fast, V, r, k, eps, beta, mu)


def feedforward_update(F: Array, x: Array, k: int, eps: float, alpha: float) -> Array:
    """F[k, :] ← F[k, :] + ε(αx − F[k, :]) (a new array; F is not modified).

    Shape: F (N, J); x (J,), the filtered input at the spike of neuron k.
    """
    F = _checks.array(F, "F", ndim=2)
    x = _vec(x, "x", F.shape[1])
    k = _checks.integer(k, "k", low=0, high=F.shape[0] - 1)
    eps = _checks.real(eps, "eps", low=0.0)
    alpha = _checks.real(alpha, "alpha")
    return _feedforward(F, x, k, eps, alpha)


def autoencoder_update(weights: SCNWeights, k: int, V: Array, r: Array, x: Array,
                       rule: AutoencoderLearning) -> SCNWeights:
    """Both rules (module docstring) at a spike of neuron k: new weights with Ω column k and F row k updated.

    Each rule uses the weights from before the spike. This is the function ``learn_autoencoder`` calls at every
    spike, so it checks only types and shapes (the weights and the rule are validated records). Shape: V, r (N,);
    x (J,).
    """
    if not isinstance(weights, SCNWeights):
        raise TypeError(f"weights must be an SCNWeights, got {type(weights).__name__}")
    if not isinstance(rule, AutoencoderLearning):
        raise TypeError(f"rule must be an AutoencoderLearning, got {type(rule).__name__}")
    n, j = weights.F.shape
    if not (getattr(V, "shape", None) == getattr(r, "shape", None) == (n,) and getattr(x, "shape", None) == (j,)):
        for name, a, size in (("V", V, n), ("r", r, n), ("x", x, j)):  # which one, for the message
            if np.shape(a) != (size,):
                raise ValueError(f"{name} must have shape ({size},), got {np.shape(a)}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k < n:
        raise ValueError(f"k must be an integer in [0, {n - 1}], got {k!r}")
    return derived_weights(weights, F=_feedforward(weights.F, x, k, rule.eps_ff, rule.alpha),
                           fast=_recurrent(weights.fast, V, r, k, rule.eps_fast, rule.beta, rule.mu))


def initial_weights(rule: AutoencoderLearning, seed: Seed = None) -> SCNWeights:
    """F rows random directions of norm ``init_ff_norm``; Ω₀ = −a·U(0, 1) − b I; T = ``threshold``."""
    if not isinstance(rule, AutoencoderLearning):
        raise TypeError(f"rule must be an AutoencoderLearning, got {type(rule).__name__}")
    rng = _checks.rng(seed)
    F = rng.standard_normal((rule.n, rule.j))
    F *= rule.init_ff_norm / np.linalg.norm(F, axis=1, keepdims=True)
    fast = -rule.init_fast_random * rng.random((rule.n, rule.n)) - rule.init_fast_diag * np.eye(rule.n)
    return SCNWeights(F=F, fast=fast, T=np.full(rule.n, rule.threshold))


class AutoencoderInput:
    """The training stream of ``learn_autoencoder`` (a ``wrec.dynamics.Stream``): c smoothed white noise
    (``tasks.smoothed_white_noise``; s.d. ``input_width`` steps, amplitude ``input_amplitude``, redrawn every
    ``input_block`` steps) drawn from ``seed`` in chunks of ``input_block`` × 50 steps (bounded memory), and x its
    leaky integral x_{t+1} = (1 − λdt)x_t + dt c_t from x_0 = 0, continued across chunks. A chunk is (c, x) with
    x[t] the value after c[t], the one the rule sees at step t. Shape: (L, J) each."""

    def __init__(self, rule: AutoencoderLearning, seed: Seed = None) -> None:
        self.rule, self.rng = rule, _checks.rng(seed)
        self.x0 = np.zeros(rule.j)  # x just before the next chunk

    def draw(self, limit: int) -> tuple[Array, Array]:
        rule = self.rule
        length = min(rule.input_block * _INPUT_CHUNK_BLOCKS, limit)
        c = smoothed_white_noise(length, rule.j, width=rule.input_width, amplitude=rule.input_amplitude,
                                 block=rule.input_block, seed=self.rng)
        x = leaky_integral(c, rule.leak, rule.dt, x0=self.x0)
        self.x0 = x[-1]
        return c, x

    def get_state(self) -> tuple[dict, dict[str, Array]]:
        return {"rng": checkpoint_store.rng_state(self.rng)}, {"x0": self.x0}

    def set_state(self, meta, arrays) -> None:
        checkpoint_store.set_rng_state(self.rng, meta["rng"])
        self.x0 = np.array(arrays["x0"])


class AutoencoderState(NamedTuple):
    """State of a ``learn_autoencoder`` run: the network's V, r (1, N) and pending (1,), the weights being learned,
    the steps done, and the spike counts since the last log and in total."""

    V: Array
    r: Array
    pending: Array
    weights: SCNWeights
    t: int
    spikes_since: int
    n_spikes: int


def autoencoder_step(params: AutoencoderLearning, state: AutoencoderState, inputs: tuple[Array, Array], *,
                     rng: np.random.Generator | None = None) -> tuple[AutoencoderState, int]:
    """One learning step: ``scn.step`` on the current c_t (drive F c_t), with ``autoencoder_update`` applied at every
    spike (x_t the filtered input). ``inputs`` = (c_t, x_t). Returns the new state and the number of spikes."""
    c, x = inputs
    w = state.weights

    def on_spike(_b: int, k: int, V: Array, r: Array) -> SCNWeights:
        nonlocal w
        w = autoencoder_update(w, k, V, r, x, params)
        return w

    V, r, pending, spikes, w = _step(params.constants, w, state.V, state.r, state.pending, c[None] @ w.F.T, rng,
                                     on_spike, state.t, params.spike_cap)
    fired = sum([k.size for _, k in spikes])
    return AutoencoderState(V, r, pending, w, state.t + 1, state.spikes_since + fired, state.n_spikes + fired), fired


class _Arrays:
    """Two aligned (T, J) arrays (c, x) as a ``dynamics.Stream`` of chunks of at most ``_ARRAY_CHUNK`` steps (so that
    the noise drawn beside each chunk stays small)."""

    def __init__(self, c: Array, x: Array) -> None:
        c, x = _checks.array(c, "inputs[0] (c)", ndim=2), _checks.array(x, "inputs[1] (x)", ndim=2)
        if c.shape != x.shape:
            raise ValueError(f"inputs must be two (T, J) arrays of one shape, got {c.shape} and {x.shape}")
        self.c, self.x, self.pos = c, x, 0

    def draw(self, limit: int) -> tuple[Array, Array]:
        stop = self.pos + min(limit, _ARRAY_CHUNK)
        c, x = self.c[self.pos:stop], self.x[self.pos:stop]
        self.pos = stop
        return c, x

    def get_state(self) -> tuple[dict, dict[str, Array]]:
        return {"pos": self.pos}, {}

    def set_state(self, meta, arrays) -> None:
        self.pos = int(meta["pos"])


_ARRAY_CHUNK = 50_000


class _WithNoise:
    """The stream of ``learn_autoencoder``'s kernel: each chunk (c, x) of the input stream with, per step, c as a
    (1, J) row, the voltage noise σ_V ξ and the noisy thresholds θ = T + σ_T η, drawn for the whole chunk from the
    noise generator. The draws are those of ``scn.step`` one step at a time (ξ then η, N values each, per step),
    so the numbers equal a step-by-step run; the generator's state is part of the stream's, so a resumed run
    redraws its chunk exactly."""

    def __init__(self, stream, rng: np.random.Generator, rule: AutoencoderLearning) -> None:
        self.stream, self.rng, self.rule = stream, rng, rule
        self.T = np.full(rule.n, rule.threshold)

    def draw(self, limit: int) -> tuple[Array, Array, Array, Array]:
        c, x = self.stream.draw(limit)
        rule, length, n = self.rule, len(c), self.rule.n
        draws = int(rule.sigma_v > 0) + int(rule.sigma_t > 0)
        noise = self.rng.standard_normal((length, draws, n)) if draws else np.zeros((length, 0, n))
        zeros = np.broadcast_to(np.zeros(n), (length, n))
        sv = np.multiply(noise[:, 0], rule.sigma_v, out=noise[:, 0]) if rule.sigma_v > 0 else zeros
        theta = np.broadcast_to(self.T, (length, n))
        if rule.sigma_t > 0:
            theta = np.multiply(noise[:, -1], rule.sigma_t, out=noise[:, -1])
            theta += self.T
        return c[:, None, :], x, sv, theta

    def get_state(self) -> tuple[dict, dict[str, Array]]:
        meta, arrays = self.stream.get_state()
        return {"inputs": meta, "noise_rng": checkpoint_store.rng_state(self.rng)}, arrays

    def set_state(self, meta, arrays) -> None:
        self.stream.set_state(meta["inputs"], arrays)
        checkpoint_store.set_rng_state(self.rng, meta["noise_rng"])


class _KernelState(NamedTuple):
    """The state of ``_learning_kernel``, arrays it updates in place: V, r (N,); pending (1,) (−1 for none); F (N, J);
    Ωᵀ (N, N) (Ω's columns as contiguous rows); counts (2,): spikes since the last log, in total."""

    V: Array
    r: Array
    pending: Array
    F: Array
    fast_t: Array
    counts: Array


@dataclass(frozen=True, eq=False)
class _Kernel:
    """The constants ``_learning_kernel`` reads, as Python floats."""

    decay: float
    dt: float
    eps_ff: float
    alpha: float
    eps_fast: float
    beta: float
    mu: float
    noisy_v: bool
    single: bool
    cap: int


def _learning_kernel(k: _Kernel, s: _KernelState, inputs: tuple[Array, Array, Array, Array], *,
                     rng: np.random.Generator | None = None) -> tuple[_KernelState, int]:
    """``autoencoder_step``'s arithmetic, operation for operation (so the same numbers, bit for bit), on arrays the
    loop owns and updates in place: one learning run's step without the copies and checks of the pure step. The
    rules are the same functions (``_feedforward_row``, ``_recurrent_column``)."""
    c, x, sv, theta = inputs
    V, r, F, fast_t = s.V, s.r, s.F, s.fast_t
    drive = c @ F.T  # (1, N): the product scn.step computes
    V *= k.decay
    V += k.dt * drive[0]
    if k.noisy_v:
        V += sv
    r *= k.decay
    if k.single:  # at most one spike; its Ω column is added at the next step (Brendel et al. 2020's code)
        pending = s.pending
        if pending[0] >= 0:
            V += fast_t[pending[0]]
        excess = V - theta
        j = excess.argmax()
        if not excess[j] > 0:
            pending[0] = -1
            return s, 0
        _feedforward_row(F[j], x, k.eps_ff, k.alpha)
        _recurrent_column(fast_t[j], V, r, j, k.eps_fast, k.beta, k.mu)
        r[j] += 1.0
        pending[0] = j
        fired = 1
    else:
        fired = _sequential_kernel(k, V, r, F, fast_t, x, theta)
        if not fired:
            return s, 0
    counts = s.counts
    counts += fired
    return s, fired


def _sequential_kernel(k: _Kernel, V: Array, r: Array, F: Array, fast_t: Array, x: Array, theta: Array) -> int:
    """``_learning_kernel``'s spikes in ``"sequential"`` mode: while some V_i > θ_i, the largest fires, the rules act,
    and its (updated) Ω column is added at once. Returns the number of spikes."""
    fired = 0
    while True:
        excess = V - theta
        j = excess.argmax()
        if not excess[j] > 0:
            return fired
        fired += 1
        if fired > k.cap:
            raise _storm(k.cap, None, 0)
        _feedforward_row(F[j], x, k.eps_ff, k.alpha)
        _recurrent_column(fast_t[j], V, r, j, k.eps_fast, k.beta, k.mu)
        V += fast_t[j]
        r[j] += 1.0


def learn_autoencoder(rule: AutoencoderLearning, n_steps: int, *, seed: Seed = None,
                      weights0: SCNWeights | None = None,
                      checkpoints: int | Sequence[int] = 20,
                      checkpoint: str | os.PathLike | None = None, inputs=None) -> LearningTrace:
    """Learn F and Ω for ``n_steps`` steps of one trial, applying the rules at each spike: ``autoencoder_step``'s
    arithmetic, run by an in-place kernel that gives its numbers bit for bit (≈ 4× faster: no copies of the weights
    per spike, the noise drawn per input chunk in the order ``scn.step`` draws it).

    ``inputs``: the stream of (c_t, x_t) (a ``wrec.dynamics.Stream``, or a tuple of two (T, J) arrays); by default
    ``AutoencoderInput``: smoothed white noise c and its leaky integral x. The network starts at V = 0, r = 0.
    ``checkpoints`` is a count K of log-spaced steps (0 and ``n_steps`` included) or explicit steps in
    [0, n_steps]. The seed sets the initial weights (when ``weights0`` is None), the default input and the noise,
    from independent streams.

    ``checkpoint``: a file (``.npz``) where the whole learning state is saved (atomically, ``wrec.checkpoint``)
    at every checkpoint step; when it exists, learning resumes from it and gives the same numbers as an
    uninterrupted run. A file written by a different run (rule, n_steps, checkpoints, seed) is a ValueError.

    Shape: weights0 with F (N, J) as in ``rule``.
    """
    if not isinstance(rule, AutoencoderLearning):
        raise TypeError(f"rule must be an AutoencoderLearning, got {type(rule).__name__}")
    n_steps = _checks.integer(n_steps, "n_steps", low=1)
    ckpt = _checkpoints(checkpoints, n_steps)
    rng_init, rng_input, rng_noise = _checks.rng(seed).spawn(3)
    if weights0 is None:
        weights0 = initial_weights(rule, rng_init)
    elif not isinstance(weights0, SCNWeights):
        raise TypeError(f"weights0 must be an SCNWeights or None, got {type(weights0).__name__}")
    elif weights0.F.shape != (rule.n, rule.j):
        raise ValueError(f"weights0.F must have shape (n, j) = ({rule.n}, {rule.j}), got {weights0.F.shape}")
    stream = AutoencoderInput(rule, rng_input) if inputs is None else inputs
    identity = {"rule, n_steps, checkpoints, seed, inputs or weights0": (
        rule, n_steps, ckpt, *dynamics.stream_identity(stream), checkpoint_store.rng_state(rng_noise)["state"],
        weights0.F, weights0.fast), "checkpoint layout": "kernel state (V, r, pending, F, fast_t, counts)"}
    if not isinstance(stream, dynamics.Stream):
        if not (isinstance(stream, tuple) and len(stream) == 2):
            raise TypeError(f"inputs must be a dynamics.Stream of (c, x) chunks or a tuple (c, x) of two (T, J) "
                            f"arrays, got {type(stream).__name__}")
        stream = _Arrays(*stream)
        if len(stream.c) < n_steps or stream.c.shape[1] != rule.j:
            raise ValueError(f"inputs must hold at least n_steps = {n_steps} steps of J = {rule.j} values, "
                             f"got shape {stream.c.shape}")
    n = rule.n
    kernel = _Kernel(decay=1.0 - rule.leak * rule.dt, dt=rule.dt, eps_ff=rule.eps_ff, alpha=rule.alpha,
                     eps_fast=rule.eps_fast, beta=rule.beta, mu=rule.mu, noisy_v=rule.sigma_v > 0,
                     single=rule.mode == "single", cap=rule.spike_cap)
    state = _KernelState(np.zeros(n), np.zeros(n), np.full(1, -1, dtype=np.int64), weights0.F.copy(),
                         np.ascontiguousarray(weights0.fast.T), np.zeros(2, dtype=np.int64))
    saved = checkpoint_store.load(checkpoint)
    last = [0 if saved is None else int(saved[1].get("step", 0))]

    def log(t: int, s: _KernelState) -> tuple[dict, _KernelState]:
        fast = s.fast_t.T.copy()
        entry = {"err_fast": alignment_error(fast, s.F),
                 "rate": np.nan if t == last[0] else s.counts[0] / (n * (t - last[0]) * rule.dt),
                 "F": s.F.copy(), "fast": fast}
        last[0] = t
        s.counts[0] = 0
        return entry, s

    out = dynamics.run(_learning_kernel, kernel, state, _WithNoise(stream, rng_noise, rule), n_steps, log=log,
                       log_at=ckpt, checkpoint=checkpoint, identity=identity, what="learning run")
    final = out.state
    weights = derived_weights(weights0, F=final.F.copy(), fast=final.fast_t.T.copy())
    return LearningTrace(steps=out.steps, err_fast=out.log["err_fast"], rate=out.log["rate"], F=out.log["F"],
                         fast=out.log["fast"], weights=weights, n_spikes=int(final.counts[1]))


def _vec(a: Array, name: str, n: int) -> Array:
    a = _checks.array(a, name, ndim=1)
    if a.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {a.shape}")
    return a


def _checkpoints(checkpoints: int | Sequence[int], n_steps: int) -> Array:
    if isinstance(checkpoints, (int, np.integer)) and not isinstance(checkpoints, bool):
        k = _checks.integer(checkpoints, "checkpoints", low=2)
        return np.unique(np.concatenate([[0], np.round(np.geomspace(1, n_steps, k - 1))])).astype(np.int64)
    ck = np.asarray(checkpoints)
    if ck.ndim != 1 or ck.size == 0 or not np.issubdtype(ck.dtype, np.integer):
        raise ValueError(f"checkpoints must be an int K >= 2 or a 1-D sequence of steps, got {checkpoints!r}")
    if ck.min() < 0 or ck.max() > n_steps:
        raise ValueError(f"checkpoints must lie in [0, n_steps] = [0, {n_steps}], got range "
                         f"[{ck.min()}, {ck.max()}]")
    return np.unique(ck).astype(np.int64)


# ---- (B) supervised learning of the slow weights: a linear dynamical system ----------------------------------
#
# Bourdoukan & Denève, NeurIPS 2015. A teacher ẋ = A x + c supplies the error e = x − x̂, which is fed back as
# the current K Dᵀe and drives the local rule W ← W + η dt (Dᵀe) rᵀ (error current into i × presynaptic filtered
# rate j) towards W* = Dᵀ(A + λI)D, Boerlin et al. 2013's network for that system.

BOERLIN_OSCILLATOR = ((-4.8, -22.4), (40.0, 0.0))  # Boerlin et al. 2013's damped oscillator, 1/s


@dataclass(frozen=True)
class LDSLearning:
    """Parameters of supervised learning of the slow weights W (Bourdoukan & Denève 2015; our defaults, the
    paper's are unknown).

    Attributes:
        n: N, neurons.
        A: the target system ẋ = A x + c, a (J, J) matrix as nested tuples (1/s); J is its size.
        decoder_scale: ‖D_i‖ of the default decoder D_i = s(cos θ_i, sin θ_i), θ_i = 2πi/N (J = 2 only).
        leak: λ (1/s), leak of V and r.
        dt: time step (s); dt·λ < 0.1.
        mu: μ, quadratic cost (≥ 0), in Ω = −(DᵀD + μI) and T.
        feedback: K (≥ 0), gain of the error feedback current K Dᵀe during learning; 0 for none.
        eta: η (≥ 0), learning rate of the slow rule.
        train_time: learning time (s).
        test_time: length of the autonomous test (s), of which the first ``test_discard`` s are discarded.
        input_width: s.d. of the Gaussian smoothing of the input noise (s).
        input_amplitude: amplitude of the input c per dimension.
        input_block: the training input is redrawn in independent blocks of this length (s).
    """

    n: int = 20
    A: tuple[tuple[float, ...], ...] = BOERLIN_OSCILLATOR
    decoder_scale: float = 0.05
    leak: float = 10.0
    dt: float = 1e-4
    mu: float = 1e-6
    feedback: float = 50.0
    eta: float = 1.0
    train_time: float = 30.0
    test_time: float = 2.0
    test_discard: float = 0.2
    input_width: float = 0.02
    input_amplitude: float = 300.0
    input_block: float = 5.0

    def __post_init__(self) -> None:
        _checks.integer(self.n, "n", low=1)
        A = self.system()
        object.__setattr__(self, "A", tuple(tuple(float(v) for v in row) for row in A))
        for name in ("mu", "feedback", "eta", "test_discard", "leak"):
            object.__setattr__(self, name, _checks.real(getattr(self, name), name, low=0.0))
        for name in ("decoder_scale", "dt", "train_time", "test_time", "input_width", "input_block"):
            object.__setattr__(self, name, _checks.real(getattr(self, name), name, low=0.0, low_open=True))
        object.__setattr__(self, "input_amplitude", _checks.real(self.input_amplitude, "input_amplitude"))
        if self.test_discard >= self.test_time:
            raise ValueError(f"test_discard must be < test_time = {self.test_time} s, got {self.test_discard} s")
        for name in ("train_steps", "test_steps", "block_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} = round(time / dt) must be >= 1; lengthen the time or lower dt = {self.dt}")
        self.scn_params()  # checks dt·leak < 0.1

    @property
    def j(self) -> int:
        """J, the signal dimension."""
        return len(self.A)

    @property
    def train_steps(self) -> int:
        return round(self.train_time / self.dt)

    @property
    def test_steps(self) -> int:
        return round(self.test_time / self.dt)

    @property
    def discard_steps(self) -> int:
        return round(self.test_discard / self.dt)

    @property
    def block_steps(self) -> int:
        return round(self.input_block / self.dt)

    def system(self) -> Array:
        """A as a (J, J) float64 array."""
        try:
            A = np.array(self.A, dtype=float)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"A must be a square matrix of reals (nested tuples), got {self.A!r}: {exc}") from None
        A = _checks.array(A, "A", ndim=2)
        if A.shape[0] != A.shape[1] or A.size == 0:
            raise ValueError(f"A must be a non-empty square (J, J) matrix, got shape {A.shape}")
        return A

    def decoder(self) -> Array:
        """The default decoder D_i = s(cos θ_i, sin θ_i), θ_i = 2πi/N. Shape: (J, N) with J = 2."""
        if self.j != 2:
            raise ValueError(f"the default decoder is 2-D (cos θ, sin θ), but A is {self.j}×{self.j}; pass D")
        theta = 2 * np.pi * np.arange(self.n) / self.n
        return self.decoder_scale * np.stack([np.cos(theta), np.sin(theta)])

    def scn_params(self) -> SCNParams:
        """The simulation parameters (deterministic, sequential spiking)."""
        return SCNParams(leak=self.leak, dt=self.dt, mu=self.mu)

    def target_weights(self, D: Array | None = None) -> Array:
        """W* = Dᵀ(A + λI)D (Boerlin et al. 2013). Shape: D (J, N) → (N, N)."""
        D = self.decoder() if D is None else _lds_decoder(D, self)
        return D.T @ (self.system() + self.leak * np.eye(self.j)) @ D


@dataclass(frozen=True, eq=False)
class LDSTrace:
    """What ``learn_lds`` returns.

    Attributes:
        steps: (K,) learning steps at the checkpoints (0 = before learning).
        weight_error: (K,) ‖W − W*‖_F / ‖W*‖_F at each checkpoint.
        train_error: (K,) relative RMS error during learning since the previous checkpoint,
            sqrt(Σ‖x − x̂‖² / Σ‖x‖²) over steps (with the feedback on); NaN at step 0.
        rate: (K,) mean firing rate (Hz, over neurons) since the previous checkpoint; NaN at step 0.
        W: (K, N, N) slow weights at each checkpoint.
        target: (N, N) W*.
        weights: the learned network (F = Dᵀ, Ω, T, slow = W after the last step, D).
        n_spikes: total number of spikes during learning.
        dt: the time step (s).
        resumed_from: the step a checkpoint file resumed from (0 for a fresh run).
    """

    steps: Array
    weight_error: Array
    train_error: Array
    rate: Array
    W: Array
    target: Array
    weights: SCNWeights
    n_spikes: int
    dt: float
    resumed_from: int = 0

    @property
    def times(self) -> Array:
        """(K,) learning time (s) at the checkpoints."""
        return self.steps * self.dt


def _slow_update(W: Array, De: Array, r: Array, gain: float) -> Array:
    """W + gain (Dᵀe) rᵀ on validated arrays: the arithmetic of ``slow_update``, once."""
    return W + gain * np.outer(De, r)


def slow_update(W: Array, D: Array, e: Array, r: Array, eta: float, dt: float) -> Array:
    """W ← W + η dt (Dᵀe) rᵀ (a new array; W is not modified): the slow rule of Bourdoukan & Denève 2015, one step.

    Local: W_ij changes by the error current (Dᵀe)_i into neuron i times the presynaptic filtered rate r_j.

    Shape: W (N, N); D (J, N); e (J,) = x − D r; r (N,).
    """
    W = _checks.square(W, "W")
    n = W.shape[0]
    D = _checks.array(D, "D", ndim=2)
    if D.shape[1] != n:
        raise ValueError(f"D must have shape (J, N) with N = {n} to match W of shape {W.shape}, got {D.shape}")
    e, r = _vec(e, "e", D.shape[0]), _vec(r, "r", n)
    gain = _checks.real(eta, "eta", low=0.0) * _checks.real(dt, "dt", low=0.0, low_open=True)
    return _slow_update(W, D.T @ e, r, gain)


def effective_dynamics(W: Array, D: Array, leak: float) -> Array:
    """A_eff = (Dᵀ)⁺ W D⁺ − λI, the system a slow weight matrix implements (= A for W = Dᵀ(A + λI)D, D of
    full row rank). Shape: W (N, N); D (J, N) → (J, J)."""
    W = _checks.square(W, "W")
    D = _checks.array(D, "D", ndim=2)
    if D.shape[1] != W.shape[0]:
        raise ValueError(f"D must have shape (J, N) with N = {W.shape[0]} to match W, got {D.shape}")
    leak = _checks.real(leak, "leak", low=0.0)
    P = np.linalg.pinv(D)  # (N, J)
    return P.T @ W @ P - leak * np.eye(D.shape[0])


class LDSInput:
    """The training stream of ``learn_lds`` (a ``wrec.dynamics.Stream``): c smoothed white noise (s.d.
    ``input_width``, amplitude ``input_amplitude``) drawn in independent blocks of ``input_block`` s from ``seed``,
    and the teacher x_{t+1} = x_t + dt(A x_t + c_t) from x_0 = 0 (``tasks.linear_response``), continued across
    blocks. A chunk is (c, x) (L, J) each, x the teacher at the start of each step."""

    def __init__(self, rule: LDSLearning, seed: Seed = None) -> None:
        self.rule, self.rng = rule, _checks.rng(seed)
        self.x0 = np.zeros(rule.j)  # teacher state at the start of the next block

    def draw(self, limit: int) -> tuple[Array, Array]:
        rule = self.rule
        c = smoothed_white_noise(rule.block_steps, rule.j, width=rule.input_width / rule.dt,
                                 amplitude=rule.input_amplitude, block=None, seed=self.rng)
        xs = linear_response(c, rule.system(), rule.dt, x0=self.x0)
        X = np.concatenate([self.x0[None], xs[:-1]])  # (bs, J): the teacher at the start of each step
        self.x0 = xs[-1]
        return c, X

    def get_state(self) -> tuple[dict, dict[str, Array]]:
        return {"rng": checkpoint_store.rng_state(self.rng)}, {"x0": self.x0}

    def set_state(self, meta, arrays) -> None:
        checkpoint_store.set_rng_state(self.rng, meta["rng"])
        self.x0 = np.array(arrays["x0"])


class _Projected:
    """A stream whose chunks gain the feedforward drive c Fᵀ, one GEMM per chunk."""

    def __init__(self, stream, Ft: Array) -> None:
        self.stream, self.Ft = stream, Ft

    def draw(self, limit: int) -> tuple[Array, ...]:
        c, X = self.stream.draw(limit)
        return c, X, c @ self.Ft.T

    def get_state(self):
        return self.stream.get_state()

    def set_state(self, meta, arrays) -> None:
        self.stream.set_state(meta, arrays)


class LDSState(NamedTuple):
    """State of a ``learn_lds`` run: the network's V, r (1, N) and pending (1,); the slow weights W (N, N); the
    spike count since the last log and in total; Σ‖e‖² and Σ‖x‖² since the last log."""

    V: Array
    r: Array
    pending: Array
    W: Array
    spikes_since: int
    n_spikes: int
    sum_e2: float
    sum_x2: float


@dataclass(frozen=True, eq=False)
class LDSStepParams:
    """The params of ``lds_step``: the network (F = Dᵀ, Ω, T, D; no slow weights), its simulation constants, the
    feedback gain K, η·dt and the spike-storm cap."""

    net: SCNWeights
    constants: SCNParams
    feedback: float
    gain: float
    cap: int


_NO_NOISE = np.random.default_rng(0)  # the LDS network is deterministic: its step draws nothing


def lds_step(params: LDSStepParams, state: LDSState, inputs: tuple[Array, Array, Array], *,
             rng: np.random.Generator | None = None) -> tuple[LDSState, int]:
    """One step of supervised slow-weight learning, explicit Euler in (V, r, W), all at the start of the step:

        e_t = x_t − D r_t;  drive Dᵀ(c_t + K e_t) + W_t r_t into the SCN;  W_{t+1} = ``slow_update``(W_t, D, e_t, r_t).

    ``inputs`` = (c_t, x_t, F c_t). Returns the new state and the number of spikes."""
    _, x, drive_ff = inputs
    net, r0 = params.net, state.r[0]
    e = x - net.D @ r0
    De = net.F @ e
    drive = drive_ff + params.feedback * De + state.W @ r0
    V, r, pending, spikes, _ = _step(params.constants, net, state.V, state.r, state.pending, drive[None],
                                     _NO_NOISE, None, 0, params.cap)
    W = _slow_update(state.W, De, r0, params.gain)
    fired = sum(k.size for _, k in spikes)
    return LDSState(V, r, pending, W, state.spikes_since + fired, state.n_spikes + fired,
                    state.sum_e2 + e @ e, state.sum_x2 + x @ x), fired


def learn_lds(rule: LDSLearning, *, seed: Seed = None, n_steps: int | None = None, D: Array | None = None,
              fast: Array | None = None, W0: Array | None = None, checkpoints: int | Sequence[int] = 61,
              checkpoint: str | os.PathLike | None = None, inputs=None) -> LDSTrace:
    """Learn the slow weights W of an SCN so that it runs ẋ = A x + c (Bourdoukan & Denève 2015), for ``n_steps``
    steps.

    ``inputs``: the training stream of (c_t, x_t) (a ``wrec.dynamics.Stream`` such as ``LDSInput``, or a tuple of
    two (T, J) arrays); by default ``LDSInput(rule, seed)``: c smoothed white noise (s.d. ``input_width``,
    amplitude ``input_amplitude``, redrawn every ``input_block``), teacher x_{t+1} = x_t + dt(A x_t + c_t) from
    x_0 = 0. Network: F = Dᵀ, Ω = −(DᵀD + μI) (or ``fast``), T_i = (‖D_i‖² + μ)/2, deterministic sequential
    spiking, from V = 0, r = 0. Each step is ``lds_step`` (explicit Euler in (V, r, W)):

        e_t = x_t − D r_t;  drive Dᵀ(c_t + K e_t) + W_t r_t into ``scn.step``;  W_{t+1} = W_t + η dt (Dᵀe_t) r_tᵀ.

    The rule is applied at every step (no accumulation over steps: with N = 20 the outer product is a small
    part of a step's cost). ``checkpoints`` is a count K of evenly spaced steps (0 and ``n_steps`` included) or
    explicit steps in [0, n_steps]; at each, the weight error and W are recorded. ``checkpoint``: a file
    (``.npz``) where the whole state is saved (atomically, ``wrec.checkpoint``) at every checkpoint step; when
    it exists, learning resumes from it and gives the same numbers, bit for bit, as an uninterrupted run. A
    file from a different run (rule, n_steps, checkpoints, seed, D, fast or W0) is a ValueError. The input is
    drawn block by block, so a shorter run sees a prefix of a longer run's input.

    Shape: D (J, N) (default ``rule.decoder()``); fast, W0 (N, N) (default W0 = 0).

    Raises:
        RuntimeError: on a spike storm (``scn.step``).
    """
    if not isinstance(rule, LDSLearning):
        raise TypeError(f"rule must be an LDSLearning, got {type(rule).__name__}")
    n_steps = rule.train_steps if n_steps is None else _checks.integer(n_steps, "n_steps", low=1)
    net, target = _lds_network(rule, D, fast)
    D, n = net.D, net.n
    W = np.zeros((n, n)) if W0 is None else _lds_square(W0, "W0", n).copy()
    if isinstance(checkpoints, (int, np.integer)) and not isinstance(checkpoints, bool):
        count = _checks.integer(checkpoints, "checkpoints", low=2)
        ckpt = np.unique(np.round(np.linspace(0, n_steps, count))).astype(np.int64)
    else:
        ckpt = _checkpoints(checkpoints, n_steps)
    stream = LDSInput(rule, seed) if inputs is None else inputs
    params = LDSStepParams(net, rule.scn_params(), rule.feedback, rule.eta * rule.dt, rule.scn_params().spike_cap(n))
    w_star_norm = np.linalg.norm(target)
    state = LDSState(np.zeros((1, n)), np.zeros((1, n)), np.full(1, -1, dtype=np.int64), W, 0, 0, 0.0, 0.0)
    last = [0]

    def log(t: int, s: LDSState) -> tuple[dict, LDSState]:
        since = t - last[0]
        entry = {"weight_error": np.linalg.norm(s.W - target) / w_star_norm,
                 "train_error": np.sqrt(s.sum_e2 / s.sum_x2) if since > 0 and s.sum_x2 > 0 else np.nan,
                 "rate": s.spikes_since / (n * since * rule.dt) if since > 0 else np.nan, "W": s.W.copy()}
        last[0] = t
        return entry, s._replace(spikes_since=0, sum_e2=0.0, sum_x2=0.0)

    source = _Projected(stream, net.F) if isinstance(stream, dynamics.Stream) else (*stream, stream[0] @ net.F.T)
    identity = {"rule, n_steps, checkpoints, seed, D, fast or W0": (
        rule, n_steps, ckpt, *dynamics.stream_identity(stream), D, net.fast, W)}
    saved = checkpoint_store.load(checkpoint)
    if saved is not None:
        last[0] = int(saved[1].get("step", 0))
    out = dynamics.run(lds_step, params, state, source, n_steps, log=log, log_at=ckpt, checkpoint=checkpoint,
                       identity=identity, what="LDS learning run")
    state, log_ = out.state, out.log
    return LDSTrace(steps=out.steps, weight_error=log_["weight_error"], train_error=log_["train_error"],
                    rate=log_["rate"], W=log_["W"], target=target, weights=replace(net, slow=state.W.copy()),
                    n_spikes=state.n_spikes, dt=rule.dt, resumed_from=out.resumed_from)


@dataclass(frozen=True, eq=False)
class LDSTest:
    """What ``autonomous_test`` returns: times (T,) in s; x, xhat (T, J) (teacher and readout, after each step);
    error, the relative RMSE after the first ``discard`` steps."""

    times: Array
    x: Array
    xhat: Array
    error: float
    discard: int


def autonomous_test(rule: LDSLearning, W: Array, *, seed: Seed = None, D: Array | None = None,
                    fast: Array | None = None) -> LDSTest:
    """Run the network with slow weights W on its own (K = 0) against the teacher, on a fresh input.

    Input: ``rule.test_time`` s of smoothed white noise drawn as one long convolution (not in blocks); teacher
    ẋ = A x + c (Euler, same dt) and network (F = Dᵀ, Ω, T as in ``learn_lds``, slow W) from rest. The error
    is sqrt(Σ‖x − x̂‖² / Σ‖x‖²) after discarding the first ``rule.test_discard`` s.

    Shape: W (N, N); D (J, N); fast (N, N).

    Raises:
        RuntimeError: on a spike storm (an unstable W can drive one).
    """
    if not isinstance(rule, LDSLearning):
        raise TypeError(f"rule must be an LDSLearning, got {type(rule).__name__}")
    net, _ = _lds_network(rule, D, fast)
    W = _lds_square(W, "W", net.n)
    c = smoothed_white_noise(rule.test_steps, net.j, width=rule.input_width / rule.dt,
                             amplitude=rule.input_amplitude, block=None, seed=_checks.rng(seed))
    x = linear_response(c, rule.system(), rule.dt)
    xhat = simulate(replace(net, slow=W), c, rule.scn_params(), record=("xhat",)).recorded("xhat")
    k = rule.discard_steps
    error = float(np.sqrt(np.sum((x[k:] - xhat[k:]) ** 2) / np.sum(x[k:] ** 2)))
    return LDSTest(times=np.arange(1, rule.test_steps + 1) * rule.dt, x=x, xhat=xhat, error=error, discard=k)


def autonomous_error(rule: LDSLearning, W: Array, *, seed: Seed = None, D: Array | None = None,
                     fast: Array | None = None) -> float:
    """The relative RMSE of ``autonomous_test``: how well slow weights W run ẋ = A x + c without feedback."""
    return autonomous_test(rule, W, seed=seed, D=D, fast=fast).error


def _lds_decoder(D: Array, rule: LDSLearning) -> Array:
    D = _checks.array(D, "D", ndim=2)
    if D.shape != (rule.j, rule.n):
        raise ValueError(f"D must have shape (J, N) = ({rule.j}, {rule.n}) (J from rule.A, N = rule.n), "
                         f"got {D.shape}")
    return D


def _lds_square(M: Array, name: str, n: int) -> Array:
    M = _checks.array(M, name, ndim=2)
    if M.shape != (n, n):
        raise ValueError(f"{name} must have shape (N, N) = ({n}, {n}), got {M.shape}")
    return M


def _lds_network(rule: LDSLearning, D: Array | None, fast: Array | None) -> tuple[SCNWeights, Array]:
    """The network of ``learn_lds`` without slow weights (F = Dᵀ, Ω, T, D) and the target W*."""
    D = rule.decoder() if D is None else _lds_decoder(D, rule)
    net = optimal_weights(D, rule.mu, leak=rule.leak)
    if fast is not None:
        fast = _lds_square(fast, "fast", rule.n)
        if np.any(np.diag(fast) >= 0):
            raise ValueError("fast (Ω) must have a negative diagonal (the resets), got "
                             f"max diag = {np.max(np.diag(fast)):g}")
        net = replace(net, fast=fast)
    return net, rule.target_weights(D)
