"""Spike coding networks (SCNs): frozen weight and parameter records, one pure step, and a batched loop.

Model (Boerlin, Machens, Denève, PLoS CB 2013). N neurons code a J-dimensional signal x with
ẋ = −λx + c. Spikes o are filtered as ṙ = −λr + o (a spike adds exactly 1 to r_k), the readout is x̂ = D r,
and the membrane potentials obey

    V̇ = −λV + F c + W r + Ω o + noise.

A neuron spikes when that lowers the coding loss ℓ = ‖x − x̂‖² + μ‖r‖² + ν‖r‖₁, i.e. when V_i > T_i, with
V_i = D_iᵀ(x − x̂) − μ r_i and T_i = (‖D_i‖² + μ + ν)/2. Boerlin 2013 writes the costs as μλ² and νλ; here
μ and ν are the coefficients of the loss above (μ_here = μ_Boerlin λ², ν_here = ν_Boerlin λ).

Shapes: B trials (optional leading axis), T time steps, N neurons, J signal dimensions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import NamedTuple

import numpy as np

from wrec import _checks, dynamics
from wrec._checks import Seed

Array = np.ndarray
MODES = ("sequential", "single")
RECORDS = ("spikes", "r", "V", "xhat")
_CHUNK_VALUES = 2**17  # feedforward drive values (1 MiB) computed in one product

# A learning hook: on_spike(b, k, V, r) with trial b, neuron k and copies of that trial's (N,) V and r just
# before the spike; it may return new SCNWeights, which the rest of the step then uses.
OnSpike = Callable[[int, int, Array, Array], "SCNWeights | None"]


@dataclass(frozen=True, eq=False)
class SCNWeights:
    """The weights of a spike coding network (float64, validated on construction).

    Attributes:
        F: feedforward weights, (N, J); the drive is F c.
        fast: fast recurrent weights Ω, (N, N); column k is added to V at a spike of neuron k (Ω_kk is the reset).
        T: thresholds, (N,), all > 0.
        slow: slow recurrent weights W, (N, N), acting on the filtered spike trains r; None for W = 0.
        D: decoder, (J, N), x̂ = D r; None when the readout is not needed.
    """

    F: Array
    fast: Array
    T: Array
    slow: Array | None = None
    D: Array | None = None

    def __post_init__(self) -> None:
        F = _checks.array(self.F, "F", ndim=2)
        n, j = F.shape
        if n == 0 or j == 0:
            raise ValueError(f"F must be a non-empty (N, J) matrix, got shape {F.shape}")
        fast = _checks.array(self.fast, "fast", ndim=2)
        if fast.shape != (n, n):
            raise ValueError(f"fast (Ω) must have shape (N, N) = ({n}, {n}) to match F of shape {F.shape}, "
                             f"got {fast.shape}")
        T = _checks.array(self.T, "T", ndim=1)
        if T.shape != (n,):
            raise ValueError(f"T must have shape (N,) = ({n},) to match F of shape {F.shape}, got {T.shape}")
        if np.any(T <= 0):
            bad = np.flatnonzero(T <= 0)
            raise ValueError(f"T must be > 0 (thresholds), got T <= 0 for neurons {bad[:10].tolist()}")
        slow = None
        if self.slow is not None:
            slow = _checks.array(self.slow, "slow", ndim=2)
            if slow.shape != (n, n):
                raise ValueError(f"slow (W) must have shape (N, N) = ({n}, {n}) to match F, got {slow.shape}")
        D = None
        if self.D is not None:
            D = _checks.array(self.D, "D", ndim=2)
            if D.shape != (j, n):
                raise ValueError(f"D must have shape (J, N) = ({j}, {n}) to match F of shape {F.shape}, "
                                 f"got {D.shape}")
        for name, value in (("F", F), ("fast", fast), ("T", T), ("slow", slow), ("D", D)):
            object.__setattr__(self, name, value)

    @property
    def n(self) -> int:
        """N, the number of neurons."""
        return self.F.shape[0]

    @property
    def j(self) -> int:
        """J, the signal dimension."""
        return self.F.shape[1]


def derived_weights(weights: SCNWeights, **arrays: Array) -> SCNWeights:
    """``weights`` with some arrays replaced by ones of the same shapes computed from it (a learning rule's
    update), without validating them again: the per-spike path of learning."""
    if not arrays.keys() <= _WEIGHT_FIELDS:
        raise TypeError(f"derived_weights replaces only {sorted(_WEIGHT_FIELDS)}, got {sorted(arrays)}")
    new = object.__new__(SCNWeights)
    fields = new.__dict__  # a frozen dataclass's fields live in its __dict__ (SCNWeights caches nothing there)
    fields.update(weights.__dict__)
    fields.update(arrays)
    return new


_WEIGHT_FIELDS = frozenset(("F", "fast", "T", "slow", "D"))


@dataclass(frozen=True)
class SCNParams:
    """Simulation parameters of a spike coding network.

    Attributes:
        leak: λ (1/s), the leak of V, r and x.
        dt: time step (s); dt·λ must be < 0.1 for the Euler step to be accurate.
        mu, nu: quadratic and linear costs of the loss (documentation for the constructors and learning
            rules; the step itself only sees them through the weights and thresholds).
        sigma_v: s.d. of the Gaussian voltage noise added per step (not per √s). Noise breaks the consistency
            V = Dᵀ(x − x̂) − μr; in ``"sequential"`` mode with μ = 0, two neurons with near-opposite decoders can
            then fire each other many times in one step (a storm): use μ > 0 or ``"single"`` mode.
        sigma_t: s.d. of the Gaussian threshold noise, drawn per neuron per step, inside the argmax. In
            ``"sequential"`` mode σ_T comparable to T can make the constraints infeasible (opposite neurons
            with negative effective thresholds fire each other): a spike storm.
        mode: ``"sequential"`` (exact greedy rule: spike while any V_i > T_i) or ``"single"`` (at most one
            spike per step, its Ω column added at the next step, as in Brendel et al. 2020's code).
        max_spikes_per_step: spike-storm guard per trial and step; None for max(10·N, 1000).
    """

    leak: float = 10.0
    dt: float = 1e-4
    mu: float = 0.0
    nu: float = 0.0
    sigma_v: float = 0.0
    sigma_t: float = 0.0
    mode: str = "sequential"
    max_spikes_per_step: int | None = None

    def __post_init__(self) -> None:
        leak = _checks.real(self.leak, "leak", low=0.0)
        dt = _checks.real(self.dt, "dt", low=0.0, low_open=True)
        if dt * leak >= 0.1:
            raise ValueError(f"dt·leak must be < 0.1 for an accurate Euler step, got dt={dt}, leak={leak} "
                             f"(dt·leak = {dt * leak:g}); lower dt")
        for name in ("mu", "nu", "sigma_v", "sigma_t"):
            object.__setattr__(self, name, _checks.real(getattr(self, name), name, low=0.0))
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.max_spikes_per_step is not None:
            _checks.integer(self.max_spikes_per_step, "max_spikes_per_step", low=1)
        object.__setattr__(self, "leak", leak)
        object.__setattr__(self, "dt", dt)

    def spike_cap(self, n: int) -> int:
        """The spike-storm guard for N = n neurons."""
        return max(10 * n, 1000) if self.max_spikes_per_step is None else self.max_spikes_per_step


class SCNState(NamedTuple):
    """State at the end of a step: V (B, N) or (N,); r (B, N) or (N,); pending (B,) or () int, the neuron
    whose Ω column is still to be added (``"single"`` mode), −1 for none."""

    V: Array
    r: Array
    pending: Array


@dataclass(frozen=True, eq=False)
class SCNRun:
    """What ``simulate`` returns.

    Spikes are index arrays in firing order: spike s is neuron ``neurons[s]`` at step ``steps[s]`` (in trial
    ``trials[s]`` when batched; None otherwise). Traces are the end-of-step values, aligned with c: index t is
    the state after c[t] was applied. Shapes (T, ·) or (B, T, ·); None when not recorded.
    """

    steps: Array | None
    neurons: Array | None
    trials: Array | None
    r: Array | None
    V: Array | None
    xhat: Array | None
    state: SCNState
    n_steps: int
    n_neurons: int
    dt: float
    batch: int | None = field(default=None)

    def recorded(self, name: str) -> Array:
        """The record ``name`` ("r", "V", "xhat", or "steps", "neurons", "trials" of the spikes); ValueError when
        the run did not record it (or, for "trials", was not batched)."""
        if name not in ("r", "V", "xhat", "steps", "neurons", "trials"):
            raise ValueError(f"name must be one of r, V, xhat, steps, neurons, trials, got {name!r}")
        value = getattr(self, name)
        if value is None:
            what = "spikes" if name in ("steps", "neurons", "trials") else name
            batch = " (trials are recorded in a batched run only)" if name == "trials" else ""
            raise ValueError(f"the run did not record {name!r}; pass record=(..., {what!r}){batch}")
        return value

    def spike_counts(self) -> Array:
        """Spikes per neuron: (N,) or (B, N)."""
        neurons = self.recorded("neurons")
        if self.batch is None:
            return np.bincount(neurons, minlength=self.n_neurons)
        flat = self.recorded("trials") * self.n_neurons + neurons
        return np.bincount(flat, minlength=self.batch * self.n_neurons).reshape(self.batch, self.n_neurons)


def optimal_weights(D: Array, mu: float = 0.0, nu: float = 0.0, A: Array | None = None,
                    leak: float = 10.0) -> SCNWeights:
    """The optimal SCN for decoder D (Boerlin et al. 2013).

    F = Dᵀ, Ω = −(DᵀD + μI), T_i = (‖D_i‖² + μ + ν)/2, and W = Dᵀ(A + λI)D for a target linear system
    ẋ = A x + c (W = None, i.e. 0, for the autoencoder, A = None).

    Shape: D (J, N); A (J, J).
    """
    D = _checks.array(D, "D", ndim=2)
    if D.size == 0:
        raise ValueError(f"D must be a non-empty (J, N) matrix, got shape {D.shape}")
    mu = _checks.real(mu, "mu", low=0.0)
    nu = _checks.real(nu, "nu", low=0.0)
    leak = _checks.real(leak, "leak", low=0.0)
    j, n = D.shape
    norms = np.einsum("jn,jn->n", D, D)
    if np.any(norms + mu + nu <= 0):
        bad = np.flatnonzero(norms + mu + nu <= 0)
        raise ValueError(f"D has zero columns {bad[:10].tolist()} with mu = nu = 0: their thresholds would be 0")
    fast = -(D.T @ D + mu * np.eye(n))
    slow = None
    if A is not None:
        A = _checks.array(A, "A", ndim=2)
        if A.shape != (j, j):
            raise ValueError(f"A must have shape (J, J) = ({j}, {j}) to match D of shape {D.shape}, got {A.shape}")
        slow = D.T @ (A + leak * np.eye(j)) @ D
    return SCNWeights(F=D.T.copy(), fast=fast, T=(norms + mu + nu) / 2, slow=slow, D=D)


def input_current(x: Array, leak: float, dt: float) -> Array:
    """c_t = (x_{t+1} − x_t)/dt + λ x_t, so that the Euler step x_{t+1} = (1 − λdt) x_t + dt c_t gives back x.

    Shape: x (T + 1, J) or (B, T + 1, J) → c (T, J) or (B, T, J). Run ``simulate(..., x0=x[..., 0, :])``.
    """
    x = _checks.array(x, "x", ndim=(2, 3))
    if x.shape[-2] < 2:
        raise ValueError(f"x needs at least 2 time steps on axis -2, got shape {x.shape}")
    leak = _checks.real(leak, "leak", low=0.0)
    dt = _checks.real(dt, "dt", low=0.0, low_open=True)
    return np.diff(x, axis=-2) / dt + leak * x[..., :-1, :]


def coding_loss(x: Array, r: Array, D: Array, mu: float = 0.0, nu: float = 0.0) -> Array:
    """ℓ = ‖x − D r‖² + μ‖r‖² + ν‖r‖₁ over the last axis. Shape: x (..., J), r (..., N), D (J, N) → (...)."""
    x, r, D = np.asarray(x, float), np.asarray(r, float), np.asarray(D, float)
    e = x - r @ D.T
    return np.sum(e * e, -1) + mu * np.sum(r * r, -1) + nu * np.sum(np.abs(r), -1)


_STORM = ("spike storm: more than {cap} spikes in one step ({where}). Likely causes: an infeasible "
          "network (no readout satisfies all threshold constraints for this input; see wrec.spiking.qp.is_feasible), "
          "non-negative resets (diag of fast weights Ω must be < 0), or an input too strong for the spike size. If "
          "the input legitimately needs that many spikes, raise max_spikes_per_step.")


def _noise(rng: np.random.Generator | None) -> np.random.Generator:
    if rng is None:
        raise ValueError("a network with noise (sigma_v or sigma_t > 0) needs a generator: pass rng")
    return rng


def _step(params: SCNParams, w: SCNWeights, V: Array, r: Array, pending: Array, drive: Array,
          rng: np.random.Generator | None, on_spike: OnSpike | None, t: int | None, cap: int,
          fast_t: Array | None = None) -> tuple[Array, Array, Array, list[tuple[Array, Array]], SCNWeights]:
    """One step on (B, N) arrays, which it never modifies in place (V, r and pending are new arrays). Returns V, r,
    pending, spikes, weights. ``rng`` is drawn from only with noise; ``t`` names the step in a storm's message.

    ``fast_t``: a C-contiguous copy of Ω's transpose, so that the columns of spiking neurons are contiguous rows
    (only a loop whose weights do not change may pass it: never together with a hook, which may change them)."""
    lam_dt = params.leak * params.dt
    # 1. sub-threshold Euler step, with r_t (W r) and the pending single-mode reset
    # V + dt(−λV + drive + W r), written as (1 − λdt)V + dt(drive + W r): fewer passes over (B, N) arrays
    V = (1.0 - lam_dt) * V
    V += params.dt * (drive if w.slow is None else drive + r @ w.slow.T)
    if params.sigma_v > 0:
        V += params.sigma_v * _noise(rng).standard_normal(V.shape)
    # 2. decay of r before the spikes, so that (V, r) at the end of a step satisfy V = Dᵀ(x − Dr) − μr exactly
    r = (1.0 - lam_dt) * r
    noise_t = 0.0 if params.sigma_t == 0 else params.sigma_t * _noise(rng).standard_normal(V.shape)
    theta = w.T if params.sigma_t == 0 else w.T + noise_t  # (N,) or (B, N)
    # 3. the spikes (with array methods rather than np.argmax, np.flatnonzero, np.full_like: the same results without
    # their Python wrappers, which cost as much as the arithmetic of a small network)
    if params.mode == "single":
        return _single_spike(w, V, r, pending, theta, on_spike, fast_t)
    return _sequential_spikes(w, V, r, pending, theta, noise_t, on_spike, t, cap, fast_t)


def _single_spike(w: SCNWeights, V: Array, r: Array, pending: Array, theta: Array, on_spike: OnSpike | None,
                  fast_t: Array | None) -> tuple[Array, Array, Array, list[tuple[Array, Array]], SCNWeights]:
    """``_step``'s spikes in ``"single"`` mode (Brendel et al. 2020): the pending Ω columns are added, then every
    trial with some V_i > θ_i fires its largest excess, whose Ω column is left pending for the next step."""
    rows = (pending >= 0).nonzero()[0]
    if rows.size:
        V[rows] += w.fast[:, pending[rows]].T if fast_t is None else fast_t[pending[rows]]
    pending = np.empty_like(pending)
    pending.fill(-1)
    excess = V - theta
    k = excess.argmax(axis=1)
    rows = (excess[np.arange(len(k)), k] > 0).nonzero()[0]
    k = k[rows]
    if not rows.size:
        return V, r, pending, [], w
    if on_spike is not None:
        for b, kk in zip(rows.tolist(), k.tolist(), strict=True):
            new = on_spike(b, kk, V[b].copy(), r[b].copy())
            w = w if new is None else new
    r[rows, k] += 1.0
    pending[rows] = k
    return V, r, pending, [(rows, k)], w


def _sequential_spikes(w: SCNWeights, V: Array, r: Array, pending: Array, theta: Array, noise_t: Array | float,
                       on_spike: OnSpike | None, t: int | None, cap: int, fast_t: Array | None,
                       ) -> tuple[Array, Array, Array, list[tuple[Array, Array]], SCNWeights]:
    """``_step``'s spikes in ``"sequential"`` mode, the greedy rule: every trial with some V_i > θ_i fires its
    largest excess, until none is left (more than ``cap`` rounds is a spike storm)."""
    spikes: list[tuple[Array, Array]] = []
    rows = np.arange(V.shape[0])
    count = 0
    while rows.size:
        full = rows.size == V.shape[0]  # every trial still in play: no gather needed
        excess = (V - theta) if full else V[rows] - (theta if theta.ndim == 1 else theta[rows])
        k = excess.argmax(axis=1)
        fire = excess[np.arange(rows.size), k] > 0
        rows, k = rows[fire], k[fire]
        if not rows.size:
            break
        count += 1
        if count > cap:
            raise _storm(cap, t, int(rows[0]))
        if on_spike is None:
            V[rows] += w.fast[:, k].T if fast_t is None else fast_t[k]  # (no hook: the weights are fixed)
            r[rows, k] += 1.0
        else:
            w = _hooked_spikes(w, V, r, rows, k, on_spike)
            theta = w.T + noise_t
        spikes.append((rows, k))
    return V, r, pending, spikes, w


def _hooked_spikes(w: SCNWeights, V: Array, r: Array, rows: Array, k: Array, on_spike: OnSpike) -> SCNWeights:
    """One round of sequential spikes with a learning hook, trial by trial in the order of ``rows``: each spike's Ω
    column is the one of the weights the hook returned for it. Updates V and r in place; returns the weights."""
    for b, kk in zip(rows.tolist(), k.tolist(), strict=True):
        new = on_spike(b, kk, V[b].copy(), r[b].copy())
        w = w if new is None else new
        V[b] += w.fast[:, kk]
        r[b, kk] += 1.0
    return w


def _storm(cap: int, t: int | None, trial: int) -> RuntimeError:
    where = f"trial {trial}" if t is None else f"step {t}, trial {trial}"
    return RuntimeError(_STORM.format(cap=cap, where=where))


@dataclass(frozen=True, eq=False)
class SCN:
    """A spike coding network, the params of ``step``: its ``weights`` and its simulation ``constants``."""

    weights: SCNWeights
    constants: SCNParams = field(default_factory=SCNParams)

    def __post_init__(self) -> None:
        if not isinstance(self.weights, SCNWeights):
            raise TypeError(f"weights must be an SCNWeights, got {type(self.weights).__name__}")
        if not isinstance(self.constants, SCNParams):
            raise TypeError(f"constants must be an SCNParams, got {type(self.constants).__name__}")

    @cached_property
    def fast_t(self) -> Array:
        """Ωᵀ, C-contiguous (N, N): the columns of spiking neurons as contiguous rows, built once."""
        return np.ascontiguousarray(self.weights.fast.T)

    @cached_property
    def spike_cap(self) -> int:
        """The spike-storm guard, ``constants.spike_cap(N)``."""
        return self.constants.spike_cap(self.weights.n)


class Drive(NamedTuple):
    """An input of ``step`` given as its feedforward drive F c_t, (N,) or (B, N), instead of the current c_t: a loop
    that computes the drive of many steps in one matrix product passes it so (``simulate``)."""

    values: Array


def step(params: SCN, state: SCNState, inputs: Array | Drive, *, rng: Seed = None,
         on_spike: OnSpike | None = None) -> tuple[SCNState, Array]:
    """One time step of the SCN (pure: the state is not modified), on the input current ``inputs`` = c_t (or its
    feedforward drive ``Drive(F c_t)``).

    1. V ← V + dt(−λV + F c_t + W r) + σ_V ξ (plus, in ``"single"`` mode, the pending Ω column).
    2. r ← (1 − λ dt) r.
    3. Spikes: ``"sequential"``: while max_i(V_i − T_i − σ_T η_i) > 0, k = argmax, V ← V + Ω[:, k], r_k += 1;
       ``"single"``: at most one spike, whose Ω[:, k] is added at the next step.

    The decay, which the usual formulation applies after the spikes, is applied before them, so that a spike
    adds exactly 1 to the r seen at the end of the step and the voltage identity V = Dᵀ(x − x̂) − μr holds
    exactly there (tested to 1e-9 over 10⁴ steps).
    ``on_spike(b, k, V, r)`` is called before each spike with copies of that trial's V and r; if it returns
    new ``SCNWeights`` they are used for the rest of the step (the caller keeps them for the next steps).
    The noise ξ, η is drawn from ``rng`` (a fresh generator when None); the threshold noise η once per neuron and
    step.

    Shape: state.V, state.r (N,) or (B, N); inputs c (J,) or (B, J), or a Drive (N,) or (B, N). The current c is
    checked finite; float64 state arrays and drives are taken as they are (a state comes from ``initial_state`` or
    the previous step; ``simulate`` checks the whole input once).

    Returns:
        The new state and the spikes in firing order: neuron indices (S,) for an unbatched state, or
        (S, 2) rows of (trial, neuron) for a batched one.

    Raises:
        RuntimeError: on a spike storm (more than ``max_spikes_per_step`` spikes in one trial and step).
    """
    if not isinstance(params, SCN):
        raise TypeError(f"params must be an SCN (weights and constants), got {type(params).__name__}")
    weights, constants = params.weights, params.constants
    V, r, pending, batched = _state_arrays(state, weights.n)  # (B, N), (B, N), (B,)
    b, n = V.shape
    if isinstance(inputs, Drive):
        drive = inputs.values
        if not (type(drive) is np.ndarray and drive.dtype is _F64 and (drive.shape == V.shape or drive.shape == (n,))):
            drive = _checks.array(drive, "the drive", ndim=(1, 2))
            if drive.shape[-1] != n or (drive.ndim == 2 and drive.shape[0] != b):
                raise ValueError(f"the drive must have shape (N,) or (B, N) with N = {n} and B = {b}, "
                                 f"got {drive.shape}")
    else:
        c = _checks.array(inputs, "c", ndim=(1, 2))
        c2 = c if c.ndim == 2 else np.broadcast_to(c, (b, c.shape[-1]))
        if c2.shape != (b, weights.j):
            raise ValueError(f"c must have shape (J,) or (B, J) with J = {weights.j} and B = {b}, got {c.shape}")
        drive = c2 @ weights.F.T
    noisy = constants.sigma_v > 0 or constants.sigma_t > 0
    Vn, rn, pn, spikes, _ = _step(constants, weights, V, r, pending, drive, _checks.rng(rng) if noisy else None,
                                  on_spike, None, params.spike_cap, params.fast_t if on_spike is None else None)
    if len(spikes) > 1:
        spikes = [(np.concatenate([s[0] for s in spikes]), np.concatenate([s[1] for s in spikes]))]
    if not batched:
        return SCNState(Vn[0], rn[0], pn[0]), spikes[0][1] if spikes else np.zeros(0, np.int64)
    fired = np.empty((spikes[0][0].size if spikes else 0, 2), np.int64)  # (trial, neuron) rows
    if spikes:
        fired[:, 0], fired[:, 1] = spikes[0]
    return SCNState(Vn, rn, pn), fired


_F64, _I64 = np.dtype(np.float64), np.dtype(np.int64)


def _state_arrays(state: SCNState, n: int) -> tuple[Array, Array, Array, bool]:
    """state.V, state.r as (B, N) float64, state.pending as (B,) int64 (B = 1 for an unbatched state), and whether
    the state was batched.

    A state as a step returns it passes one test; anything else is converted and checked (finite, shapes)."""
    V, r, pending = state.V, state.r, state.pending
    if (type(V) is np.ndarray and type(r) is np.ndarray and type(pending) is np.ndarray and V.dtype is _F64
            and r.dtype is _F64 and pending.dtype is _I64 and r.shape == V.shape):
        shape = V.shape
        if len(shape) == 2 and shape[1] == n and pending.shape == shape[:1]:
            return V, r, pending, True
        if len(shape) == 1 and shape[0] == n and pending.shape == ():
            return V[None], r[None], pending.reshape(1), False
    V = _checks.array(V, "state.V", ndim=(1, 2))
    if V.shape[-1] != n:
        raise ValueError(f"state.V must have N = {n} entries in its last axis, got shape {V.shape}")
    r = _checks.array(r, "state.r", ndim=(1, 2))
    if r.shape != V.shape:
        raise ValueError(f"state.r must have the shape of state.V {V.shape}, got {r.shape}")
    b = V.shape[0] if V.ndim == 2 else 1
    flat = np.asarray(pending, dtype=np.int64).reshape(-1)
    if flat.shape != (b,):
        raise ValueError(f"state.pending must have shape {V.shape[:-1]}, got {np.shape(pending)}")
    return V.reshape(b, n), r.reshape(b, n), flat, V.ndim == 2


def initial_state(weights: SCNWeights, x0: Array | None = None, batch: int | None = None) -> SCNState:
    """The consistent start V₀ = F x₀, r₀ = 0, nothing pending. Shape: x0 (J,) or (B, J)."""
    n, j = weights.n, weights.j
    shape = (n,) if batch is None else (batch, n)
    if x0 is None:
        V = np.zeros(shape)
    else:
        x0 = _checks.array(x0, "x0", ndim=(1, 2))
        if x0.shape[-1] != j or (x0.ndim == 2 and (batch is None or x0.shape[0] != batch)):
            want = "(J,)" if batch is None else f"(J,) or (B, J) with B = {batch}"
            raise ValueError(f"x0 must have shape {want} with J = {j}, got {x0.shape}")
        V = np.array(np.broadcast_to(x0 @ weights.F.T, shape))
    pending = np.full(() if batch is None else (batch,), -1, dtype=np.int64)
    return SCNState(V, np.zeros(shape), pending)


class _Drives:
    """The inputs of ``simulate``'s steps: ``Drive(F c_t)`` (B, N), computed for ``chunk`` steps at a time (steps
    t0 = 0, chunk, 2·chunk, ...) in one matrix product, time-major, so that a chunk's drive stays in cache."""

    def __init__(self, c: Array, F: Array, chunk: int) -> None:
        self.c, self.Ft, self.chunk = c, np.ascontiguousarray(F.T), chunk  # c (B, T, J)
        self.start, self.block = -1, np.zeros((0, c.shape[0], F.shape[0]))

    def __call__(self, t: int) -> Drive:
        i = t - self.start
        if not 0 <= i < len(self.block):
            self.start = t - t % self.chunk
            i = t - self.start
            block = np.ascontiguousarray(self.c[:, self.start:self.start + self.chunk].transpose(1, 0, 2))
            self.block = (block.reshape(-1, block.shape[-1]) @ self.Ft).reshape(block.shape[0], block.shape[1], -1)
        return Drive(self.block[i])


