"""Closed-loop control tasks: gymnasium classic-control experts, distribution-shift wrappers and a batched Pendulum.

For the low-rank × sparse CfC study (Tumma et al., ICLR 2024), on CPU-sized classic control instead of the paper's
Seaquest and HalfCheetah. Experts see the full state:

    Pendulum: u = −k (E − E*) θ̇ (energy shaping; E = ½(ml²/3)θ̇² + ½mgl cos θ, E* = ½mgl, u = 2 when θ̇ ≈ 0),
              switching to discrete LQR u = −K x, x = (θ, θ̇), when |θ| < 0.6 (θ = 0 upright); clipped to ±2.
    CartPole: LQR on the Euler-discretised linearisation at the upright, action 1[u > 0].

The LQR gain is K = (R + BᵀPB)⁻¹BᵀPA with P from ``scipy.linalg.solve_discrete_are``; A, B linearise exactly the
environment's own integrator (Pendulum's semi-implicit Euler step, CartPole's explicit Euler). A ``Shift``
changes one thing of an environment: a physical parameter by a factor (gravity, mass, length, force), additive
Gaussian observation noise, or a one-step action delay. Agents see positions only (``positions_only``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.linalg import solve_discrete_are

from wrec import _checks
from wrec._checks import Seed

ENVS = ("Pendulum-v1", "CartPole-v1")
SHIFT_KINDS = ("nominal", "gravity", "mass", "length", "force", "obs_noise", "action_delay")
PHYSICAL = ("gravity", "mass", "length", "force")
# the environments' own constants (gymnasium 1.x)
PENDULUM = {"g": 10.0, "m": 1.0, "l": 1.0, "dt": 0.05, "max_speed": 8.0, "max_torque": 2.0}
CARTPOLE = {"gravity": 9.8, "masscart": 1.0, "masspole": 0.1, "length": 0.5, "force_mag": 10.0, "tau": 0.02}


def _env_id(env_id: object) -> str:
    if not isinstance(env_id, str) or env_id not in ENVS:
        raise ValueError(f"env_id must be one of {', '.join(ENVS)}, got {env_id!r}")
    return env_id


@dataclass(frozen=True)
class Shift:
    """One distribution shift. ``kind``: 'nominal'; 'gravity', 'mass' (Pendulum m, CartPole pole mass), 'length'
    (Pendulum l, CartPole half pole length), 'force' (CartPole only) with ``value`` the factor on the nominal value;
    'obs_noise' with ``value`` = σ of additive N(0, σ²) on every observation entry; 'action_delay' with ``value``
    = the delay in steps (the executed action is the one chosen ``value`` steps earlier; zero before)."""

    kind: str = "nominal"
    value: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in SHIFT_KINDS:
            raise ValueError(f"shift kind must be one of {', '.join(SHIFT_KINDS)}, got {self.kind!r}")
        if self.kind in PHYSICAL:
            _checks.real(self.value, "value", low=0.0, low_open=True)
        elif self.kind == "obs_noise":
            _checks.real(self.value, "value", low=0.0)
        elif self.kind == "action_delay":
            _checks.integer(self.value, "value", low=0)
        object.__setattr__(self, "value", float(self.value))

    @property
    def label(self) -> str:
        if self.kind == "nominal":
            return "nominal"
        if self.kind == "obs_noise":
            return f"obs_noise σ={self.value:g}"
        if self.kind == "action_delay":
            return f"action_delay {int(self.value)}"
        return f"{self.kind}×{self.value:g}"


#: g ∈ {12, 14}, m = 1.3, l = 1.2, observation noise σ ∈ {0.05, 0.1}, one-step action delay
PENDULUM_SHIFTS = (Shift("gravity", 1.2), Shift("gravity", 1.4), Shift("mass", 1.3), Shift("length", 1.2),
                   Shift("obs_noise", 0.05), Shift("obs_noise", 0.1), Shift("action_delay", 1))
#: CartPole's expert hits the 500-step ceiling, so its shifts are large
CARTPOLE_SHIFTS = (Shift("length", 2.0), Shift("mass", 5.0), Shift("force", 0.5), Shift("obs_noise", 0.1),
                   Shift("action_delay", 1))


def physics(env_id: str, shift: Shift = Shift()) -> dict[str, float]:
    """The environment's physical constants under ``shift`` (unchanged for noise and delay)."""
    env_id = _env_id(env_id)
    if not isinstance(shift, Shift):
        raise TypeError(f"shift must be a Shift, got {type(shift).__name__}")
    if env_id == "Pendulum-v1":
        p = dict(PENDULUM)
        key = {"gravity": "g", "mass": "m", "length": "l"}
    else:
        p = dict(CARTPOLE)
        key = {"gravity": "gravity", "mass": "masspole", "length": "length", "force": "force_mag"}
    if shift.kind in PHYSICAL:
        if shift.kind not in key:
            raise ValueError(f"shift kind {shift.kind!r} does not apply to {env_id}; use one of "
                             f"{', '.join(k for k in SHIFT_KINDS if k not in PHYSICAL or k in key)}")
        p[key[shift.kind]] *= shift.value
    return p


