"""wrec.tasks.control against exact references: the LQR gains solve the discrete Riccati equation, the
linearisations are the environments' own Jacobians, the batched Pendulum step is gymnasium's step, the shift
wrappers change what they say, and the experts reach the returns an earlier run of them measured."""

from __future__ import annotations

import numpy as np
import pytest

from wrec.tasks import control
from wrec.tasks.control import (
    CARTPOLE_SHIFTS,
    PENDULUM_SHIFTS,
    CartPoleExpert,
    PendulumExpert,
    Shift,
    closed_loop_eigenvalues,
    dlqr,
    expert,
    make_env,
    pendulum_rollout,
    pendulum_step,
    physics,
    positions_only,
    riccati_residual,
)

pytest.importorskip("gymnasium")

EXPERTS = [expert("Pendulum-v1", s) for s in (Shift(), *PENDULUM_SHIFTS[:4])] + \
          [expert("CartPole-v1", s) for s in (Shift(), *CARTPOLE_SHIFTS[:3])]


@pytest.mark.parametrize("exp", EXPERTS, ids=lambda e: f"{type(e).__name__}")
def test_lqr_gain_solves_the_riccati_equation_and_stabilises(exp):
    A, B = exp.linearisation()
    Q = np.diag(exp.q)
    R = np.array([[exp.r]])
    assert riccati_residual(A, B, Q, R, exp.P) < 1e-10
    assert np.max(np.abs(closed_loop_eigenvalues(A, B, exp.K))) < 1.0
    assert np.max(np.abs(np.linalg.eigvals(A))) > 1.0  # the upright is unstable without control
    # independent route: iterate the Riccati difference equation to its fixed point
    P = Q.copy()
    for _ in range(20000):
        G = np.linalg.solve(R + B.T @ P @ B, B.T @ P @ A)
        P_next = A.T @ P @ A - A.T @ P @ B @ G + Q
        if np.max(np.abs(P_next - P)) < 1e-13 * np.max(np.abs(P)):
            break
        P = P_next
    np.testing.assert_allclose(exp.P, P, rtol=1e-9)


def test_dlqr_checks_shapes():
    with pytest.raises(ValueError, match="shapes do not fit"):
        dlqr(np.eye(2), np.ones((3, 1)), np.eye(2), np.eye(1))


def _gym_pendulum_step(env, state, u):
    env.unwrapped.state = np.array(state, dtype=np.float64)
    _, reward, *_ = env.step(np.array([u], dtype=np.float32))
    return env.unwrapped.state.copy(), reward


@pytest.mark.parametrize("shift", [Shift(), Shift("gravity", 1.4), Shift("mass", 1.3), Shift("length", 1.2)],
                         ids=lambda s: s.label)
def test_batched_pendulum_step_is_gymnasiums_step(shift):
    env = make_env("Pendulum-v1", shift)
    env.reset(seed=0)
    rng = np.random.default_rng(1)
    states = rng.uniform([-4, -9], [4, 9], (64, 2))  # beyond the speed limit too: clipping is exercised
    u = rng.uniform(-3, 3, 64).astype(np.float32)  # gymnasium's action dtype
    p = physics("Pendulum-v1", shift)
    for _ in range(3):
        new, reward = pendulum_step(states, u, g=p["g"], m=p["m"], l=p["l"])
        for i in range(64):
            s_ref, r_ref = _gym_pendulum_step(env, states[i], u[i])
            np.testing.assert_allclose(new[i], s_ref, rtol=0, atol=1e-12)
            assert abs(reward[i] - r_ref) < 1e-12
        states = new


@pytest.mark.parametrize("shift", [Shift(), Shift("mass", 5.0), Shift("length", 2.0), Shift("force", 0.5)],
                         ids=lambda s: s.label)
def test_batched_cartpole_step_is_gymnasiums_step(shift):
    env = make_env("CartPole-v1", shift)
    env.reset(seed=0)
    base = env.unwrapped
    rng = np.random.default_rng(2)
    states = rng.uniform(-0.3, 0.3, (64, 4))
    actions = rng.integers(0, 2, 64)
    new, terminated = control.cartpole_step(states, actions, **{k: physics("CartPole-v1", shift)[k]
                                                                 for k in control.CARTPOLE})
    for i in range(64):
        base.state = states[i].copy()
        base.steps_beyond_terminated = None
        _, _, term, _, _ = env.step(int(actions[i]))
        np.testing.assert_allclose(new[i], base.state, rtol=0, atol=1e-12)
        assert terminated[i] == term


