"""Spike coding networks as quadratic programs (Mancoo, Keemink & Machens, NeurIPS 2020).

Each neuron i is a half-space constraint on the readout y = D r:  F_i x - G_i y <= T_i.  The leak pulls y
toward 0 and spikes push it back inside the polytope, so the readout follows

    y*(x) = argmin_y 1/2 y^T Q y   s.t.   F x - G y <= T,                                     (primal)
    u*(x) = argmin_{u >= 0} 1/2 u^T G Q^-1 G^T u - u^T (F x - T),   y* = Q^-1 G^T u*,        (dual)

with the rates (times the spike size s, D = s G^T for Q = I) as the Lagrange multipliers u.  Time averages
follow the midpoint rule: they solve the QP with T_mid = T + diag(Omega)/2.  For the autoencoder (F = G = D^T,
Omega = -(D^T D + mu I), T_i = (|D_i|^2 + mu + nu)/2, so T_mid = nu/2) the rate-level statement is
``rates_qp``:  r_bar ~ argmin_{r >= 0} |x - D r|^2 + mu |r|^2 + nu |r|_1.

Solvers: ``qpsolvers`` with the bundled dual active-set solver DAQP; SciPy (``nnls``, SLSQP) when qpsolvers
is missing or ``solver="scipy"``.  Feasibility (a non-empty polytope) is checked with ``scipy.optimize.linprog``.
The solvers are pure NumPy/SciPy on arrays.  The supervised rule of the authors' code (``convex_fit_update``,
``fit_convex``) and the spiking readout (``readout_trajectory``, ``spiking_readout``) run the network with
``wrec.spiking.scn``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np
from scipy.linalg import cholesky, solve_triangular
from scipy.optimize import linprog, minimize, nnls
from scipy.spatial import HalfspaceIntersection

from wrec import _checks, dynamics
from wrec import checkpoint as _ckpt
from wrec.spiking.scn import SCN, SCNParams, SCNState, SCNWeights, initial_state, input_current, simulate, step

qpsolvers: ModuleType | None
try:  # qpsolvers is a declared dependency; the SciPy path keeps the module usable without it
    import qpsolvers
except ImportError:  # pragma: no cover - exercised only where qpsolvers is not installed
    qpsolvers = None

__all__ = [
    "SCHEDULES",
    "ConvexInput",
    "ConvexLearning",
    "ConvexState",
    "ConvexTrace",
    "QPSolution",
    "check_feasible",
    "convex_fit_update",
    "convex_step",
    "default_solver",
    "fit_convex",
    "initial_parameters",
    "is_feasible",
    "maxout",
    "midpoint_thresholds",
    "polytope",
    "rates_qp",
    "readout_qp",
    "readout_trajectory",
    "relative_rmse",
    "spiking_readout",
]

_ACTIVE_TOL = 1e-7


@dataclass(frozen=True)
class QPSolution:
    """Solution of the readout QP for one input or a batch.

    Shape: ``y`` (M,) or (B, M), the optimal readout y*; ``u`` (N,) or (B, N), the Lagrange multipliers
    (u = s r for D = s G^T); ``active`` (N,) or (B, N) bool, neurons whose constraint holds with equality
    (|F_i x - G_i y - T_i| <= 1e-7 (1 + |T|_inf)); ``solver`` the back end used ("daqp" or "scipy").
    """

    y: np.ndarray
    u: np.ndarray
    active: np.ndarray
    solver: str


def default_solver() -> str:
    """``"daqp"`` when qpsolvers with DAQP is importable, else ``"scipy"``."""
    if qpsolvers is not None and "daqp" in qpsolvers.available_solvers:
        return "daqp"
    return "scipy"


def _daqp() -> ModuleType:
    """qpsolvers, for the "daqp" solver (``_solver`` lets it be chosen only when qpsolvers is there)."""
    if qpsolvers is None:
        raise ValueError("solver='daqp' needs the packages qpsolvers and daqp; install them or use solver='scipy'")
    return qpsolvers


def _solver(solver: str | None) -> str:
    if solver is None:
        return default_solver()
    if solver not in ("daqp", "scipy"):
        raise ValueError(f"solver must be 'daqp', 'scipy' or None, got {solver!r}")
    if solver == "daqp" and default_solver() != "daqp":
        raise ValueError("solver='daqp' needs the packages qpsolvers and daqp; install them or use solver='scipy'")
    return solver


def _network(F: object, G: object, T: object, x: object) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, bool]:
    """Validated F (N, K), G (N, M), T (N,), x as (B, K), and whether x was batched."""
    F = _checks.array(F, "F", ndim=2)
    G = _checks.array(G, "G", ndim=(1, 2))
    if G.ndim == 1:
        G = G[:, None]
    T = _checks.array(T, "T", ndim=1)
    x = _checks.array(x, "x", ndim=(1, 2))
    N = F.shape[0]
    if N == 0:
        raise ValueError(f"F must have at least one row (neuron), got shape {F.shape}")
    if G.shape[0] != N:
        raise ValueError(f"G must have one row per neuron, N = {N} (rows of F), got shape {G.shape}")
    if T.shape != (N,):
        raise ValueError(f"T must have shape ({N},) (one threshold per row of F), got shape {T.shape}")
    if x.shape[-1] != F.shape[1]:
        raise ValueError(f"x must have last dimension K = {F.shape[1]} (columns of F), got shape {x.shape}")
    return F, G, T, np.atleast_2d(x), x.ndim == 2


def _metric(Q: object, M: int) -> np.ndarray:
    if Q is None:
        return np.eye(M)
    Q = _checks.array(Q, "Q", ndim=2)
    if Q.shape != (M, M):
        raise ValueError(f"Q must have shape ({M}, {M}) (columns of G), got shape {Q.shape}")
    if not np.allclose(Q, Q.T, rtol=1e-12, atol=1e-12 * np.abs(Q).max()):
        raise ValueError("Q must be symmetric")
    try:
        cholesky(Q, lower=True)
    except np.linalg.LinAlgError:
        raise ValueError("Q must be positive definite") from None
    return Q


def midpoint_thresholds(T: object, fast: object) -> np.ndarray:
    """T_mid = T + diag(Omega)/2: active voltages oscillate between T and T + Omega_ii, so time averages solve
    the QP with T_mid (Mancoo et al. 2020).  Shape: T (N,), fast Omega (N, N) -> (N,)."""
    T = _checks.array(T, "T", ndim=1)
    fast = _checks.square(fast, "fast")
    if fast.shape[0] != T.shape[0]:
        raise ValueError(f"fast must have shape ({T.shape[0]}, {T.shape[0]}) to match T, got shape {fast.shape}")
    return T + 0.5 * np.diag(fast)


def maxout(x: object, F: object, G: object, T: object) -> np.ndarray:
    """The convex piecewise-linear map of a one-output network (M = 1, G > 0):

        y*(x) = max(0, max_i (F_i x - T_i) / G_i),

    the solution of the readout QP for any Q > 0.  Shape: x (K,) or (B, K); F (N, K); G (N,) or (N, 1);
    T (N,) -> (1,) or (B, 1), like ``readout_qp(...).y``.
    """
    F, G, T, X, batched = _network(F, G, T, x)
    if G.shape[1] != 1:
        raise ValueError(f"G must have one column (M = 1) for maxout, got shape {G.shape}")
    if np.any(G <= 0):
        raise ValueError(f"G must be > 0 for maxout (neurons {np.flatnonzero(G[:, 0] <= 0).tolist()} are not)")
    y = np.maximum(0.0, ((X @ F.T - T) / G[:, 0]).max(axis=1))[:, None]  # (B, 1)
    return y if batched else y[0]


def _farkas(F: np.ndarray, G: np.ndarray, T: np.ndarray, x: np.ndarray) -> np.ndarray | None:
    """Neurons of a Farkas certificate that {y : G y >= F x - T} is empty, or None if it is not empty.

    The polytope is empty iff some u >= 0 has G^T u = 0 and u^T (F x - T) > 0; we maximise u^T (F x - T)
    over such u with sum(u) <= 1, and the support of the maximiser names the conflicting neurons.
    """
    c = F @ x - T
    N, M = G.shape
    res = linprog(-c, A_ub=np.ones((1, N)), b_ub=[1.0], A_eq=G.T, b_eq=np.zeros(M), bounds=(0, None), method="highs")
    if res.status != 0:  # pragma: no cover - the LP is bounded and u = 0 is feasible
        raise RuntimeError(f"linprog failed on the feasibility certificate: {res.message}")
    if -res.fun <= 1e-9 * (1.0 + np.abs(c).max()):
        return None
    return np.flatnonzero(res.x > 1e-9)


def _open_halfspace(G: np.ndarray) -> bool:
    """Whether all rows of G lie in an open half-space (some v with G v > 0): then every x is feasible."""
    N, M = G.shape
    # maximise t subject to G v >= t, -1 <= v <= 1, t <= 1
    A = np.hstack([-G, np.ones((N, 1))])
    res = linprog(
        np.r_[np.zeros(M), -1.0], A_ub=A, b_ub=np.zeros(N), bounds=[(-1, 1)] * M + [(None, 1)], method="highs"
    )
    return res.status == 0 and -res.fun > 1e-12


def _infeasible(F: np.ndarray, G: np.ndarray, T: np.ndarray, X: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """(input index, conflicting neurons) for every row of X whose polytope is empty."""
    if _open_halfspace(G):
        return []
    bad = []
    for b, xb in enumerate(X):
        neurons = _farkas(F, G, T, xb)
        if neurons is not None:
            bad.append((b, neurons))
    return bad


def check_feasible(F: object, G: object, T: object, x: object) -> None:
    """Raise ``ValueError`` naming the inputs and neurons for which the polytope {y : F x - G y <= T} is empty.

    Uses the sufficient condition (rows of G in an open half-space) first, then one ``linprog`` (HiGHS)
    Farkas certificate per input.  Shape: F (N, K), G (N, M), T (N,), x (K,) or (B, K).
    """
    F, G, T, X, batched = _network(F, G, T, x)
    bad = _infeasible(F, G, T, X)
    if bad:
        where = "; ".join(f"{'x[' + str(b) + ']' if batched else 'x'}: neurons {n.tolist()}" for b, n in bad[:10])
        more = f" (and {len(bad) - 10} more inputs)" if len(bad) > 10 else ""
        raise ValueError(
            f"infeasible network: the polytope F x - G y <= T is empty for {len(bad)} input(s) ({where}{more}); "
            "the named neurons' constraints contradict each other. Choose G with rows in an open half-space "
            "(e.g. G >= 0) or raise those thresholds T"
        )


def is_feasible(F: object, G: object, T: object, x: object) -> bool:
    """Whether the polytope {y : F x - G y <= T} is non-empty for every input (``check_feasible`` without raising
    on infeasibility; bad shapes and values still raise).  Shape: F (N, K), G (N, M), T (N,), x (K,) or (B, K)."""
    F, G, T, X, _ = _network(F, G, T, x)
    return not _infeasible(F, G, T, X)


def _readout_one(F: np.ndarray, G: np.ndarray, T: np.ndarray, Q: np.ndarray, x: np.ndarray, solver: str,
                 ) -> tuple[np.ndarray, np.ndarray] | None:
    """(y*, u*) for one input on validated arrays, or None when the solver fails."""
    h = T - F @ x  # -G y <= T - F x
    if solver == "daqp":
        qps = _daqp()
        sol = qps.solve_problem(qps.Problem(Q, np.zeros(Q.shape[0]), -G, h), solver="daqp")
        if not sol.found:
            return None
        return sol.x, np.maximum(sol.z, 0.0)
    res = minimize(
        lambda y: 0.5 * y @ Q @ y,
        np.zeros(Q.shape[0]),
        jac=lambda y: Q @ y,
        constraints=[{"type": "ineq", "fun": lambda y: h + G @ y, "jac": lambda y: G}],
        method="SLSQP",
        options={"ftol": 1e-12, "maxiter": 1000},
    )
    if not res.success:
        return None
    scale = 1.0 + np.abs(h).max()
    act = np.flatnonzero(h + G @ res.x <= 1e-6 * scale)
    u = np.zeros(G.shape[0])
    if act.size == 0:
        return np.zeros_like(res.x), u
    # polish: the exact KKT point of the active set SLSQP found, Q y = G_A^T u_A, G_A y = -h_A
    Qi_GT = np.linalg.solve(Q, G[act].T)
    u_act = np.linalg.lstsq(G[act] @ Qi_GT, -h[act], rcond=None)[0]
    y = Qi_GT @ u_act
    if u_act.min() >= -1e-12 * scale and (h + G @ y).min() >= -1e-12 * scale:
        u[act] = np.maximum(u_act, 0.0)
        return y, u
    y = res.x  # degenerate active set: keep SLSQP's point, multipliers by NNLS on the active constraints
    u[act] = nnls(G[act].T, Q @ y)[0]
    return y, u


def readout_qp(
    F: object, G: object, T: object, x: object, Q: object = None, *, solver: str | None = None
) -> QPSolution:
    """The readout y*(x) = argmin_y 1/2 y^T Q y  s.t.  F x - G y <= T, with its multipliers u (Mancoo et al. 2020).

    KKT: Q y = G^T u, u >= 0, F x - G y <= T, u_i (F_i x - G_i y - T_i) = 0; u = s r for D = s G^T, Q = I.
    ``solver``: "daqp" (qpsolvers + DAQP, the default when installed) or "scipy" (SLSQP, multipliers by NNLS on
    the active set).  An empty polytope raises ``ValueError`` naming the inputs and neurons (``check_feasible``).

    Shape: F (N, K); G (N, M); T (N,); x (K,) or (B, K); Q (M, M) positive definite, default I.
    Returns ``QPSolution`` with y (M,) or (B, M), u and active (N,) or (B, N).
    """
    F, G, T, X, batched = _network(F, G, T, x)
    Q = _metric(Q, G.shape[1])
    solver = _solver(solver)
    Y = np.empty((X.shape[0], G.shape[1]))
    U = np.empty((X.shape[0], G.shape[0]))
    for b, xb in enumerate(X):
        out = _readout_one(F, G, T, Q, xb, solver)
        if out is None:
            check_feasible(F, G, T, x)  # raises naming the inputs and neurons when infeasible
            raise RuntimeError(f"the {solver} QP solver failed on input {b} although the polytope is non-empty")
        Y[b], U[b] = out
    slack = X @ F.T - Y @ G.T - T  # (B, N), <= 0 when feasible
    active = np.abs(slack) <= _ACTIVE_TOL * (1.0 + np.abs(T).max())
    if not batched:
        Y, U, active = Y[0], U[0], active[0]
    return QPSolution(y=Y, u=U, active=active, solver=solver)


def _nonneg_ls(H: np.ndarray, c: np.ndarray, D: np.ndarray, x: np.ndarray, mu: float, nu: float) -> np.ndarray:
    """SciPy path of min_{r >= 0} 1/2 r^T H r - c^T r with H = D^T D + mu I, c = D^T x - nu/2, as an NNLS."""
    if nu == 0.0:  # |[D; sqrt(mu) I] r - [x; 0]|^2
        A = np.vstack([D, np.sqrt(mu) * np.eye(D.shape[1])]) if mu > 0 else D
        return nnls(A, np.r_[x, np.zeros(A.shape[0] - D.shape[0])])[0]
    try:  # H = L L^T positive definite: |L^T r - L^-1 c|^2 = r^T H r - 2 c^T r + const
        L = cholesky(H, lower=True)
    except np.linalg.LinAlgError:
        L = None
    if L is not None and np.linalg.cond(L) < 1e7:
        return nnls(L.T, solve_triangular(L, c, lower=True))[0]
    # mu = 0, nu > 0 and D rank-deficient: H singular, no exact NNLS form; box-constrained SLSQP, then the exact
    # equality solve on the support it found (the minimiser is not unique, the readout D r is)
    res = minimize(
        lambda r: 0.5 * r @ H @ r - c @ r,
        np.zeros(H.shape[0]),
        jac=lambda r: H @ r - c,
        bounds=[(0, None)] * H.shape[0],
        method="SLSQP",
        options={"ftol": 1e-15, "maxiter": 1000},
    )
    r = np.maximum(res.x, 0.0)
    support = np.flatnonzero(r > 1e-9)
    if support.size:
        sol = np.linalg.lstsq(H[np.ix_(support, support)], c[support], rcond=None)[0]
        if np.all(sol >= 0):
            r = np.zeros_like(r)
            r[support] = sol
    return r


def rates_qp(D: object, x: object, mu: float = 0.0, nu: float = 0.0, *, solver: str | None = None) -> np.ndarray:
    """The rates a spike coding autoencoder's mean rates follow (the midpoint rule of Mancoo et al. 2020):

        r*(x) = argmin_{r >= 0} |x - D r|^2 + mu |r|^2 + nu |r|_1
              = argmin_{r >= 0} 1/2 r^T (D^T D + mu I) r - (D^T x - nu/2)^T r,

    i.e. the dual QP with G = F = D^T, Hessian -Omega = D^T D + mu I and midpoint thresholds T_mid = nu/2.
    Reduces to NNLS for mu = nu = 0 and to max(0, (x - nu/2)/(1 + mu)) for D = I.  The readout is D r*.
    ``solver``: "daqp" (qpsolvers + DAQP, default when installed) or "scipy" (NNLS; SLSQP only when mu = 0,
    nu > 0 and D^T D is singular, where r* is not unique).

    Shape: D (J, N); x (J,) or (B, J) -> r (N,) or (B, N).
    """
    D = _checks.array(D, "D", ndim=2)
    x = _checks.array(x, "x", ndim=(1, 2))
    mu = _checks.real(mu, "mu", low=0.0)
    nu = _checks.real(nu, "nu", low=0.0)
    if D.shape[1] == 0:
        raise ValueError(f"D must have at least one column (neuron), got shape {D.shape}")
    if x.shape[-1] != D.shape[0]:
        raise ValueError(f"x must have last dimension J = {D.shape[0]} (rows of D), got shape {x.shape}")
    solver = _solver(solver)
    X = np.atleast_2d(x)
    N = D.shape[1]
    H = D.T @ D + mu * np.eye(N)
    R = np.empty((X.shape[0], N))
    for b, xb in enumerate(X):
        c = D.T @ xb - 0.5 * nu
        if solver == "daqp":
            qps = _daqp()
            sol = qps.solve_problem(qps.Problem(H, -c, lb=np.zeros(N)), solver="daqp")
            if not sol.found:  # pragma: no cover - the problem is bounded below and r = 0 is feasible
                raise RuntimeError(f"DAQP failed on input {b}")
            R[b] = np.maximum(sol.x, 0.0)
        else:
            R[b] = _nonneg_ls(H, c, D, xb, mu, nu)
    return R if x.ndim == 2 else R[0]


def polytope(F: object, G: object, T: object, x: object, *, bounds: tuple[object, object] | None = None) -> np.ndarray:
    """Vertices, counter-clockwise, of the 2-D "bounding box" {y in R^2 : F x - G y <= T} for one input x
    (``scipy.spatial.HalfspaceIntersection``), for plotting the readout against the constraints.

    ``bounds = (lo, hi)`` (each (2,)) clips the polytope to lo <= y <= hi; an unbounded polytope needs it.
    Raises ``ValueError`` when the (clipped) polytope is empty or has no interior.

    Shape: F (N, K); G (N, 2); T (N,); x (K,) -> (V, 2).
    """
    F, G, T, X, batched = _network(F, G, T, x)
    if batched:
        raise ValueError(f"x must be one input of shape ({F.shape[1]},) for polytope, got shape {X.shape}")
    if G.shape[1] != 2:
        raise ValueError(f"G must have 2 columns (a 2-D readout) for polytope, got shape {G.shape}")
    A, b = _clipped(-G, T - F @ X[0], bounds)  # A y <= b
    check_feasible(F, G, T, X[0])
    _check_bounded(A, b)
    # Chebyshev centre: max rho s.t. A_i y + rho |A_i| <= b_i, an interior point for qhull
    norms = np.linalg.norm(A, axis=1)
    res = linprog(
        np.r_[0.0, 0.0, -1.0], A_ub=np.c_[A, norms], b_ub=b, bounds=[(None, None)] * 2 + [(0, None)], method="highs"
    )
    if res.status != 0 or res.x[2] <= 1e-12:
        raise ValueError("the polytope has no interior for this x (it is empty, a segment or a point)")
    V = _distinct(HalfspaceIntersection(np.c_[A, -b], res.x[:2]).intersections)
    centre = V.mean(axis=0)
    return V[np.argsort(np.arctan2(V[:, 1] - centre[1], V[:, 0] - centre[0]))]


def _clipped(A: np.ndarray, b: np.ndarray, bounds: tuple[object, object] | None) -> tuple[np.ndarray, np.ndarray]:
    """The 2-D half-planes A y <= b, with lo <= y <= hi added for ``bounds = (lo, hi)`` (``polytope``'s)."""
    if bounds is None:
        return A, b
    lo = _checks.array(bounds[0], "bounds[0]", ndim=1)
    hi = _checks.array(bounds[1], "bounds[1]", ndim=1)
    if lo.shape != (2,) or hi.shape != (2,) or np.any(lo >= hi):
        raise ValueError(f"bounds must be (lo, hi) with two entries each and lo < hi, got {bounds}")
    return np.vstack([A, np.eye(2), -np.eye(2)]), np.r_[b, hi, -lo]


def _check_bounded(A: np.ndarray, b: np.ndarray) -> None:
    """ValueError unless {y : A y <= b} is bounded, i.e. the min and max of each coordinate are finite."""
    for k in range(2):
        for sign in (1.0, -1.0):
            res = linprog(sign * np.eye(2)[k], A_ub=A, b_ub=b, bounds=(None, None), method="highs")
            if res.status == 3:
                raise ValueError("the polytope is unbounded for this x; pass bounds=(lo, hi) to clip it for plotting")


def _distinct(V: np.ndarray) -> np.ndarray:
    """The vertices V (n, 2) without repeats: qhull gives a degenerate vertex (more than two constraints through a
    point) more than once."""
    scale = 1.0 + np.abs(V).max()
    keep: list[np.ndarray] = []
    for v in V:
        if all(np.linalg.norm(v - w) > 1e-9 * scale for w in keep):
            keep.append(v)
    return np.array(keep)


# ---------------------------------------------------------------------------------- the network that spikes

_BIAS = 5.0  # least T + b of the simulator's thresholds (see _bias)
_READOUT_CHUNK = 2_000_000  # trials x steps x neurons of r held at once by spiking_readout


def _bias(T: np.ndarray) -> float:
    """The weight b of a constant extra input x_{K+1} = 1: ``scn.SCNWeights`` needs thresholds > 0, the convex view
    does not (the paper draws T ~ U(-1, 1)), and F~ = [F, b], T~ = T + b give F~ [x; 1] - G y > T~ exactly when
    F x - G y > T: the same network, with the voltages shifted by b."""
    return _BIAS + max(0.0, -float(T.min()))


def _scn_weights(F: np.ndarray, T: np.ndarray, fast: np.ndarray, bias: float) -> SCNWeights:
    return SCNWeights(F=np.column_stack([F, np.full(F.shape[0], bias)]), fast=fast, T=T + bias)


def _fast(G: np.ndarray, D: np.ndarray, mu: float) -> np.ndarray:
    """Omega = -G D - mu I: a spike of k moves y by D_k, hence every V_i by -G_i D_k (and its own by -mu)."""
    return -G @ D - mu * np.eye(G.shape[0])


def _augmented_input(X: np.ndarray, n_steps: int, onset_step: int) -> np.ndarray:
    """x~_t = [x 1{t >= onset_step}, 1] for t = 0..n_steps: (B, n_steps + 1, K + 1)."""
    B, K = X.shape
    x = np.zeros((B, n_steps + 1, K + 1))
    x[:, onset_step:, :K] = X[:, None, :]
    x[:, :, K] = 1.0  # its weight b sits in F~
    return x


def readout_trajectory(
    F: object, G: object, T: object, x: object, *, spike_size: float, leak: float, dt: float, duration: float,
    onset: float = 0.0, mu: float = 0.0,
) -> np.ndarray:
    """The readout y(t) = D r(t) of the spiking network of the QP (D = s G^T, Omega = -G D - mu I;
    Mancoo et al. 2020) under
    a constant input x switched on at ``onset`` (0 before), simulated by ``scn.simulate`` in sequential mode from
    V_0 = F x_0, r_0 = 0.  At the end of each step V = F x - G y - mu r exactly, so y(t) stays in the polytope
    F x - G y - mu r <= T; its time average follows y*(T_mid) (``midpoint_thresholds``).

    Shape: F (N, K); G (N, M); T (N,); x (K,) or (B, K) -> y (S, M) or (B, S, M), S = round(duration/dt), index t
    the readout at time (t + 1) dt.
    """
    F, G, T, X, batched = _network(F, G, T, x)
    s = _checks.real(spike_size, "spike_size", low=0.0, low_open=True)
    mu = _checks.real(mu, "mu", low=0.0)
    n_steps, onset_step = _steps(duration, onset, dt)
    params = SCNParams(leak=leak, dt=dt, mu=mu)
    D = s * G.T
    bias = _bias(T)
    w = _scn_weights(F, T, _fast(G, D, mu), bias)
    xa = _augmented_input(X, n_steps, onset_step)
    run = simulate(w, input_current(xa, params.leak, params.dt), params, x0=xa[:, 0], record=("r",))
    y = run.recorded("r") @ D.T
    return y if batched else y[0]


def spiking_readout(
    F: object, G: object, T: object, x: object, *, spike_size: float, leak: float = 2.0, dt: float = 3e-3,
    duration: float = 4.0, onset: float = 0.5, average_from: float = 2.0, mu: float = 0.0,
) -> np.ndarray:
    """The time-averaged readout y_bar = mean of D r(t) over t >= ``average_from`` (to ``duration``) of the spiking
    network at each constant input x (``readout_trajectory``); defaults are the trial protocol of Mancoo et al.'s
    Fig. 3 code (lambda = 2, dt = 3e-3, 4 s trials, input on from 0.5 s) and the authors' averaging window.  By
    the midpoint rule y_bar ~ y*(T_mid); for M = 1, G = 1 that is maxout + s/2.

    Shape: F (N, K); G (N, M); T (N,); x (K,) or (B, K) -> (M,) or (B, M).
    """
    F, G, T, X, batched = _network(F, G, T, x)
    n_steps, _ = _steps(duration, onset, dt)
    first = round(_checks.real(average_from, "average_from", low=0.0) / dt)
    if first >= n_steps:
        raise ValueError(f"average_from must be < duration = {duration}, got {average_from}")
    chunk = max(1, _READOUT_CHUNK // (n_steps * F.shape[0]))
    out = np.empty((X.shape[0], G.shape[1]))
    for lo in range(0, X.shape[0], chunk):
        y = readout_trajectory(F, G, T, X[lo:lo + chunk], spike_size=spike_size, leak=leak, dt=dt,
                               duration=duration, onset=onset, mu=mu)
        out[lo:lo + chunk] = y[:, max(first - 1, 0):].mean(axis=1)  # y[:, t] is the readout at step t + 1
    return out if batched else out[0]


def _steps(duration: float, onset: float, dt: float) -> tuple[int, int]:
    dt = _checks.real(dt, "dt", low=0.0, low_open=True)
    duration = _checks.real(duration, "duration", low=0.0, low_open=True)
    onset = _checks.real(onset, "onset", low=0.0)
    n_steps = round(duration / dt)
    onset_step = round(onset / dt)
    if n_steps < 1 or onset_step >= n_steps:
        raise ValueError(f"need 0 <= onset < duration and duration >= dt, got onset={onset}, duration={duration}, "
                         f"dt={dt}")
    return n_steps, onset_step


# ------------------------------------------------------------------------------------- supervised learning


def convex_fit_update(
    F: object, T: object, G: object, x: object, y_target: object, k: int, alpha_T: float, alpha_F: float
) -> tuple[np.ndarray, np.ndarray]:
    """The supervised rule of Mancoo et al. (2020)'s code at a spike of neuron k, with input x and target y_t:

        e_k = F_k x - T_k - G_k y_t,   T_k <- T_k + alpha_T e_k,   F_k <- F_k - alpha_F e_k x,

    a gradient step on e_k^2 / 2 that moves neuron k's constraint boundary toward the point (x, y_t).
    Pure: new arrays, only row k of F and entry k of T change.

    Shape: F (N, K); T (N,); G (N, M) or (N,) (M = 1); x (K,); y_target (M,) or a number (M = 1) -> (F, T).
    """
    F = _checks.array(F, "F", ndim=2)
    T = _checks.array(T, "T", ndim=1)
    G = _checks.array(G, "G", ndim=(1, 2))
    G = G[:, None] if G.ndim == 1 else G
    N, K = F.shape
    if T.shape != (N,):
        raise ValueError(f"T must have shape ({N},) (one threshold per row of F), got shape {T.shape}")
    if G.shape[0] != N:
        raise ValueError(f"G must have one row per neuron, N = {N} (rows of F), got shape {G.shape}")
    x = _checks.array(x, "x", ndim=1)
    if x.shape != (K,):
        raise ValueError(f"x must have shape ({K},) (columns of F), got shape {x.shape}")
    target = _checks.array(y_target, "y_target", ndim=(0, 1))
    y = target.reshape(-1)
    if y.shape != (G.shape[1],):
        raise ValueError(f"y_target must have shape ({G.shape[1]},) (columns of G), got shape {target.shape}")
    k = _checks.integer(k, "k", low=0, high=N - 1)
    alpha_T = _checks.real(alpha_T, "alpha_T", low=0.0)
    alpha_F = _checks.real(alpha_F, "alpha_F", low=0.0)
    e = F[k] @ x - T[k] - G[k] @ y
    F, T = F.copy(), T.copy()
    T[k] += alpha_T * e
    F[k] -= alpha_F * e * x
    return F, T


SCHEDULES = ("parallel", "shuffled")


@dataclass(frozen=True)
class ConvexLearning:
    """Supervised learning of the convex map y = scale |x|^2 by a spiking network (Mancoo, Keemink & Machens,
    NeurIPS 2020).

    The network: N neurons, K inputs, one output (M = 1), G = 1, D = s G^T, Omega = -G D (mu = 0), so that
    y*(x) = ``maxout`` = max(0, max_i F_i x - T_i).  Training: ``n_train`` points per axis on [-x_max, x_max]^K,
    one trial of ``duration`` s per point, input 0 until ``onset`` then the constant x; ``convex_fit_update`` at
    every spike from ``learn_from`` on, with alpha_T, alpha_F times exp(-decay epoch) in epoch 1, 2, ...; every
    step after ``learn_from``, T -= dt leak_T.  Defaults: our 1-D problem sized for a CPU (K = 1, N = 12, s = 0.2,
    x^2 on [-2, 2] at 41 points, lambda = 2, dt = 3e-3, 4 s trials, alpha = 1e-2, 30 epochs); ``paraboloid()`` is
    Fig. 3.

    Choices the paper leaves open (ours, stated): initial F ~ N(0, ``init_F_std``^2) and T ~ U(``init_T``) as in the
    authors' Fig. 3 code; the readout average from ``average_from`` = 2 s (their window); the test error is the
    relative RMSE sqrt(mean (maxout - y)^2 / mean y^2) on ``n_test`` points per axis.

    ``schedule``: ``"parallel"`` (default) runs an epoch's trials at once, as independent trials on the batch axis
    of ``scn.step`` sharing F and T: every spike of any trial updates them at once (in trial order within a
    step), so an epoch is one 4 s simulation of B trials; the threshold drift is B dt leak_T per step (the same
    per epoch as B trials in a row).  ``"shuffled"`` is the authors' loop: one trial after another in a fresh
    random order each epoch.  Both apply the same rule to the same spikes' errors; they differ in the order of
    the updates (interleaved or trial by trial), which is the rule's stochastic-approximation order, not its
    fixed point.
    """

    n: int = 12
    n_in: int = 1
    spike_size: float = 0.2
    scale: float = 1.0
    x_max: float = 2.0
    n_train: int = 41
    n_test: int = 401
    leak: float = 2.0
    dt: float = 3e-3
    duration: float = 4.0
    onset: float = 0.5
    learn_from: float = 1.0
    average_from: float = 2.0
    alpha_T: float = 1e-2
    alpha_F: float = 1e-2
    decay: float = 1e-4
    leak_T: float = 0.0
    init_F_std: float = 1.0
    init_T: tuple[float, float] = (-1.0, 1.0)
    epochs: int = 30
    schedule: str = "parallel"

    def __post_init__(self) -> None:
        for name in ("n", "n_in", "n_train", "n_test"):
            _checks.integer(getattr(self, name), name, low=1)
        _checks.integer(self.epochs, "epochs", low=0)
        for name in ("spike_size", "x_max", "dt", "duration", "init_F_std"):
            object.__setattr__(self, name, _checks.real(getattr(self, name), name, low=0.0, low_open=True))
        for name in ("leak", "onset", "learn_from", "average_from", "alpha_T", "alpha_F", "decay", "leak_T"):
            object.__setattr__(self, name, _checks.real(getattr(self, name), name, low=0.0))
        object.__setattr__(self, "scale", _checks.real(self.scale, "scale"))
        lo, hi = (_checks.real(v, "init_T") for v in self.init_T) if len(self.init_T) == 2 else (1.0, 0.0)
        if not lo < hi:
            raise ValueError(f"init_T must be (low, high) with low < high, got {self.init_T}")
        object.__setattr__(self, "init_T", (lo, hi))
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if not self.onset <= self.learn_from < self.duration or self.average_from >= self.duration:
            raise ValueError(f"need onset <= learn_from < duration and average_from < duration, got onset="
                             f"{self.onset}, learn_from={self.learn_from}, average_from={self.average_from}, "
                             f"duration={self.duration}")
        SCNParams(leak=self.leak, dt=self.dt)  # dt leak < 0.1

    @classmethod
    def paraboloid(cls, **overrides) -> ConvexLearning:
        """Fig. 3 of Mancoo et al. (2020), the authors' code: y = 0.3 |x|^2 on [-4, 4]^2 (100 x 100 grid), K = 2,
        N = 50, G = D = 1 (s = 1), alpha = 1e-3, 100 epochs; tested on 500 x 500 points.  Hours on a CPU."""
        return cls(**{"n": 50, "n_in": 2, "spike_size": 1.0, "scale": 0.3, "x_max": 4.0, "n_train": 100,
                      "n_test": 500, "alpha_T": 1e-3, "alpha_F": 1e-3, "epochs": 100, **overrides})

    def _grid(self, count: int) -> np.ndarray:
        axis = np.linspace(-self.x_max, self.x_max, count)
        mesh = np.meshgrid(*([axis] * self.n_in), indexing="ij")
        return np.stack([m.ravel() for m in mesh], axis=1)

    def train_inputs(self) -> np.ndarray:
        """The training points, ``n_train`` per axis on [-x_max, x_max]^K: (n_train^K, K)."""
        return self._grid(self.n_train)

    def test_inputs(self) -> np.ndarray:
        """The test points, ``n_test`` per axis: (n_test^K, K)."""
        return self._grid(self.n_test)

    def target(self, x: object) -> np.ndarray:
        """y = scale |x|^2.  Shape: x (B, K) -> (B, 1)."""
        x = _checks.array(x, "x", ndim=2)
        if x.shape[1] != self.n_in:
            raise ValueError(f"x must have shape (B, {self.n_in}), got {x.shape}")
        return self.scale * np.sum(x * x, axis=1, keepdims=True)

    def encoders(self) -> np.ndarray:
        """G = 1: (N, 1)."""
        return np.ones((self.n, 1))

    def learning_rates(self, epoch: int) -> tuple[float, float]:
        """(alpha_T, alpha_F) exp(-decay epoch) in training epoch 1, 2, ..."""
        a = np.exp(-self.decay * epoch)
        return self.alpha_T * a, self.alpha_F * a

    def spiking_readout(self, F: object, T: object, x: object) -> np.ndarray:
        """``spiking_readout`` of the network (F, G = 1, T) with this rule's s, lambda, dt and trial timing."""
        return spiking_readout(F, self.encoders(), T, x, spike_size=self.spike_size, leak=self.leak, dt=self.dt,
                               duration=self.duration, onset=self.onset, average_from=self.average_from)


@dataclass(frozen=True, eq=False)
class ConvexTrace:
    """What ``fit_convex`` returns; index e is after training epoch e (0 = before learning).

    Shape: epochs (E + 1,); rmse (E + 1,), the maxout relative RMSE on the test points; F (E + 1, N, K);
    T (E + 1, N); spikes (E + 1,), spikes during the epoch (0 at e = 0); G (N, 1); rule, the parameters.
    """

    epochs: np.ndarray
    rmse: np.ndarray
    F: np.ndarray
    T: np.ndarray
    spikes: np.ndarray
    G: np.ndarray
    rule: ConvexLearning


def relative_rmse(y: object, target: object) -> float:
    """sqrt(mean (y - target)^2 / mean target^2).  Shape: y and target alike, e.g. (B, M)."""
    y = _checks.array(y, "y")
    target = _checks.array(target, "target")
    if y.shape != target.shape:
        raise ValueError(f"y must have the shape of target {target.shape}, got {y.shape}")
    return float(np.sqrt(np.mean((y - target) ** 2) / np.mean(target**2)))


class _TrialParams(NamedTuple):
    """The params of ``_trial_step``: the network (G, Omega, simulation constants), the trials' inputs X (B, K) and
    targets Y (B, M), this epoch's learning rates and the threshold drift per step."""

    G: np.ndarray
    fast: np.ndarray
    constants: SCNParams
    X: np.ndarray
    Y: np.ndarray
    alpha_T: float
    alpha_F: float
    drift: float


class _TrialState(NamedTuple):
    """The state of ``_trial_step``: the network's state, F (N, K), T (N,), the bias b of the constant extra input
    (``_bias``), the simulated network (F~ = [F, b], Omega, T~ = T + b) and the spikes so far."""

    net: SCNState
    F: np.ndarray
    T: np.ndarray
    bias: float
    scn: SCN
    spikes: int


def _trial_step(params: _TrialParams, state: _TrialState, inputs: tuple[np.ndarray, bool], *,
                rng: np.random.Generator | None = None) -> tuple[_TrialState, np.ndarray]:
    """One time step of the trials: ``scn.step`` on c_t with ``convex_fit_update`` at every spike while
    ``learning`` (``inputs`` = (c_t, learning)), then the threshold drift, and a larger bias before T + b nears 0."""
    c, learning = inputs
    F, T, bias, net = state.F, state.T, state.bias, state.scn

    def on_spike(b: int, k: int, _V: np.ndarray, _r: np.ndarray) -> SCNWeights:
        nonlocal F, T, net
        F, T = convex_fit_update(F, T, params.G, params.X[b], params.Y[b], k, params.alpha_T, params.alpha_F)
        net = SCN(_scn_weights(F, T, params.fast, bias), params.constants)
        return net.weights

    s, fired = step(net, state.net, c, on_spike=on_spike if learning else None)
    if learning and params.drift > 0:
        T = T - params.drift
        net = SCN(_scn_weights(F, T, params.fast, bias), params.constants)
    if T.min() + bias < _BIAS / 2:  # raise the extra input's weight (and V with it) before T + b reaches 0
        bias += _BIAS
        s = s._replace(V=s.V + _BIAS)
        net = SCN(_scn_weights(F, T, params.fast, bias), params.constants)
    return _TrialState(s, F, T, bias, net, state.spikes + len(fired)), fired


def _learn_trials(
    rule: ConvexLearning, F: np.ndarray, T: np.ndarray, G: np.ndarray, fast: np.ndarray, X: np.ndarray,
    Y: np.ndarray, alpha_T: float, alpha_F: float,
) -> tuple[np.ndarray, np.ndarray, int]:
    """One simulation of the trials X (B, K) with targets Y (B, M) on the batch axis of ``scn.step``
    (``_trial_step`` on ``wrec.dynamics.run``), F and T updated at every spike after ``learn_from``. Returns the new
    F, T and the number of spikes."""
    B, K = X.shape
    constants = SCNParams(leak=rule.leak, dt=rule.dt)
    n_steps, onset_step = _steps(rule.duration, rule.onset, rule.dt)
    learn_step = round(rule.learn_from / rule.dt)
    bias = _bias(T)
    w = _scn_weights(F, T, fast, bias)
    x0 = np.zeros((B, K + 1))
    x0[:, K] = 1.0
    if onset_step == 0:
        x0[:, :K] = X

    def current(t: int) -> tuple[np.ndarray, bool]:  # step t takes x_t to x_{t+1} (``input_current``)
        on_now, on_next = t >= onset_step, t + 1 >= onset_step
        c = np.empty((B, K + 1))
        c[:, :K] = (X * (on_next - on_now)) / rule.dt + rule.leak * X * on_now
        c[:, K] = rule.leak
        return c, t >= learn_step

    params = _TrialParams(G, fast, constants, X, Y, alpha_T, alpha_F, B * rule.dt * rule.leak_T)
    start = _TrialState(initial_state(w, x0, B), F, T, bias, SCN(w, constants), 0)
    end = dynamics.run(_trial_step, params, start, current, n_steps, what="convex learning trial").state
    return end.F, end.T, end.spikes


def initial_parameters(rule: ConvexLearning, seed: _checks.Seed = None) -> tuple[np.ndarray, np.ndarray]:
    """F ~ N(0, init_F_std^2) (N, K) and T ~ U(init_T) (N,), as in the authors' Fig. 3 code."""
    if not isinstance(rule, ConvexLearning):
        raise TypeError(f"rule must be a ConvexLearning, got {type(rule).__name__}")
    rng = _checks.rng(seed)
    F = rule.init_F_std * rng.standard_normal((rule.n, rule.n_in))
    T = rng.uniform(*rule.init_T, size=rule.n)
    return F, T


class ConvexInput:
    """The training stream of ``fit_convex`` (a ``wrec.dynamics.Stream``), one epoch per draw: the training points
    (``train_inputs``) and their targets, in grid order for the ``"parallel"`` schedule and in a fresh random order
    from ``seed`` each epoch for ``"shuffled"`` (the authors' loop). A chunk is (X, Y), (1, B, K) and (1, B, 1)."""

    def __init__(self, rule: ConvexLearning, seed: _checks.Seed = None) -> None:
        if not isinstance(rule, ConvexLearning):
            raise TypeError(f"rule must be a ConvexLearning, got {type(rule).__name__}")
        self.rule, self.rng = rule, _checks.rng(seed)
        self.X = rule.train_inputs()
        self.Y = rule.target(self.X)

    def draw(self, limit: int) -> tuple[np.ndarray, np.ndarray]:
        if self.rule.schedule == "parallel":
            return self.X[None], self.Y[None]
        order = self.rng.permutation(self.X.shape[0])
        return self.X[order][None], self.Y[order][None]

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {"rng": _ckpt.rng_state(self.rng)}, {}

    def set_state(self, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        _ckpt.set_rng_state(self.rng, meta["rng"])


class ConvexState(NamedTuple):
    """State of a ``fit_convex`` run: F (N, K), T (N,), the epochs done and the spikes of the last epoch."""

    F: np.ndarray
    T: np.ndarray
    epoch: int
    spikes: int


def convex_step(params: ConvexLearning, state: ConvexState, inputs: tuple[np.ndarray, np.ndarray], *,
                rng: np.random.Generator | None = None) -> tuple[ConvexState, int]:
    """One step of ``fit_convex``: one training epoch on its trials ``inputs`` = (X, Y), (B, K) and (B, M), with the
    learning rates of that epoch (``learning_rates``): all trials at once on the batch axis of ``scn.step`` for
    the ``"parallel"`` schedule, one after another in the given order for ``"shuffled"``; ``convex_fit_update`` at
    every spike after ``learn_from``. Returns the new state and the epoch's spikes."""
    X, Y = inputs
    G = params.encoders()
    fast = _fast(G, params.spike_size * G.T, 0.0)
    epoch = state.epoch + 1
    alpha_T, alpha_F = params.learning_rates(epoch)
    F, T = state.F, state.T
    if params.schedule == "parallel":
        F, T, spikes = _learn_trials(params, F, T, G, fast, X, Y, alpha_T, alpha_F)
    else:
        spikes = 0
        for i in range(X.shape[0]):
            F, T, fired = _learn_trials(params, F, T, G, fast, X[i:i + 1], Y[i:i + 1], alpha_T, alpha_F)
            spikes += fired
    return ConvexState(F, T, epoch, spikes), spikes


def fit_convex(
    rule: ConvexLearning | None = None, *, seed: _checks.Seed = 0, F0: object = None, T0: object = None,
    checkpoint: str | os.PathLike | None = None, inputs: object = None,
) -> ConvexTrace:
    """Learn F and T of a spiking network so that its maxout map fits y = scale |x|^2 (``ConvexLearning``; the
    rule of Mancoo et al. 2020's code, ``convex_fit_update``), for ``rule.epochs`` epochs: ``convex_step`` on
    ``wrec.dynamics.run``, one step per epoch.

    ``inputs``: the trials of each epoch (a ``wrec.dynamics.Stream`` of (X, Y) chunks, or a tuple of arrays (E, B, K)
    and (E, B, M)); by default ``ConvexInput(rule, ...)``, the training grid in the order of ``rule.schedule``.
    The seed gives two independent streams: the initial F, T (``initial_parameters``, unless F0 and T0 are given)
    and the default input's trial order (the ``"parallel"`` schedule uses no randomness after the initialisation:
    the network is deterministic).  With ``checkpoint`` (a file path), the whole state (history, F, T, the input
    stream's state) is saved with ``wrec.checkpoint`` after every epoch, and a call that finds the file continues
    from it: the numbers equal an uninterrupted run's.  The file must come from the same rule (``epochs`` aside),
    initialisation and input, else ``ValueError``; one with more epochs than asked is cut.

    Shape: F0 (N, K); T0 (N,).  Returns ``ConvexTrace``.
    """
    rule = ConvexLearning() if rule is None else rule
    if not isinstance(rule, ConvexLearning):
        raise TypeError(f"rule must be a ConvexLearning or None, got {type(rule).__name__}")
    rng_init, rng_order = _checks.rng(seed).spawn(2)
    if (F0 is None) != (T0 is None):
        raise ValueError("give both F0 and T0, or neither")
    if F0 is None:
        F, T = initial_parameters(rule, rng_init)
    else:
        F = _checks.array(F0, "F0", ndim=2)
        T = _checks.array(T0, "T0", ndim=1)
        if F.shape != (rule.n, rule.n_in) or T.shape != (rule.n,):
            raise ValueError(f"F0 and T0 must have shapes ({rule.n}, {rule.n_in}) and ({rule.n},), got {F.shape} "
                             f"and {T.shape}")
    stream = ConvexInput(rule, rng_order) if inputs is None else inputs
    G = rule.encoders()
    X_test = rule.test_inputs()
    Y_test = rule.target(X_test)

    def log(_epoch: int, s: ConvexState) -> tuple[dict[str, Any], ConvexState]:
        return {"F": s.F.copy(), "T": s.T.copy(), "rmse": relative_rmse(maxout(X_test, s.F, G, s.T), Y_test),
                "spikes": s.spikes}, s

    saved = _ckpt.load(checkpoint)
    if saved is not None and "log.F" in saved[0] and not (np.array_equal(saved[0]["log.F"][0], F)
                                                          and np.array_equal(saved[0]["log.T"][0], T)):
        raise ValueError(f"checkpoint {checkpoint} starts from other initial F, T (another seed, F0 or T0); delete "
                         "it or pass another path")
    identity = {"rule (epochs aside)": replace(rule, epochs=0), "initial F, T": (F, T),
                "inputs": dynamics.stream_identity(stream)}
    out = dynamics.run(convex_step, rule, ConvexState(F, T, 0, 0), stream, rule.epochs, log=log,
                       log_at=range(rule.epochs + 1), checkpoint=checkpoint, identity=identity,
                       what="ConvexLearning run", unit="epoch")
    return ConvexTrace(epochs=out.steps, rmse=out.log["rmse"], F=out.log["F"], T=out.log["T"],
                       spikes=out.log["spikes"].astype(np.int64), G=G, rule=rule)