# --------------------------------------------------------------------------------------------------------- LQR


def dlqr(A: np.ndarray, B: np.ndarray, Q: np.ndarray, R: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Discrete LQR: P solves P = AᵀPA − AᵀPB(R + BᵀPB)⁻¹BᵀPA + Q; K = (R + BᵀPB)⁻¹BᵀPA (u = −K x).

    Shape: A (n, n), B (n, m), Q (n, n), R (m, m); returns K (m, n), P (n, n).
    """
    A, B = _checks.square(A, "A"), _checks.array(B, "B", ndim=2)
    Q, R = _checks.square(Q, "Q"), _checks.square(R, "R")
    if B.shape[0] != A.shape[0] or Q.shape != A.shape or R.shape[0] != B.shape[1]:
        raise ValueError(f"shapes do not fit: A {A.shape}, B {B.shape}, Q {Q.shape}, R {R.shape}")
    P = solve_discrete_are(A, B, Q, R)
    K = np.linalg.solve(R + B.T @ P @ B, B.T @ P @ A)
    return K, P


def riccati_residual(A: np.ndarray, B: np.ndarray, Q: np.ndarray, R: np.ndarray, P: np.ndarray) -> float:
    """max |AᵀPA − P − AᵀPB(R + BᵀPB)⁻¹BᵀPA + Q|, zero at the solution of the discrete Riccati equation."""
    G = np.linalg.solve(R + B.T @ P @ B, B.T @ P @ A)
    return float(np.max(np.abs(A.T @ P @ A - P - A.T @ P @ B @ G + Q)))


def pendulum_linearisation(g: float = 10.0, m: float = 1.0, l: float = 1.0,  # noqa: E741 (gymnasium's names)
                           dt: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """A, B of Pendulum's semi-implicit Euler step linearised at the upright (θ = 0), x = (θ, θ̇):
    θ̇' = θ̇ + (a θ + b u) dt, θ' = θ + θ̇' dt with a = 3g/(2l), b = 3/(ml²)."""
    a, b = 3 * g / (2 * l), 3 / (m * l * l)
    A = np.array([[1 + a * dt * dt, dt], [a * dt, 1.0]])
    B = np.array([[b * dt * dt], [b * dt]])
    return A, B


def cartpole_linearisation(gravity: float = 9.8, masscart: float = 1.0, masspole: float = 0.1,
                           length: float = 0.5, force_mag: float = 10.0,
                           tau: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    """A, B of CartPole's explicit Euler step linearised at the upright, x = (x, ẋ, θ, θ̇), input the force F:
    θ̈ = (gθ − F/M)/D, ẍ = F/M − m_p l θ̈/M with M = m_c + m_p, D = l(4/3 − m_p/M); A = I + τA_c, B = τB_c."""
    M = masscart + masspole
    D = length * (4.0 / 3.0 - masspole / M)
    Ac = np.zeros((4, 4))
    Bc = np.zeros((4, 1))
    Ac[0, 1] = Ac[2, 3] = 1.0
    Ac[3, 2] = gravity / D
    Bc[3, 0] = -1.0 / (M * D)
    Ac[1, 2] = -masspole * length * gravity / (M * D)
    Bc[1, 0] = 1.0 / M + masspole * length / (M * M * D)
    return np.eye(4) + tau * Ac, tau * Bc


# ------------------------------------------------------------------------------------------------------ experts


def _angle(theta: np.ndarray) -> np.ndarray:
    return (theta + np.pi) % (2 * np.pi) - np.pi


@dataclass(frozen=True)
class PendulumExpert:
    """Energy-shaping swing-up with an LQR catch (module docstring), tuned for the given physics.

    Call it on observations (cos θ, sin θ, θ̇). Shape: obs (..., 3) -> torque (...,).
    """

    g: float = 10.0
    m: float = 1.0
    l: float = 1.0  # noqa: E741 (gymnasium's name)
    dt: float = 0.05
    k: float = 5.0
    switch: float = 0.6
    q: tuple[float, float] = (1.0, 0.1)
    r: float = 1e-3
    max_torque: float = 2.0
    K: np.ndarray = field(init=False, repr=False, compare=False)
    P: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("g", "m", "l", "dt", "k", "switch", "r", "max_torque"):
            _checks.real(getattr(self, name), name, low=0.0, low_open=True)
        A, B = self.linearisation()
        K, P = dlqr(A, B, np.diag(self.q), np.array([[self.r]]))
        object.__setattr__(self, "K", K)
        object.__setattr__(self, "P", P)

    @classmethod
    def for_shift(cls, shift: Shift = Shift(), **kwargs: Any) -> PendulumExpert:
        """The expert retuned to the shifted physics (LQR and energy target use the shifted g, m, l)."""
        p = physics("Pendulum-v1", shift)
        return cls(g=p["g"], m=p["m"], l=p["l"], dt=p["dt"], **kwargs)

    def linearisation(self) -> tuple[np.ndarray, np.ndarray]:
        return pendulum_linearisation(self.g, self.m, self.l, self.dt)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float64)
        if obs.shape[-1:] != (3,):
            raise ValueError(f"obs must have shape (..., 3) = (cos θ, sin θ, θ̇), got {obs.shape}")
        theta = np.arctan2(obs[..., 1], obs[..., 0])
        thdot = obs[..., 2]
        energy = 0.5 * self.m * self.l ** 2 / 3 * thdot ** 2 + 0.5 * self.m * self.g * self.l * np.cos(theta)
        target = 0.5 * self.m * self.g * self.l
        swing = -self.k * (energy - target) * thdot
        swing = np.where(np.abs(thdot) < 1e-3, self.max_torque, swing)  # at rest below: kick it off
        lqr = -(self.K[0, 0] * theta + self.K[0, 1] * thdot)
        u = np.where(np.abs(theta) < self.switch, lqr, swing)
        return np.clip(u, -self.max_torque, self.max_torque)


@dataclass(frozen=True)
class CartPoleExpert:
    """LQR on the linearised CartPole (module docstring); action 1 (push right) when u > 0.

    Shape: obs (..., 4) = (x, ẋ, θ, θ̇) -> actions (...,) of 0/1 (int64).
    """

    gravity: float = 9.8
    masscart: float = 1.0
    masspole: float = 0.1
    length: float = 0.5
    force_mag: float = 10.0
    tau: float = 0.02
    q: tuple[float, float, float, float] = (1.0, 1.0, 10.0, 1.0)
    r: float = 0.1
    K: np.ndarray = field(init=False, repr=False, compare=False)
    P: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        A, B = self.linearisation()
        K, P = dlqr(A, B, np.diag(self.q), np.array([[self.r]]))
        object.__setattr__(self, "K", K)
        object.__setattr__(self, "P", P)

    @classmethod
    def for_shift(cls, shift: Shift = Shift(), **kwargs: Any) -> CartPoleExpert:
        """The expert retuned to the shifted physics (the LQR gain of the shifted linearisation)."""
        p = physics("CartPole-v1", shift)
        return cls(gravity=p["gravity"], masscart=p["masscart"], masspole=p["masspole"], length=p["length"],
                   force_mag=p["force_mag"], tau=p["tau"], **kwargs)

    def linearisation(self) -> tuple[np.ndarray, np.ndarray]:
        return cartpole_linearisation(self.gravity, self.masscart, self.masspole, self.length, self.force_mag,
                                      self.tau)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float64)
        if obs.shape[-1:] != (4,):
            raise ValueError(f"obs must have shape (..., 4) = (x, ẋ, θ, θ̇), got {obs.shape}")
        return ((-obs @ self.K[0]) > 0).astype(np.int64)