def test_cartpole_rollout_counts_gymnasium_rewards():
    """A fixed open-loop action sequence: the batched rollout's return equals gymnasium's summed reward."""
    actions = np.random.default_rng(0).integers(0, 2, 500)
    t = {"i": 0}

    def policy(obs):
        a = np.full(obs.shape[0], actions[t["i"]])
        t["i"] += 1
        return a

    out = control.cartpole_rollout(policy, episodes=1, seed=5)
    env = make_env("CartPole-v1")
    env.reset(seed=0)
    env.unwrapped.state = np.random.default_rng(5).uniform(-0.05, 0.05, (1, 4))[0]
    total, done, k = 0.0, False, 0
    while not done:
        _, r, term, trunc, _ = env.step(int(actions[k]))
        total += r
        k += 1
        done = term or trunc
    assert out["return"][0] == total
    assert control.cartpole_rollout(expert("CartPole-v1"), episodes=5, seed=1)["return"].tolist() == [500.0] * 5
    assert control.cartpole_rollout(control.zero_policy, episodes=5, seed=1)["return"].max() < 20


def test_pendulum_linearisation_is_the_steps_jacobian():
    for shift in (Shift(), Shift("gravity", 1.4), Shift("length", 1.2)):
        exp = PendulumExpert.for_shift(shift)
        A, B = exp.linearisation()
        p = physics("Pendulum-v1", shift)
        eps = 1e-6
        J = np.zeros((2, 3))
        for j in range(3):
            d = np.zeros(3)
            d[j] = eps
            plus, _ = pendulum_step(d[None, :2], d[2:], g=p["g"], m=p["m"], l=p["l"])
            minus, _ = pendulum_step(-d[None, :2], -d[2:], g=p["g"], m=p["m"], l=p["l"])
            J[:, j] = (plus[0] - minus[0]) / (2 * eps)
        np.testing.assert_allclose(J, np.hstack([A, B]), atol=1e-7)


@pytest.mark.parametrize("shift", [Shift(), Shift("mass", 5.0), Shift("length", 2.0)], ids=lambda s: s.label)
def test_cartpole_linearisation_is_the_environments_jacobian(shift):
    """Finite differences of gymnasium's own step (with the shifted, recomputed constants) at the upright."""
    env = make_env("CartPole-v1", shift)
    env.reset(seed=0)
    base = env.unwrapped
    p = physics("CartPole-v1", shift)
    assert base.total_mass == pytest.approx(p["masscart"] + p["masspole"])
    assert base.polemass_length == pytest.approx(p["masspole"] * p["length"])
    A, B = CartPoleExpert.for_shift(shift).linearisation()
    eps = 1e-6
    force = base.force_mag

    def step(x, f):
        base.state = np.array(x, dtype=np.float64)
        base.force_mag = abs(f) if f != 0 else 0.0
        base.steps_beyond_terminated = None
        env.step(1 if f >= 0 else 0)
        return np.array(base.state, dtype=np.float64)

    J = np.zeros((4, 5))
    for j in range(4):
        d = np.zeros(4)
        d[j] = eps
        J[:, j] = (step(d, 0.0) - step(-d, 0.0)) / (2 * eps)
    J[:, 4] = (step(np.zeros(4), eps) - step(np.zeros(4), -eps)) / (2 * eps)
    base.force_mag = force
    np.testing.assert_allclose(J, np.hstack([A, B]), atol=1e-6)


def test_cartpole_force_shift_and_pendulum_constants():
    env = make_env("CartPole-v1", Shift("force", 0.5))
    assert env.unwrapped.force_mag == 5.0
    env = make_env("Pendulum-v1", Shift("gravity", 1.2))
    assert env.unwrapped.g == pytest.approx(12.0)


