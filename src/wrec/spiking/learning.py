"""Local learning rules for spike coding networks (spec-coding §2).

Unsupervised learning of the feedforward weights F and the fast recurrent weights Ω of an autoencoder SCN
(Brendel, Bourdoukan, Vertechi, Machens, Denève, PLoS CB 2020; Vertechi et al., NeurIPS 2014). At a spike
of neuron k, with V and r taken just before that spike and x the current filtered input:

    Ω[:, k] ← Ω[:, k] − ε_Ω [β(V + μ r) + Ω[:, k]],   then  Ω_kk ← Ω_kk − ε_Ω μ      (voltage balance)
    F[k, :] ← F[k, :] + ε_F (α x − F[k, :])                                          (feedforward)

Their fixed point is Ω → −s F Fᵀ − μI for a scale s > 0, which ``metrics.alignment_error`` measures.
The rules are pure functions of the weights; ``learn_autoencoder`` is the thin loop that runs them through
``scn.step``'s spike hook.

Shapes: N neurons, J signal dimensions, K checkpoints.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from wrec import _checks
from wrec import checkpoint as checkpoint_store
from wrec._checks import Seed
from wrec.spiking.metrics import alignment_error
from wrec.spiking.scn import MODES, SCNParams, SCNWeights, initial_state, step
from wrec.tasks.signals import leaky_integral, smoothed_white_noise

Array = np.ndarray
PRESETS = ("brendel2020_fig2", "brendel2020_si")
_INPUT_CHUNK_BLOCKS = 50  # input blocks generated at once (bounded memory for long runs)


@dataclass(frozen=True)
class AutoencoderLearning:
    """Parameters of unsupervised autoencoder learning (spec §2); defaults are preset ``"brendel2020_fig2"``.

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
    out = fast.copy()
    out[:, k] -= eps * (beta * (V + mu * r) + fast[:, k])
    out[k, k] -= eps * mu
    return out


def feedforward_update(F: Array, x: Array, k: int, eps: float, alpha: float) -> Array:
    """F[k, :] ← F[k, :] + ε(αx − F[k, :]) (a new array; F is not modified).

    Shape: F (N, J); x (J,), the filtered input at the spike of neuron k.
    """
    F = _checks.array(F, "F", ndim=2)
    x = _vec(x, "x", F.shape[1])
    k = _checks.integer(k, "k", low=0, high=F.shape[0] - 1)
    eps = _checks.real(eps, "eps", low=0.0)
    alpha = _checks.real(alpha, "alpha")
    out = F.copy()
    out[k] += eps * (alpha * x - F[k])
    return out


def autoencoder_update(weights: SCNWeights, k: int, V: Array, r: Array, x: Array,
                       rule: AutoencoderLearning) -> SCNWeights:
    """Both rules of spec §2 at a spike of neuron k: new weights with Ω column k and F row k updated.

    Each rule uses the weights from before the spike. Shape: V, r (N,); x (J,).
    """
    if not isinstance(weights, SCNWeights):
        raise TypeError(f"weights must be an SCNWeights, got {type(weights).__name__}")
    if not isinstance(rule, AutoencoderLearning):
        raise TypeError(f"rule must be an AutoencoderLearning, got {type(rule).__name__}")
    fast = recurrent_update(weights.fast, V, r, k, rule.eps_fast, rule.beta, rule.mu)
    F = feedforward_update(weights.F, x, k, rule.eps_ff, rule.alpha)
    return replace(weights, F=F, fast=fast)


def initial_weights(rule: AutoencoderLearning, seed: Seed = None) -> SCNWeights:
    """F rows random directions of norm ``init_ff_norm``; Ω₀ = −a·U(0, 1) − b I; T = ``threshold``."""
    if not isinstance(rule, AutoencoderLearning):
        raise TypeError(f"rule must be an AutoencoderLearning, got {type(rule).__name__}")
    rng = _checks.rng(seed)
    F = rng.standard_normal((rule.n, rule.j))
    F *= rule.init_ff_norm / np.linalg.norm(F, axis=1, keepdims=True)
    fast = -rule.init_fast_random * rng.random((rule.n, rule.n)) - rule.init_fast_diag * np.eye(rule.n)
    return SCNWeights(F=F, fast=fast, T=np.full(rule.n, rule.threshold))