def expert(env_id: str, shift: Shift = Shift()) -> PendulumExpert | CartPoleExpert:
    """The expert for ``env_id`` retuned to the shift's physics."""
    return PendulumExpert.for_shift(shift) if _env_id(env_id) == "Pendulum-v1" else CartPoleExpert.for_shift(shift)


# ----------------------------------------------------------------------------------------------------- wrappers


def positions_only(obs: np.ndarray, env_id: str) -> np.ndarray:
    """What the agent sees: Pendulum (cos θ, sin θ), CartPole (x, θ). Shape: (..., 3 or 4) -> (..., 2)."""
    obs = np.asarray(obs)
    return obs[..., :2] if _env_id(env_id) == "Pendulum-v1" else obs[..., [0, 2]]


def make_env(env_id: str, shift: Shift = Shift(), *, seed: Seed = None):
    """A gymnasium environment with ``shift`` applied.

    Physical shifts set the unwrapped environment's constants (CartPole's ``total_mass`` and ``polemass_length``
    are recomputed: gymnasium sets them only in ``__init__``); observation noise and action delay are wrappers
    (``ObservationNoise`` draws from ``seed``; ``ActionDelay``). The env checker is off: noisy
    observations may leave the observation space on purpose.
    """
    import gymnasium
    from gymnasium.envs.classic_control import CartPoleEnv, PendulumEnv

    env_id = _env_id(env_id)
    p = physics(env_id, shift)
    env = gymnasium.make(env_id, disable_env_checker=True)
    base = env.unwrapped
    if isinstance(base, PendulumEnv):
        base.g, base.m, base.l = p["g"], p["m"], p["l"]
    elif isinstance(base, CartPoleEnv):
        base.gravity, base.masspole, base.length, base.force_mag = (p["gravity"], p["masspole"], p["length"],
                                                                    p["force_mag"])
        base.total_mass = base.masspole + base.masscart
        base.polemass_length = base.masspole * base.length
    else:  # pragma: no cover (a gymnasium whose env_id is another class)
        raise TypeError(f"{env_id} made a {type(base).__name__}, not gymnasium's PendulumEnv or CartPoleEnv")
    noise, delay = _wrappers()
    if shift.kind == "obs_noise":
        env = noise(env, shift.value, seed=seed)
    elif shift.kind == "action_delay" and shift.value > 0:
        env = delay(env, int(shift.value))
    return env