def test_action_delay_wrapper_equals_the_batched_rollout_delay():
    env = make_env("Pendulum-v1", Shift("action_delay", 1))
    env.reset(seed=3)
    state = env.unwrapped.state.copy()
    actions = np.random.default_rng(0).uniform(-2, 2, 10).astype(np.float32)
    executed = np.concatenate([np.zeros(1, np.float32), actions[:-1]])
    for a, e in zip(actions, executed, strict=True):
        env.step(np.array([a], dtype=np.float32))
        state, _ = pendulum_step(state[None], np.array([e], dtype=np.float32))
        state = state[0]
        np.testing.assert_allclose(env.unwrapped.state, state, rtol=0, atol=1e-12)


def test_observation_noise_has_the_stated_sd_and_leaves_the_state_alone():
    env = make_env("Pendulum-v1", Shift("obs_noise", 0.1), seed=0)
    obs, _ = env.reset(seed=0)
    diffs = []
    for _ in range(400):
        clean = control.pendulum_obs(env.unwrapped.state[None])[0]
        obs, *_ = env.step(np.zeros(1, dtype=np.float32))
        diffs.append(obs - control.pendulum_obs(env.unwrapped.state[None])[0])
        assert clean.shape == (3,)
    sd = np.std(np.concatenate(diffs))
    assert sd == pytest.approx(0.1, rel=0.1)  # 1200 draws: SE of the sd ≈ 2 %


def test_pendulum_expert_returns_near_the_reference_run():
    """An earlier run (20 episodes): −138 ± 91 nominal; zero torque −1197; at g = 14 the nominal expert −734 and the
    retuned one −176. Means of 20 episodes within 3 standard errors of that run's mean (SE = 91/√20 ≈ 20)."""
    nominal = pendulum_rollout(expert("Pendulum-v1"), episodes=20, seed=11)["return"]
    assert abs(nominal.mean() - (-138)) < 3 * 91 / np.sqrt(20)
    zero = pendulum_rollout(control.zero_policy, episodes=20, seed=11)["return"]
    assert zero.mean() < -900
    g14 = Shift("gravity", 1.4)
    retuned = pendulum_rollout(expert("Pendulum-v1", g14), g14, episodes=20, seed=11)["return"]
    stale = pendulum_rollout(expert("Pendulum-v1"), g14, episodes=20, seed=11)["return"]
    assert abs(retuned.mean() - (-176)) < 3 * 91 / np.sqrt(20)
    assert stale.mean() < retuned.mean() - 150  # retuning matters at g = 14


def test_pendulum_expert_in_gymnasium_itself():
    env = make_env("Pendulum-v1")
    exp = expert("Pendulum-v1")
    returns = []
    for ep in range(4):
        obs, _ = env.reset(seed=100 + ep)
        total = 0.0
        for _ in range(200):
            obs, r, *_ = env.step(np.array([exp(obs)], dtype=np.float32))
            total += r
        returns.append(total)
    assert np.mean(returns) > -400 and min(returns) > -700


def test_cartpole_expert_hits_the_ceiling():
    env = make_env("CartPole-v1")
    exp = expert("CartPole-v1")
    for ep in range(3):
        obs, _ = env.reset(seed=ep)
        steps = 0
        done = False
        while not done:
            obs, _, term, trunc, _ = env.step(int(exp(obs)))
            steps += 1
            done = term or trunc
        assert steps == 500


def test_positions_only():
    assert positions_only(np.arange(3.0), "Pendulum-v1").tolist() == [0.0, 1.0]
    assert positions_only(np.arange(8.0).reshape(2, 4), "CartPole-v1").tolist() == [[0.0, 2.0], [4.0, 6.0]]


@pytest.mark.parametrize(("call", "match"), [
    (lambda: make_env("Acrobot-v1"), r"env_id must be one of Pendulum-v1, CartPole-v1, got 'Acrobot-v1'"),
    (lambda: Shift("wind", 1.0), r"shift kind must be one of .*got 'wind'"),
    (lambda: physics("Pendulum-v1", Shift("force", 0.5)), r"shift kind 'force' does not apply to Pendulum-v1"),
    (lambda: Shift("gravity", 0.0), r"value must be > 0"),
    (lambda: Shift("obs_noise", -0.1), r"value must be >= 0"),
    (lambda: expert("MountainCar-v0"), r"env_id must be one of"),
    (lambda: PendulumExpert()(np.zeros(2)), r"obs must have shape \(..., 3\)"),
    (lambda: positions_only(np.zeros(3), "Pong"), r"env_id must be one of"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
