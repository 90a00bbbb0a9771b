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
Pure NumPy/SciPy on arrays: nothing here knows about the spiking simulator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import cholesky, solve_triangular
from scipy.optimize import linprog, minimize, nnls
from scipy.spatial import HalfspaceIntersection

from wrec import _checks

try:  # qpsolvers is a declared dependency; the SciPy path keeps the module usable without it
    import qpsolvers
except ImportError:  # pragma: no cover - exercised only where qpsolvers is not installed
    qpsolvers = None

__all__ = [
    "QPSolution",
    "check_feasible",
    "default_solver",
    "is_feasible",
    "maxout",
    "midpoint_thresholds",
    "polytope",
    "rates_qp",
    "readout_qp",
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


def _readout_one(F, G, T, Q, x, solver):  # private; arrays already validated
    h = T - F @ x  # -G y <= T - F x
    if solver == "daqp":
        sol = qpsolvers.solve_problem(qpsolvers.Problem(Q, np.zeros(Q.shape[0]), -G, h), solver="daqp")
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
            sol = qpsolvers.solve_problem(qpsolvers.Problem(H, -c, lb=np.zeros(N)), solver="daqp")
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
    A = -G  # A y <= b
    b = T - F @ X[0]
    if bounds is not None:
        lo = _checks.array(bounds[0], "bounds[0]", ndim=1)
        hi = _checks.array(bounds[1], "bounds[1]", ndim=1)
        if lo.shape != (2,) or hi.shape != (2,) or np.any(lo >= hi):
            raise ValueError(f"bounds must be (lo, hi) with two entries each and lo < hi, got {bounds}")
        A = np.vstack([A, np.eye(2), -np.eye(2)])
        b = np.r_[b, hi, -lo]
    check_feasible(F, G, T, X[0])
    for k in range(2):  # bounded iff min and max of each coordinate are finite
        for sign in (1.0, -1.0):
            res = linprog(sign * np.eye(2)[k], A_ub=A, b_ub=b, bounds=(None, None), method="highs")
            if res.status == 3:
                raise ValueError("the polytope is unbounded for this x; pass bounds=(lo, hi) to clip it for plotting")
    # Chebyshev centre: max rho s.t. A_i y + rho |A_i| <= b_i, an interior point for qhull
    norms = np.linalg.norm(A, axis=1)
    res = linprog(
        np.r_[0.0, 0.0, -1.0], A_ub=np.c_[A, norms], b_ub=b, bounds=[(None, None)] * 2 + [(0, None)], method="highs"
    )
    if res.status != 0 or res.x[2] <= 1e-12:
        raise ValueError("the polytope has no interior for this x (it is empty, a segment or a point)")
    hs = HalfspaceIntersection(np.c_[A, -b], res.x[:2])
    V = hs.intersections
    scale = 1.0 + np.abs(V).max()
    keep = []
    for v in V:  # degenerate vertices (more than two constraints through a point) come out repeated
        if all(np.linalg.norm(v - w) > 1e-9 * scale for w in keep):
            keep.append(v)
    V = np.array(keep)
    centre = V.mean(axis=0)
    return V[np.argsort(np.arctan2(V[:, 1] - centre[1], V[:, 0] - centre[0]))]