def learn_autoencoder(rule: AutoencoderLearning, n_steps: int, *, seed: Seed = None,
                      weights0: SCNWeights | None = None,
                      checkpoints: int | Sequence[int] = 20,
                      checkpoint: str | os.PathLike | None = None) -> LearningTrace:
    """Learn F and Ω on spec §2's input for ``n_steps`` steps of one trial, applying the rules at each spike.

    Input: c = smoothed white noise (``tasks.smoothed_white_noise``; s.d. ``input_width`` steps, amplitude
    ``input_amplitude``, redrawn every ``input_block`` steps); x its leaky integral, x_{t+1} = (1 − λdt)x_t +
    dt c_t from x_0 = 0. The network starts at V = 0, r = 0. ``checkpoints`` is a count K of log-spaced steps
    (0 and ``n_steps`` included) or explicit steps in [0, n_steps]. The seed sets the initial weights (when
    ``weights0`` is None), the input and the noise, from independent streams.

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
    params = rule.scn_params()
    # What makes a checkpoint file ours: the run's parameters and the first draws of its streams.
    run_id = repr((rule, n_steps, ckpt.tolist(), checkpoint_store.rng_state(rng_input),
                   checkpoint_store.rng_state(rng_noise), weights0.F.tolist()))
    w = weights0
    state = initial_state(w)
    x_chunk0 = np.zeros(rule.j)  # x just before the current input chunk
    trace: dict[str, list] = {"steps": [], "err_fast": [], "rate": [], "F": [], "fast": []}
    n_spikes = spikes_since = last = t0 = chunk_start = 0
    chunk = rule.input_block * _INPUT_CHUNK_BLOCKS
    input_state = checkpoint_store.rng_state(rng_input)  # state before the current chunk was drawn

    saved = checkpoint_store.load(checkpoint)
    if saved is not None:
        arrays, meta = saved
        if meta.get("run") != run_id:
            raise ValueError(f"checkpoint {checkpoint} was written by a different learning run (rule, n_steps, "
                             "checkpoints, seed or weights0 differ); delete it or pass another path")
        w = replace(w, F=arrays["F_now"], fast=arrays["fast_now"])
        state = type(state)(arrays["V"], arrays["r"], arrays["pending"][()])
        x_chunk0 = arrays["x_chunk0"]
        trace = {k: list(arrays[k]) for k in trace}
        n_spikes, t0, chunk_start = meta["n_spikes"], meta["step"], meta["chunk_start"]
        last = t0
        input_state = meta["input_rng"]
        checkpoint_store.set_rng_state(rng_input, input_state)
        checkpoint_store.set_rng_state(rng_noise, meta["noise_rng"])
    x_now = np.zeros(rule.j)

    def on_spike(_b: int, k: int, V: Array, r: Array) -> SCNWeights:
        nonlocal w
        w = autoencoder_update(w, k, V, r, x_now, rule)
        return w

    def record(t: int) -> None:
        nonlocal spikes_since, last
        trace["steps"].append(t)
        trace["err_fast"].append(alignment_error(w.fast, w.F))
        trace["rate"].append(np.nan if t == last else spikes_since / (rule.n * (t - last) * rule.dt))
        trace["F"].append(w.F.copy())
        trace["fast"].append(w.fast.copy())
        spikes_since, last = 0, t
        if checkpoint is not None:
            checkpoint_store.save(
                checkpoint,
                {"F_now": w.F, "fast_now": w.fast, "V": state.V, "r": state.r, "pending": state.pending,
                 "x_chunk0": x_chunk0, **{k: np.asarray(v) for k, v in trace.items()}},
                {"run": run_id, "step": t, "chunk_start": start, "n_spikes": n_spikes, "input_rng": input_state,
                 "noise_rng": checkpoint_store.rng_state(rng_noise)})

    next_ck = int(np.searchsorted(ckpt, t0, side="right"))
    start = chunk_start
    if saved is None and ckpt[0] == 0:
        record(0)
    for start in range(chunk_start, n_steps, chunk):
        length = min(chunk, n_steps - start)
        input_state = checkpoint_store.rng_state(rng_input)
        c = smoothed_white_noise(length, rule.j, width=rule.input_width, amplitude=rule.input_amplitude,
                                 block=rule.input_block, seed=rng_input)
        x = leaky_integral(c, rule.leak, rule.dt, x0=x_chunk0)  # x[t]: after c[t], seen by the rule at step t
        for i in range(max(t0 - start, 0), length):
            x_now = x[i]
            state, fired = step(params, w, state, c[i], rng_noise, on_spike)
            spikes_since += fired.size
            n_spikes += fired.size
            if next_ck < ckpt.size and start + i + 1 == ckpt[next_ck]:
                record(start + i + 1)
                next_ck += 1
        x_chunk0 = x[-1]
    return LearningTrace(steps=np.asarray(trace["steps"], dtype=np.int64), err_fast=np.asarray(trace["err_fast"]),
                         rate=np.asarray(trace["rate"]), F=np.stack(trace["F"]), fast=np.stack(trace["fast"]),
                         weights=w, n_spikes=n_spikes)


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
