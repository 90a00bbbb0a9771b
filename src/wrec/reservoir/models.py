"""Rate reservoirs without trained recurrence: frozen parameter records and their pure step functions.

Convention: x_t = F(x_{t−1}, u_t), so the state at t has already seen u_t.
Every record is batched by broadcasting on a leading axis B:

* ``W``: (N, N) shared by the batch (one GEMM per step), (B, N, N) distinct dense matrices (batched
  matmul), a ``scipy.sparse`` (N, N) matrix, or a sequence of B sparse matrices (one block-diagonal
  sparse product per step);
* ``recurrent_scale`` s: scalar or (B,), multiplies W *after* the product, so a grid of spectral radii over
  one shared W costs one GEMM per step;
* ``w_in``: (N,) or (B, N); when omitted it is drawn N(0, 1) from ``seed``;
* ``input_scale`` σ: scalar or (B,); ``bias`` b: scalar, (N,) or (B, N).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace

import numpy as np
import scipy.sparse as sp

from wrec import _checks
from wrec._checks import Seed
from wrec.weights import input_weights

Array = np.ndarray


def _batch_vector(x, name: str, dtype) -> float | Array:
    """A scalar, or a (B,) vector of per-reservoir values."""
    a = _checks.array(x, name, ndim=(0, 1), dtype=dtype)
    return float(a) if a.ndim == 0 else a


def _is_matrix_list(W) -> bool:
    """A list/tuple of B matrices (sparse or 2-D), as opposed to a nested-list matrix."""
    return isinstance(W, (list, tuple)) and len(W) > 0 and (sp.issparse(W[0]) or np.ndim(W[0]) == 2)


def _recurrent_operator(W, dtype) -> tuple[Callable[[Array], Array], int, int | None]:
    """(x ↦ x Wᵀ over a (B, N) batch, N, batch size of W or None)."""
    if _is_matrix_list(W):
        mats = [sp.csr_array(w) if sp.issparse(w) else _checks.square(w, "W[i]") for w in W]
        n = mats[0].shape[0]
        if any(m.shape != (n, n) for m in mats):
            raise ValueError(f"all matrices in W must have the same square shape, got {[m.shape for m in mats]}")
        block = sp.block_diag(mats, format="csr").astype(dtype)
        if not np.all(np.isfinite(block.data)):
            raise ValueError("W has non-finite entries (NaN or inf)")
        b = len(mats)
        return (lambda x: (block @ x.reshape(-1)).reshape(b, n)), n, b
    if sp.issparse(W):
        W = sp.csr_array(W).astype(dtype)
        n = W.shape[0]
        if W.shape != (n, n) or n == 0:
            raise ValueError(f"W must be a non-empty square matrix, got shape {W.shape}")
        if not np.all(np.isfinite(W.data)):
            raise ValueError("W has non-finite entries (NaN or inf)")
        return (lambda x: (W @ x.T).T), n, None
    W = _checks.array(W, "W", ndim=(2, 3), dtype=dtype)
    n = W.shape[-1]
    if W.shape[-2] != n or n == 0:
        raise ValueError(f"W must be square in its last two axes, (N, N) or (B, N, N); got shape {W.shape}")
    if W.ndim == 2:
        Wt = np.ascontiguousarray(W.T)
        return (lambda x: x @ Wt), n, None
    Wt = np.ascontiguousarray(np.swapaxes(W, 1, 2))
    return (lambda x: np.matmul(x[:, None, :], Wt)[:, 0, :]), n, W.shape[0]


@dataclass(frozen=True, eq=False)
class _Reservoir:
    """Fields and validation shared by every rate reservoir (abstract: use the subclasses)."""

    W: object
    input_scale: float | Array = 1.0
    w_in: Array | None = None
    recurrent_scale: float | Array = 1.0
    seed: Seed = None
    dtype: type = np.float64
    _product: Callable[[Array], Array] = field(init=False, repr=False)
    n: int = field(init=False)

    def __post_init__(self) -> None:
        if np.dtype(self.dtype) not in (np.float32, np.float64):
            raise TypeError(f"dtype must be numpy.float32 or numpy.float64, got {self.dtype}")
        product, n, _ = _recurrent_operator(self.W, self.dtype)
        object.__setattr__(self, "_product", product)
        object.__setattr__(self, "n", n)
        w_in = input_weights(n, seed=self.seed) if self.w_in is None else self.w_in
        w_in = _checks.array(w_in, "w_in", ndim=(1, 2), dtype=self.dtype)
        if w_in.shape[-1] != n:
            raise ValueError(f"w_in must have N = {n} entries in its last axis, got shape {w_in.shape}")
        object.__setattr__(self, "w_in", w_in)
        for name in ("input_scale", "recurrent_scale", *tuple(self._scalars())):
            object.__setattr__(self, name, _batch_vector(getattr(self, name), name, self.dtype))
        self._check()
        self.batch_size  # noqa: B018 (validates that the batch axes agree)

    def _scalars(self) -> Sequence[str]:
        """Fields that are a scalar or one value per reservoir (B,)."""
        return ()

    def _check(self) -> None:
        """Validation of the fields a subclass adds."""

    @property
    def batch_size(self) -> int | None:
        """B, the number of reservoirs this record describes, or None for one unbatched reservoir."""
        w_in = self.inputs
        sizes = {_recurrent_operator_batch(self.W), w_in.shape[0] if w_in.ndim == 2 else None}
        for f in fields(self):
            v = getattr(self, f.name) if f.init else None
            if f.name in ("W", "w_in") or not isinstance(v, np.ndarray):
                continue
            if f.name == "bias":
                sizes.add(v.shape[0] if v.ndim == 2 else None)
            else:
                sizes.add(v.shape[0])
        found = sorted(s for s in sizes if s is not None)
        if len(found) > 1:
            raise ValueError(f"batch axes of the model's fields disagree: sizes {found}")
        return found[0] if found else None

    @property
    def inputs(self) -> Array:
        """w_in as validated (drawn from ``seed`` when not given)."""
        assert self.w_in is not None  # set in __post_init__
        return self.w_in

    def rows(self, lo: int, hi: int):
        """Reservoirs lo .. hi − 1 of this batch as a record of their own: the batched fields cut to those rows, the
        shared ones kept (an unbatched record is its own share)."""
        if self.batch_size is None:
            return self
        cut = {}
        for f in fields(self):
            if not f.init:
                continue
            v = getattr(self, f.name)
            if f.name == "W":
                batched = _recurrent_operator_batch(v) is not None
            elif f.name in ("w_in", "bias"):
                batched = isinstance(v, np.ndarray) and v.ndim == 2
            else:
                batched = isinstance(v, np.ndarray)
            if batched:
                cut[f.name] = v[lo:hi]
        return replace(self, **cut)

    def astype(self, dtype: type):
        """The same reservoir with its arrays in ``dtype`` (float32 for faster simulation)."""
        return self if np.dtype(dtype) == np.dtype(self.dtype) else replace(self, dtype=dtype)

    def recurrent(self, x: Array) -> Array:
        """s · W x for a (B, N) batch of states."""
        y = self._product(x)
        if isinstance(self.recurrent_scale, np.ndarray):
            y *= self.recurrent_scale[:, None].astype(y.dtype, copy=False)
        elif self.recurrent_scale != 1.0:
            y *= self.recurrent_scale
        return y

    def drive(self, u: Array) -> Array:
        """σ w_in u_t for a (B,) batch of inputs: (B, N)."""
        scale = self.input_scale
        amp = (u * scale) if np.ndim(scale) == 0 else u * np.asarray(scale, dtype=u.dtype)
        return amp[:, None] * self.inputs


def _recurrent_operator_batch(W) -> int | None:
    if _is_matrix_list(W):
        return len(W)
    if sp.issparse(W):
        return None
    return np.shape(W)[0] if np.ndim(W) == 3 else None


def _bias(value, n: int, dtype) -> float | Array:
    b = _checks.array(value, "bias", ndim=(0, 1, 2), dtype=dtype)
    if b.ndim == 0:
        return float(b)
    if b.shape[-1] != n:
        raise ValueError(f"bias must be a scalar, (N,) or (B, N) with N = {n}, got shape {b.shape}")
    return b


@dataclass(frozen=True, eq=False)
class ESN(_Reservoir):
    """Echo state network: x_t = φ(s·W x_{t−1} + σ w_in u_t + b), φ = tanh (Jaeger 2001)."""

    bias: float | Array = 0.0
    activation: Callable[[Array], Array] = np.tanh

    def _check(self) -> None:
        object.__setattr__(self, "bias", _bias(self.bias, self.n, self.dtype))
        if not callable(self.activation):
            raise TypeError(f"activation must be callable, got {type(self.activation).__name__}")


@dataclass(frozen=True, eq=False)
class LeakyESN(ESN):
    """Leaky-integrator ESN: x_t = (1−a) x_{t−1} + a φ(s·W x_{t−1} + σ w_in u_t + b), leak a ∈ (0, 1]."""

    leak: float | Array = 1.0

    def _scalars(self) -> Sequence[str]:
        return ("leak",)

    def _check(self) -> None:
        super()._check()
        a = np.asarray(self.leak)
        if np.any(a <= 0) or np.any(a > 1):
            raise ValueError(f"leak must lie in (0, 1], got {self.leak}")


@dataclass(frozen=True, eq=False)
class Linear(_Reservoir):
    """Linear reservoir: x_t = s·W x_{t−1} + σ w_in u_t (a delay line when W is the lower shift, w_in = e₁)."""


@dataclass(frozen=True, eq=False)
class Rate(_Reservoir):
    """Continuous-time rate network dh/dt = −h + s·W φ(h) + σ w_in u, Euler step Δ with u held:

    h_t = h_{t−1} + Δ(−h_{t−1} + s·W φ(h_{t−1}) + σ w_in u_t); the recorded state is φ(h_t) (``observe="rate"``)
    or h_t (``observe="potential"``). With W_ij ~ N(0, g²/N) the autonomous network is chaotic for g > 1.
    """

    dt: float = 0.1
    activation: Callable[[Array], Array] = np.tanh
    observe: str = "rate"

    def _check(self) -> None:
        _checks.real(self.dt, "dt", low=0.0, low_open=True)
        if self.observe not in ("rate", "potential"):
            raise ValueError(f"observe must be 'rate' or 'potential', got {self.observe!r}")
        if not callable(self.activation):
            raise TypeError(f"activation must be callable, got {type(self.activation).__name__}")


def _esn(p: ESN, x: Array, u: Array) -> Array:
    pre = p.recurrent(x)
    pre += p.drive(u)
    if not (np.ndim(p.bias) == 0 and p.bias == 0.0):
        pre += p.bias
    return p.activation(pre)


def esn_step(p: ESN, x: Array, u: Array, *, rng: np.random.Generator | None = None) -> tuple[Array, Array]:
    """x_t = φ(s·W x_{t−1} + σ w_in u_t + b); outputs x_t.  Shapes: x (B, N), u (B,) -> ((B, N), (B, N))."""
    x = _esn(p, x, u)
    return x, x


def leaky_esn_step(p: LeakyESN, x: Array, u: Array, *, rng: np.random.Generator | None = None
                   ) -> tuple[Array, Array]:
    """x_t = (1−a) x_{t−1} + a φ(·); outputs x_t.  Shapes: x (B, N), u (B,) -> ((B, N), (B, N))."""
    a = p.leak if np.ndim(p.leak) == 0 else np.asarray(p.leak)[:, None]
    x = (1.0 - a) * x + a * _esn(p, x, u)
    return x, x


def linear_step(p: Linear, x: Array, u: Array, *, rng: np.random.Generator | None = None) -> tuple[Array, Array]:
    """x_t = s·W x_{t−1} + σ w_in u_t; outputs x_t.  Shapes: x (B, N), u (B,) -> ((B, N), (B, N))."""
    y = p.recurrent(x)
    y += p.drive(u)
    return y, y


def rate_step(p: Rate, h: Array, u: Array, *, rng: np.random.Generator | None = None) -> tuple[Array, Array]:
    """One Euler step of dh/dt = −h + s·W φ(h) + σ w_in u; outputs φ(h_t) (``observe="rate"``) or h_t.
    Shapes: h (B, N), u (B,) -> ((B, N), (B, N))."""
    dh = p.recurrent(p.activation(h))
    dh += p.drive(u)
    dh -= h
    dh *= p.dt
    dh += h
    return dh, (p.activation(dh) if p.observe == "rate" else dh)


STEPS: dict[type, Callable[..., tuple[Array, Array]]] = {
    ESN: esn_step,
    LeakyESN: leaky_esn_step,
    Linear: linear_step,
    Rate: rate_step,
}