def simulate(weights: SCNWeights, c: Array, params: SCNParams | None = None, *, x0: Array | None = None,
             state0: SCNState | None = None, seed: Seed = None,
             record: Sequence[str] | None = None) -> SCNRun:
    """Run the SCN over the input current c, for one trial or a batch of B trials at once.

    The loop is ``wrec.dynamics.run`` over the pure ``step``, once per time step for all trials together (the
    drive F c of many steps is computed in one product and passed as ``Drive``); the sequential spike rule keeps
    firing in every trial that still has a neuron above threshold. The start is V₀ = F x₀, r₀ = 0
    (``initial_state``), or ``state0``. Traces are recorded at the end of each step; ``record`` picks them among
    ("spikes", "r", "V", "xhat"), by default all (xhat only when weights.D is set). Noise in a batch is drawn for the
    whole batch at once, so a batched run with noise does not reproduce a loop of single trials with the same seed
    (it does without noise, to round-off).

    Shape: c (T, J) or (B, T, J); x0 (J,) or (B, J). Records: r and V (T, N), xhat (T, J) (needs weights.D),
    each with a leading B when batched.

    Raises:
        ValueError: on mismatched shapes (J between c and F), non-finite input, unknown record names.
        RuntimeError: on a spike storm.
    """
    params, record = _simulate_options(weights, params, record)
    c = _checks.array(c, "c", ndim=(2, 3))
    if c.shape[-1] != weights.j:
        raise ValueError(f"c must have J = {weights.j} entries in its last axis (F has shape {weights.F.shape}), "
                         f"got shape {c.shape}")
    batched = c.ndim == 3
    c3 = c if batched else c[None]  # (B, T, J)
    B, n_t, n = c3.shape[0], c3.shape[1], weights.n
    start = _start(weights, x0, state0, B if batched else None)
    rec_r = np.empty((B, n_t, n)) if ("r" in record or "xhat" in record) else None
    rec_V = np.empty((B, n_t, n)) if "V" in record else None
    fired: list[tuple[int, Array]] = []
    on_step = _recorder(fired if "spikes" in record else None, rec_r, rec_V)
    drives = _Drives(c3, weights.F, max(1, _CHUNK_VALUES // (B * n)))
    final = dynamics.run(step, SCN(weights, params), start, drives, n_t, rng=_checks.rng(seed), on_step=on_step,
                         what="SCN simulation").state
    sp_steps, sp_neurons, sp_trials = _spike_arrays(fired) if "spikes" in record else (None, None, None)
    xhat = None if rec_r is None or weights.D is None or "xhat" not in record else rec_r @ weights.D.T
    out = SCNRun(steps=sp_steps, neurons=sp_neurons, trials=sp_trials, r=rec_r if "r" in record else None, V=rec_V,
                 xhat=xhat, state=final, n_steps=n_t, n_neurons=n, dt=params.dt, batch=B)
    return out if batched else _single_trial(out)


def _simulate_options(weights: SCNWeights, params: SCNParams | None,
                      record: Sequence[str] | str | None) -> tuple[SCNParams, tuple[str, ...]]:
    """``simulate``'s params (the defaults for None) and record names (by default all, xhat only with a decoder),
    checked."""
    if not isinstance(weights, SCNWeights):
        raise TypeError(f"weights must be an SCNWeights, got {type(weights).__name__}")
    params = SCNParams() if params is None else params
    if not isinstance(params, SCNParams):
        raise TypeError(f"params must be an SCNParams, got {type(params).__name__}")
    record = RECORDS[:3] if record is None and weights.D is None else RECORDS if record is None else record
    record = (record,) if isinstance(record, str) else tuple(record)
    unknown = set(record) - set(RECORDS)
    if unknown:
        raise ValueError(f"record entries must be among {RECORDS}, got {sorted(unknown)}")
    if "xhat" in record and weights.D is None:
        raise ValueError("record 'xhat' needs a decoder: weights.D is None")
    return params, record


def _start(weights: SCNWeights, x0: Array | None, state0: SCNState | None, batch: int | None) -> SCNState:
    """``simulate``'s first state as (B, N), (B, N), (B,) arrays (B = 1 for one trial): a copy of ``state0``, checked
    against N and the batch, or ``initial_state(weights, x0)``."""
    B, n = 1 if batch is None else batch, weights.n
    if state0 is None:
        s = initial_state(weights, x0, batch)
        return SCNState(s.V.reshape(B, n), s.r.reshape(B, n), s.pending.reshape(B))
    if x0 is not None:
        raise ValueError("give x0 or state0, not both")
    want = (n,) if batch is None else (B, n)
    V = _checks.array(state0.V, "state0.V")
    r = _checks.array(state0.r, "state0.r")
    if V.shape != want or r.shape != want or np.size(state0.pending) != B:
        raise ValueError(f"state0 must hold V and r of shape {want} and pending of size {B}, "
                         f"got {V.shape}, {r.shape} and {np.shape(state0.pending)}")
    pending = np.asarray(state0.pending, dtype=np.int64).reshape(B)
    return SCNState(V.reshape(B, n).copy(), r.reshape(B, n).copy(), pending)


def _recorder(fired: list[tuple[int, Array]] | None, rec_r: Array | None,
              rec_V: Array | None) -> Callable[[int, SCNState, Array], None]:
    """``simulate``'s ``on_step``: appends (t, spikes) of the steps with spikes to ``fired`` and writes r and V into
    the (B, T, N) records (each when not None)."""

    def on_step(t: int, state: SCNState, spikes: Array) -> None:
        if fired is not None and spikes.size:
            fired.append((t, spikes))
        if rec_r is not None:
            rec_r[:, t] = state.r
        if rec_V is not None:
            rec_V[:, t] = state.V

    return on_step


def _spike_arrays(fired: list[tuple[int, Array]]) -> tuple[Array, Array, Array]:
    """(steps, neurons, trials) of the spikes, (S,) each, from ``simulate``'s (t, (S_t, 2) spikes) per step."""
    spikes = np.concatenate([s for _, s in fired]) if fired else np.zeros((0, 2), np.int64)
    steps = np.repeat(np.array([t for t, _ in fired], dtype=np.int64), [len(s) for _, s in fired])
    return steps, spikes[:, 1].astype(np.int64), spikes[:, 0].astype(np.int64)


def _single_trial(out: SCNRun) -> SCNRun:
    """A run of a batch of one as the unbatched run: traces (T, ·), the state unbatched, no trials."""

    def first(a: Array | None) -> Array | None:
        return None if a is None else a[0]

    state = out.state
    return replace(out, trials=None, r=first(out.r), V=first(out.V), xhat=first(out.xhat),
                   state=SCNState(state.V[0], state.r[0], state.pending[0]), batch=None)
