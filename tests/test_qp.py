"""Oracles for wrec.spiking.qp: maxout, brute-force active sets, KKT residuals, the NNLS and soft-threshold
reductions, the midpoint rule, linprog feasibility certificates and the 2-D polytope (Mancoo et al. 2020)."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest
from scipy.optimize import nnls

from wrec.spiking import qp

SOLVERS = ["daqp", "scipy"]
TOL = {"daqp": 1e-9, "scipy": 1e-6}  # DAQP is an exact active-set method; SLSQP stops at ftol


def random_network(seed: int, N: int = 8, K: int = 2, M: int = 2, positive: bool = True):
    rng = np.random.default_rng(seed)
    G = rng.uniform(0.2, 1.0, size=(N, M)) if positive else rng.normal(size=(N, M))
    F = rng.normal(size=(N, K))
    T = rng.uniform(-1.0, 1.0, size=N)
    X = rng.uniform(-2.0, 2.0, size=(6, K))
    return F, G, T, X


def brute_force_readout(F, G, T, x, Q):
    """Enumerate active sets A (|A| <= M, generic data): y = Q^-1 G_A^T u_A with G_A y = F_A x - T_A; keep the
    one with u_A >= 0 and F x - G y <= T (the KKT point, unique for a strictly convex QP)."""
    N, M = G.shape
    c = F @ x - T
    Qi = np.linalg.inv(Q)
    found = []
    for size in range(M + 1):
        for A in combinations(range(N), size):
            A = list(A)
            u = np.zeros(N)
            if A:
                u[A] = np.linalg.solve(G[A] @ Qi @ G[A].T, c[A])
            y = Qi @ G.T @ u
            if np.all(u >= -1e-12) and np.all(c - G @ y <= 1e-12):
                found.append((y, u))
    assert len(found) == 1
    return found[0]


def brute_force_rates(H, c):
    """min_{r >= 0} 1/2 r^T H r - c^T r, H positive definite: the support S with r_S = H_SS^-1 c_S >= 0 and
    gradient (H r - c)_i >= 0 off S."""
    N = len(c)
    found = []
    for size in range(N + 1):
        for S in combinations(range(N), size):
            S = list(S)
            r = np.zeros(N)
            if S:
                r[S] = np.linalg.solve(H[np.ix_(S, S)], c[S])
            g = H @ r - c
            if np.all(r >= -1e-12) and np.all(np.delete(g, S) >= -1e-12):
                found.append(r)
    assert len(found) == 1
    return found[0]


# --------------------------------------------------------------------------------------------- readout QP


@pytest.mark.parametrize("solver", SOLVERS)
def test_readout_matches_maxout_for_one_output(solver):
    F, G, T, _ = random_network(0, N=12, K=2, M=1)
    X = np.random.default_rng(1).uniform(-3, 3, size=(40, 2))
    sol = qp.readout_qp(F, G, T, X, Q=[[2.5]], solver=solver)
    np.testing.assert_allclose(sol.y, qp.maxout(X, F, G, T), rtol=0, atol=TOL[solver])
    assert sol.y.shape == (40, 1) and sol.u.shape == (40, 12) and sol.active.shape == (40, 12)
    np.testing.assert_allclose(qp.readout_qp(F, G, T, X[3], solver=solver).y, qp.maxout(X[3], F, G, T), atol=1e-6)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("M", [2, 3])
def test_readout_matches_brute_force_active_sets(seed, M):
    F, G, T, X = random_network(seed, N=8, K=3, M=M)
    rng = np.random.default_rng(100 + seed)
    B = rng.normal(size=(M, M))
    Q = B @ B.T + M * np.eye(M)
    sol = qp.readout_qp(F, G, T, X, Q=Q, solver="daqp")
    for b, x in enumerate(X):
        y, u = brute_force_readout(F, G, T, x, Q)
        np.testing.assert_allclose(sol.y[b], y, rtol=0, atol=1e-8)
        np.testing.assert_allclose(sol.u[b], u, rtol=0, atol=1e-8)
        np.testing.assert_array_equal(sol.active[b], u > 1e-9)


@pytest.mark.parametrize("solver", SOLVERS)
def test_readout_kkt_residuals(solver):
    F, G, T, X = random_network(5, N=30, K=2, M=2, positive=False)
    G[:, 0] = np.abs(G[:, 0]) + 0.1  # rows in an open half-space: feasible for every x
    Q = np.array([[2.0, 0.3], [0.3, 1.0]])
    sol = qp.readout_qp(F, G, T, X, Q=Q, solver=solver)
    slack = X @ F.T - sol.y @ G.T - T  # (B, N), <= 0
    tol = 1e-8 if solver == "daqp" else 1e-6
    assert np.abs(sol.y @ Q - sol.u @ G).max() <= tol  # stationarity Q y = G^T u
    assert slack.max() <= tol  # primal feasibility
    assert sol.u.min() >= 0  # dual feasibility
    assert np.abs(sol.u * slack).max() <= tol  # complementarity
    assert sol.active.any(axis=1).all()


def test_scipy_is_the_default_without_qpsolvers(monkeypatch):
    F, G, T, X = random_network(11, N=10, K=2, M=2)
    expected = qp.readout_qp(F, G, T, X, solver="daqp")
    monkeypatch.setattr(qp, "qpsolvers", None)
    assert qp.default_solver() == "scipy"
    sol = qp.readout_qp(F, G, T, X)
    assert sol.solver == "scipy"
    np.testing.assert_allclose(sol.y, expected.y, rtol=0, atol=1e-9)
    with pytest.raises(ValueError, match="solver='daqp' needs the packages qpsolvers and daqp"):
        qp.rates_qp(np.eye(2), np.ones(2), solver="daqp")


def test_readout_fallback_equals_qpsolvers():
    F, G, T, X = random_network(7, N=20, K=2, M=2)
    a = qp.readout_qp(F, G, T, X, solver="daqp")
    b = qp.readout_qp(F, G, T, X, solver="scipy")
    assert (a.solver, b.solver) == ("daqp", "scipy")
    np.testing.assert_allclose(b.y, a.y, rtol=0, atol=1e-7)
    np.testing.assert_allclose(b.u, a.u, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(b.active, a.active)


def test_midpoint_rule_shifts_maxout_by_half_a_spike():
    # M = 1, G = 1, D = s G^T, Omega = -G D: T_mid = T - s/2, so y*(T_mid) = maxout + s/2 wherever maxout > 0
    s = 0.2
    F, _, T, _ = random_network(3, N=12, K=1, M=1)
    G = np.ones((12, 1))
    T_mid = qp.midpoint_thresholds(T, -G @ (s * G.T))
    np.testing.assert_allclose(T_mid, T - s / 2, rtol=0, atol=1e-15)
    X = np.linspace(-2, 2, 41)[:, None]
    y, y_mid = qp.maxout(X, F, G, T), qp.maxout(X, F, G, T_mid)
    pos = y[:, 0] > 0
    np.testing.assert_allclose(y_mid[pos], y[pos] + s / 2, rtol=0, atol=1e-12)


# --------------------------------------------------------------------------------------------- rates QP


def soft_threshold_oracle(D, x, mu, nu):
    return np.maximum(0.0, (x @ D - nu / 2) / (1 + mu))


@pytest.mark.parametrize("solver", SOLVERS)
def test_rates_soft_threshold_for_identity_and_orthonormal_decoders(solver):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(10, 5))
    for D in (np.eye(5), np.linalg.qr(rng.normal(size=(5, 3)))[0]):
        for mu, nu in [(0.0, 0.0), (0.3, 0.0), (0.0, 0.4), (0.3, 0.4)]:
            r = qp.rates_qp(D, X, mu, nu, solver=solver)
            np.testing.assert_allclose(r, soft_threshold_oracle(D, X, mu, nu), rtol=0, atol=TOL[solver])


@pytest.mark.parametrize("solver", SOLVERS)
def test_rates_reduce_to_nnls(solver):
    rng = np.random.default_rng(4)
    D = rng.normal(size=(10, 6))  # full column rank: the minimiser is unique
    X = rng.normal(size=(5, 10))
    r = qp.rates_qp(D, X, solver=solver)
    np.testing.assert_allclose(r, np.array([nnls(D, x)[0] for x in X]), rtol=0, atol=TOL[solver])
    D = rng.normal(size=(2, 7))  # N > J: r is not unique, the readout D r is
    X = rng.normal(size=(5, 2))
    r = qp.rates_qp(D, X, solver=solver)
    assert r.min() >= 0
    np.testing.assert_allclose(r @ D.T, np.array([D @ nnls(D, x)[0] for x in X]), rtol=0, atol=10 * TOL[solver])


@pytest.mark.parametrize("seed", range(4))
def test_rates_match_brute_force_active_sets(seed):
    rng = np.random.default_rng(seed)
    D = rng.normal(size=(2, 8)) * 0.5
    mu, nu = 0.05, 0.1
    H = D.T @ D + mu * np.eye(8)
    for x in rng.normal(size=(3, 2)):
        oracle = brute_force_rates(H, D.T @ x - nu / 2)
        for solver in SOLVERS:
            np.testing.assert_allclose(qp.rates_qp(D, x, mu, nu, solver=solver), oracle, rtol=0, atol=1e-8)


@pytest.mark.parametrize("solver", SOLVERS)
def test_rates_kkt_residuals_and_loss_optimality(solver):
    rng = np.random.default_rng(6)
    D = rng.normal(size=(3, 20)) * 0.2
    X = rng.normal(size=(4, 3))
    mu, nu = 0.0, 0.05  # the singular-Hessian case (SciPy: SLSQP plus the exact support solve)
    R = qp.rates_qp(D, X, mu, nu, solver=solver)
    g = R @ (D.T @ D + mu * np.eye(20)) - (X @ D - nu / 2)  # gradient of the loss / 2
    assert R.min() >= 0
    assert g.min() >= -1e-7
    assert np.abs(R * g).max() <= 1e-7
    # same readout for both solvers even though r itself is not unique here
    np.testing.assert_allclose(R @ D.T, qp.rates_qp(D, X, mu, nu, solver="daqp") @ D.T, rtol=0, atol=1e-7)


def test_rates_fallback_equals_qpsolvers():
    rng = np.random.default_rng(8)
    D = rng.normal(size=(2, 16)) * 0.3
    X = rng.normal(size=(6, 2))
    for mu, nu in [(0.02, 0.0), (0.02, 0.1), (1e-3, 0.5)]:
        a = qp.rates_qp(D, X, mu, nu, solver="daqp")
        b = qp.rates_qp(D, X, mu, nu, solver="scipy")
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-8)


def test_rates_are_the_dual_with_midpoint_thresholds():
    # autoencoder: F = G = D^T, Omega = -D^T D (mu = 0), T = (|D_i|^2 + nu)/2, so T_mid = nu/2, and the dual
    # multipliers of readout_qp with T_mid are the rates of rates_qp (unique for full column rank D)
    rng = np.random.default_rng(9)
    D = rng.normal(size=(4, 3))
    nu = 0.3
    T = (np.sum(D**2, axis=0) + nu) / 2
    T_mid = qp.midpoint_thresholds(T, -D.T @ D)
    np.testing.assert_allclose(T_mid, nu / 2, rtol=0, atol=1e-14)
    X = rng.normal(size=(5, 4))
    sol = qp.readout_qp(D.T, D.T, T_mid, X)
    r = qp.rates_qp(D, X, 0.0, nu)
    np.testing.assert_allclose(sol.u, r, rtol=0, atol=1e-9)
    np.testing.assert_allclose(sol.y, r @ D.T, rtol=0, atol=1e-9)


# --------------------------------------------------------------------------------------------- feasibility


def test_feasibility_of_known_polytopes():
    # autoencoder bounding box around x: non-empty (and bounded)
    angles = np.linspace(0, 2 * np.pi, 6, endpoint=False)
    D = 0.1 * np.vstack([np.cos(angles), np.sin(angles)])
    T = np.sum(D**2, axis=0) / 2
    assert qp.is_feasible(D.T, D.T, T, np.array([[0.3, -0.2], [1.0, 2.0]]))
    # G >= 0: feasible for any x, whatever F and T
    F, G, T2, X = random_network(1, N=10, K=2, M=2)
    assert qp.is_feasible(F, G, T2 - 10.0, X)
    # y >= 1 and y <= -1: empty
    F1, G1, T1 = np.zeros((2, 1)), np.array([[1.0], [-1.0]]), np.array([-1.0, -1.0])
    assert not qp.is_feasible(F1, G1, T1, [0.0])
    # y >= x and y <= 1: empty only for x > 1
    F2, G2, T2 = np.array([[1.0], [0.0]]), np.array([[1.0], [-1.0]]), np.array([0.0, 1.0])
    assert qp.is_feasible(F2, G2, T2, [[0.5], [1.0]])
    with pytest.raises(ValueError, match=r"infeasible network.*1 input.*x\[1\]: neurons \[0, 1\]"):
        qp.check_feasible(F2, G2, T2, [[0.5], [1.5]])
    with pytest.raises(ValueError, match=r"neurons \[0, 1\]"):
        qp.readout_qp(F2, G2, T2, [[0.5], [1.5]])
    qp.check_feasible(F2, G2, T2, [0.5])


def test_infeasible_certificate_names_only_the_conflicting_neurons():
    # neurons 1 and 3 conflict (y >= 2 vs y <= 0); neurons 0 and 2 are harmless
    F = np.zeros((4, 1))
    G = np.array([[1.0], [1.0], [-1.0], [-1.0]])
    T = np.array([5.0, -2.0, 5.0, 0.0])
    with pytest.raises(ValueError, match=r"x: neurons \[1, 3\]"):
        qp.check_feasible(F, G, T, [0.0])


# --------------------------------------------------------------------------------------------- polytope


def assert_valid_vertices(V, A, b, min_active=2):
    slack = V @ A.T - b  # (V, n) <= 0
    assert slack.max() <= 1e-9
    assert np.all(np.sum(np.abs(slack) <= 1e-9, axis=1) >= min_active)
    x, y = V[:, 0], V[:, 1]
    assert 0.5 * np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y) > 0  # counter-clockwise


def test_polytope_vertices_of_the_bounding_box():
    angles = np.linspace(0, 2 * np.pi, 7, endpoint=False)
    D = 0.1 * np.vstack([np.cos(angles), np.sin(angles)])
    mu, nu = 0.01, 0.02
    T = (np.sum(D**2, axis=0) + mu + nu) / 2
    x = np.array([0.4, -0.7])
    V = qp.polytope(D.T, D.T, T, x)
    assert V.shape == (7, 2)
    assert_valid_vertices(V, -D.T, T - D.T @ x)
    np.testing.assert_allclose(V.mean(axis=0), x, atol=1e-12)  # a regular heptagon centred on the input


def test_polytope_unbounded_needs_bounds():
    F, G, T, X = random_network(2, N=6, K=2, M=2)  # G > 0: an unbounded region
    with pytest.raises(ValueError, match=r"unbounded.*bounds"):
        qp.polytope(F, G, T, X[0])
    lo, hi = np.array([-5.0, -5.0]), np.array([5.0, 5.0])
    V = qp.polytope(F, G, T, X[0], bounds=(lo, hi))
    A = np.vstack([-G, np.eye(2), -np.eye(2)])
    b = np.r_[T - F @ X[0], hi, -lo]
    assert_valid_vertices(V, A, b)


# --------------------------------------------------------------------------------------------- bad input


def test_bad_input_names_the_argument():
    F, G, T, X = random_network(0, N=5, K=2, M=2)
    with pytest.raises(ValueError, match="G must have one row per neuron"):
        qp.readout_qp(F, G[:4], T, X)
    with pytest.raises(ValueError, match=r"T must have shape \(5,\)"):
        qp.readout_qp(F, G, T[:3], X)
    with pytest.raises(ValueError, match="x must have last dimension K = 2"):
        qp.readout_qp(F, G, T, X[:, :1])
    with pytest.raises(ValueError, match="x has 1 non-finite"):
        qp.readout_qp(F, G, T, np.array([np.nan, 1.0]))
    with pytest.raises(ValueError, match="Q must be positive definite"):
        qp.readout_qp(F, G, T, X, Q=-np.eye(2))
    with pytest.raises(ValueError, match=r"Q must have shape \(2, 2\)"):
        qp.readout_qp(F, G, T, X, Q=np.eye(3))
    with pytest.raises(ValueError, match="solver must be"):
        qp.readout_qp(F, G, T, X, solver="cvxopt")
    with pytest.raises(ValueError, match="G must have one column"):
        qp.maxout(X, F, G, T)
    with pytest.raises(ValueError, match=r"G must be > 0 for maxout \(neurons \[1\]"):
        qp.maxout(X, F, np.array([1.0, -1.0, 1.0, 1.0, 1.0]), T)
    with pytest.raises(ValueError, match="fast must have shape"):
        qp.midpoint_thresholds(T, np.eye(4))
    with pytest.raises(ValueError, match="G must have 2 columns"):
        qp.polytope(F, G[:, :1], T, X[0])
    with pytest.raises(ValueError, match="x must be one input"):
        qp.polytope(F, G, T, X)
    D = np.eye(3)
    with pytest.raises(ValueError, match="mu must be >= 0"):
        qp.rates_qp(D, np.ones(3), mu=-0.1)
    with pytest.raises(ValueError, match="nu must be >= 0"):
        qp.rates_qp(D, np.ones(3), nu=-1.0)
    with pytest.raises(ValueError, match="nu must be finite"):
        qp.rates_qp(D, np.ones(3), nu=np.inf)
    with pytest.raises(ValueError, match="x must have last dimension J = 3"):
        qp.rates_qp(D, np.ones(2))
    with pytest.raises(ValueError, match="D has 1 non-finite"):
        qp.rates_qp(np.array([[1.0, np.inf]]), np.ones(1))
    with pytest.raises(TypeError, match="mu must be a real number"):
        qp.rates_qp(D, np.ones(3), mu="0.1")