@functools.cache
def _wrappers():
    import gymnasium

    class ObservationNoise(gymnasium.ObservationWrapper):
        """obs + N(0, σ²) on every entry, drawn from the wrapper's own generator."""

        def __init__(self, env, sigma: float, *, seed: Seed = None) -> None:
            super().__init__(env)
            self.sigma = _checks.real(sigma, "sigma", low=0.0)
            self.noise_rng = _checks.rng(seed)

        def observation(self, observation):
            return observation + self.sigma * self.noise_rng.standard_normal(np.shape(observation))

    class ActionDelay(gymnasium.Wrapper):
        """Executes the action chosen ``delay`` steps earlier (the zero action before that)."""

        def __init__(self, env, delay: int = 1) -> None:
            super().__init__(env)
            self.delay = _checks.integer(delay, "delay", low=1)
            self._queue: list = []

        def reset(self, **kwargs):
            space = self.env.action_space
            zero = np.zeros(space.shape, space.dtype) if space.shape else 0
            self._queue = [zero] * self.delay
            return self.env.reset(**kwargs)

        def step(self, action):
            self._queue.append(action)
            return self.env.step(self._queue.pop(0))

    return ObservationNoise, ActionDelay


def __getattr__(name: str):
    # gymnasium is the [control] extra: build the wrapper classes on first use, not at import
    if name in ("ObservationNoise", "ActionDelay"):
        return dict(zip(("ObservationNoise", "ActionDelay"), _wrappers(), strict=True))[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# -------------------------------------------------------------------------------------------- batched Pendulum


def pendulum_step(state: np.ndarray, u: np.ndarray, *, g: float = 10.0, m: float = 1.0, l: float = 1.0,  # noqa: E741
                  dt: float = 0.05, max_speed: float = 8.0,
                  max_torque: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """gymnasium's Pendulum step for a batch: u ← clip(u, ±max_torque); reward = −(θ̄² + 0.1θ̇² + 0.001u²);
    θ̇' = clip(θ̇ + (3g/(2l) sin θ + 3u/(ml²)) dt, ±max_speed); θ' = θ + θ̇' dt.

    Torques in float32 (gymnasium's action dtype) keep the torque term in float32 exactly as gymnasium computes it
    (NumPy's promotion rules), so the result equals gymnasium's step bit for bit.

    Shape: state (N, 2) = (θ, θ̇), u (N,); returns state' (N, 2), reward (N,).
    """
    th, thdot = state[..., 0], state[..., 1]
    u = np.clip(u, -max_torque, max_torque)
    cost = _angle(th) ** 2 + 0.1 * thdot ** 2 + 0.001 * u ** 2
    newthdot = np.clip(thdot + (3 * g / (2 * l) * np.sin(th) + 3.0 / (m * l ** 2) * u) * dt, -max_speed, max_speed)
    return np.stack([th + newthdot * dt, newthdot], axis=-1), -cost


def pendulum_obs(state: np.ndarray) -> np.ndarray:
    """(cos θ, sin θ, θ̇). Shape: (N, 2) -> (N, 3)."""
    return np.stack([np.cos(state[..., 0]), np.sin(state[..., 0]), state[..., 1]], axis=-1)


def pendulum_reset(n: int, seed: Seed = None) -> np.ndarray:
    """n initial states as gymnasium draws them: θ ~ U[−π, π], θ̇ ~ U[−1, 1]. Shape: (n, 2)."""
    return _checks.rng(seed).uniform([-np.pi, -1.0], [np.pi, 1.0], (_checks.integer(n, "n", low=1), 2))


def pendulum_rollout(
    policy: Callable[[np.ndarray], np.ndarray],
    shift: Shift = Shift(),
    *,
    episodes: int = 20,
    steps: int = 200,
    seed: Seed = None,
    record: bool = False,
) -> dict[str, np.ndarray]:
    """Run ``policy`` in closed loop on ``episodes`` Pendulums at once under ``shift``.

    ``policy(obs) -> u`` gets the (noisy) full observation (B, 3) each step (stateful policies keep their own
    state; build a fresh one per rollout) and returns torques (B,). Initial states and observation noise come from
    ``seed`` (one stream). Returns ``return`` (B,) and, with ``record``, ``obs`` (T, B, 3), ``state`` (T, B, 2),
    ``action`` (T, B) (the chosen actions; with a delay the executed ones lag).
    """
    if not isinstance(shift, Shift):
        raise TypeError(f"shift must be a Shift, got {type(shift).__name__}")
    p = physics("Pendulum-v1", shift)
    gen = _checks.rng(seed)
    state = pendulum_reset(episodes, gen)
    sigma = shift.value if shift.kind == "obs_noise" else 0.0
    delay = int(shift.value) if shift.kind == "action_delay" else 0
    queue = [np.zeros(episodes, np.float32)] * delay
    total = np.zeros(episodes)
    rec: dict[str, list] = {"obs": [], "state": [], "action": []}
    for _ in range(_checks.integer(steps, "steps", low=1)):
        obs = pendulum_obs(state)
        if sigma > 0:
            obs = obs + sigma * gen.standard_normal(obs.shape)
        u = np.asarray(policy(obs)).astype(np.float32).reshape(episodes)  # the env's action dtype
        if record:
            rec["obs"].append(obs)
            rec["state"].append(state)
            rec["action"].append(u)
        queue.append(u)
        state, reward = pendulum_step(state, queue.pop(0), **{k: p[k] for k in ("g", "m", "l", "dt")})
        total += reward
    out = {"return": total}
    if record:
        out.update({k: np.stack(v) for k, v in rec.items()})
    return out


def cartpole_step(state: np.ndarray, action: np.ndarray, *, gravity: float = 9.8, masscart: float = 1.0,
                  masspole: float = 0.1, length: float = 0.5, force_mag: float = 10.0,
                  tau: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    """gymnasium's CartPole step (explicit Euler) for a batch, with the same floating-point operations:
    F = ±force_mag; temp = (F + m_p l θ̇² sin θ)/M; θ̈ = (g sin θ − cos θ·temp)/(l(4/3 − m_p cos²θ/M));
    ẍ = temp − m_p l θ̈ cos θ/M. Terminated when |x| > 2.4 or |θ| > 12°.

    Shape: state (N, 4) = (x, ẋ, θ, θ̇), action (N,) of 0/1; returns state' (N, 4), terminated (N,) bool.
    """
    x, x_dot, theta, theta_dot = (state[..., i] for i in range(4))
    total_mass = masspole + masscart
    polemass_length = masspole * length
    force = np.where(np.asarray(action) == 1, force_mag, -force_mag)
    costheta, sintheta = np.cos(theta), np.sin(theta)
    temp = (force + polemass_length * np.square(theta_dot) * sintheta) / total_mass
    thetaacc = (gravity * sintheta - costheta * temp) / (
        length * (4.0 / 3.0 - masspole * np.square(costheta) / total_mass))
    xacc = temp - polemass_length * thetaacc * costheta / total_mass
    new = np.stack([x + tau * x_dot, x_dot + tau * xacc, theta + tau * theta_dot, theta_dot + tau * thetaacc], -1)
    limit = 12 * 2 * math.pi / 360
    terminated = (new[..., 0] < -2.4) | (new[..., 0] > 2.4) | (new[..., 2] < -limit) | (new[..., 2] > limit)
    return new, terminated


def cartpole_rollout(
    policy: Callable[[np.ndarray], np.ndarray],
    shift: Shift = Shift(),
    *,
    episodes: int = 20,
    steps: int = 500,
    seed: Seed = None,
    record: bool = False,
) -> dict[str, np.ndarray]:
    """Run ``policy`` (obs (B, 4) -> actions (B,) of 0/1) on ``episodes`` CartPoles at once under ``shift``; an
    episode's return is its number of steps up to and including the terminating one (gymnasium's reward), at most
    ``steps``. Initial states U(±0.05)⁴ and observation noise from ``seed``; delayed actions start as 0. With
    ``record``: ``obs`` (T, B, 4), ``action`` (T, B), ``alive`` (T, B) (the step counted).
    """
    if not isinstance(shift, Shift):
        raise TypeError(f"shift must be a Shift, got {type(shift).__name__}")
    p = physics("CartPole-v1", shift)
    gen = _checks.rng(seed)
    state = gen.uniform(-0.05, 0.05, (_checks.integer(episodes, "episodes", low=1), 4))
    sigma = shift.value if shift.kind == "obs_noise" else 0.0
    delay = int(shift.value) if shift.kind == "action_delay" else 0
    queue = [np.zeros(episodes, np.int64)] * delay
    alive = np.ones(episodes, bool)
    total = np.zeros(episodes)
    rec: dict[str, list] = {"obs": [], "action": [], "alive": []}
    for _ in range(_checks.integer(steps, "steps", low=1)):
        obs = state + sigma * gen.standard_normal(state.shape) if sigma > 0 else state.copy()
        a = np.asarray(policy(obs)).astype(np.int64).reshape(episodes)
        if record:
            rec["obs"].append(obs)
            rec["action"].append(a)
            rec["alive"].append(alive.copy())
        queue.append(a)
        new, terminated = cartpole_step(state, queue.pop(0), **{k: p[k] for k in CARTPOLE})
        total += alive
        state = np.where(alive[:, None], new, state)
        alive &= ~terminated
        if not alive.any() and not record:
            break
    out = {"return": total}
    if record:
        out.update({k: np.stack(v) for k, v in rec.items()})
    return out


def rollout(env_id: str, policy: Callable[[np.ndarray], np.ndarray], shift: Shift = Shift(),
            **kwargs) -> dict[str, np.ndarray]:
    """``pendulum_rollout`` or ``cartpole_rollout`` by ``env_id`` (same keywords)."""
    fn = pendulum_rollout if _env_id(env_id) == "Pendulum-v1" else cartpole_rollout
    return fn(policy, shift, **kwargs)


def zero_policy(obs: np.ndarray) -> np.ndarray:
    """u = 0, or CartPole's action 0 (the normalisation's lower anchor R_zero)."""
    return np.zeros(np.shape(obs)[0])


def closed_loop_eigenvalues(A: np.ndarray, B: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Eigenvalues of A − BK (inside the unit circle iff the linearised closed loop is stable)."""
    return np.linalg.eigvals(np.asarray(A) - np.asarray(B) @ np.asarray(K))


__all__ = [
    "CARTPOLE_SHIFTS", "ENVS", "PENDULUM_SHIFTS", "SHIFT_KINDS", "CartPoleExpert", "PendulumExpert", "Shift",
    "cartpole_linearisation", "cartpole_rollout", "cartpole_step", "closed_loop_eigenvalues", "dlqr", "expert",
    "make_env", "pendulum_linearisation", "pendulum_obs", "pendulum_reset", "pendulum_rollout", "pendulum_step",
    "physics", "positions_only", "riccati_residual", "rollout", "zero_policy",
]
