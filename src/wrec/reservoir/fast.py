"""The ESN step in place: one GEMM into a preallocated buffer, the input term fused into it, tanh over the state.

x_t = (1−a) x_{t−1} + a tanh(s·W x_{t−1} + σ w_in u_t + b), with the same products in the same order as
``wrec.reservoir.esn_step`` (with ``np.tanh`` the states are bit for bit the same), but no array is allocated per
step and the new state is written over the old one.

The elementwise tanh is where a step can gain: NumPy's float64 tanh is scalar libm (≈ 2× slower than torch's SLEEF
kernel on a 64 × 500 block; its float32 tanh is vectorised and as fast as torch's). ``backend="torch"`` runs torch's
kernel on ``torch.from_numpy`` views, on one torch thread (``single_threaded_torch``); torch is optional
(``available()``). Its values are within ``TANH_ULP`` units in the last place of ``np.tanh``'s, so states differ by
rounding only (float64, contracting reservoir: < 1e-12).

The B reservoirs of a batch are independent, so ``rows`` cuts the step into shares of the batch that threads can
step side by side, each with its own single-threaded GEMM: then the tanh, which one thread did while the other core
waited, runs on every core too (``wrec.reservoir.run``'s ``threads``).
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from wrec.reservoir.models import ESN, LeakyESN

Array = np.ndarray

TANH_ULP = 2
"""Largest difference between torch's tanh and ``np.tanh`` in units in the last place (float32 and float64)."""

MIN_BLOCK = 4096
"""``tanh="auto"`` takes torch's from B·N ≥ MIN_BLOCK state entries per step (below, per-call overheads rule)."""


def available() -> bool:
    """Whether torch can be imported (it is not imported here)."""
    return importlib.util.find_spec("torch") is not None


def supports(model: Any) -> bool:
    """Whether ``model`` has the in-place step: an ``ESN`` or ``LeakyESN`` with a dense W, (N, N) or (B, N, N), and
    φ = ``np.tanh``."""
    return (type(model) in (ESN, LeakyESN) and model.activation is np.tanh and isinstance(model.W, np.ndarray)
            and np.ndim(model.W) in (2, 3))


def torch_tanh(a: Array, out: Array) -> None:
    """out = tanh(a) by torch's vectorised CPU kernel, on views of the two C-contiguous arrays."""
    import torch

    torch.tanh(torch.from_numpy(a), out=torch.from_numpy(out))


@contextlib.contextmanager
def single_threaded_torch() -> Iterator[None]:
    """torch on one thread for the loop, its setting restored after: torch's OpenMP threads, woken between
    OpenBLAS's GEMMs, made a step ≈ 8× slower (measured, N = 500, B = 64); the (B, N) tanh is too small to share."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def numpy_tanh(a: Array, out: Array) -> None:
    """out = tanh(a) by ``np.tanh``."""
    np.tanh(a, out=out)


@dataclass(frozen=True, eq=False)
class InPlaceESN:
    """The parameters of ``inplace_esn_step`` and its two work buffers.

    Shapes: ``Wt`` Wᵀ (N, N) or (B, N, N); ``scale`` s a float or (B, 1); ``w_in`` (N,) or (B, N); ``bias`` b a
    float, (N,) or (B, N); ``leak`` a float (1 = no leak) or (B, 1); ``pre``, ``drive`` (B, N) buffers;
    ``tanh(a, out)`` the elementwise kernel.
    """

    Wt: Array
    scale: float | Array
    w_in: Array
    bias: float | Array
    leak: float | Array
    pre: Array
    drive: Array
    tanh: Callable[[Array, Array], None]


def rows(k: InPlaceESN, lo: int, hi: int) -> InPlaceESN:
    """The ``InPlaceESN`` of reservoirs lo .. hi − 1 of the batch: its batched fields cut to those rows (views), the
    shared ones kept."""
    cut = slice(lo, hi)
    return InPlaceESN(Wt=k.Wt[cut] if k.Wt.ndim == 3 else k.Wt,
                      scale=k.scale[cut] if isinstance(k.scale, np.ndarray) else k.scale,
                      w_in=k.w_in[cut] if k.w_in.ndim == 2 else k.w_in,
                      bias=k.bias[cut] if isinstance(k.bias, np.ndarray) and k.bias.ndim == 2 else k.bias,
                      leak=k.leak[cut] if isinstance(k.leak, np.ndarray) else k.leak,
                      pre=k.pre[cut], drive=k.drive[cut], tanh=k.tanh)


def prepare(model: ESN, u: Array, tanh: Callable[[Array, Array], None]) -> tuple[InPlaceESN, Array]:
    """(the ``InPlaceESN`` of ``model``, the inputs σ·u_t as (T, B, 1)) for ``u`` (T, B), in the model's dtype."""
    kind = np.dtype(model.dtype)
    W = np.asarray(model.W, kind)
    s, leak = model.recurrent_scale, getattr(model, "leak", 1.0)
    amp = u * (model.input_scale if np.ndim(model.input_scale) == 0 else np.asarray(model.input_scale, kind))
    B, n = u.shape[1], model.n
    k = InPlaceESN(Wt=np.ascontiguousarray(W.T if W.ndim == 2 else np.swapaxes(W, 1, 2)),
                   scale=s if np.ndim(s) == 0 else np.asarray(s, kind)[:, None], w_in=model.inputs,
                   bias=model.bias, leak=leak if np.ndim(leak) == 0 else np.asarray(leak, kind)[:, None],
                   pre=np.empty((B, n), kind), drive=np.empty((B, n), kind), tanh=tanh)
    return k, np.ascontiguousarray(amp)[:, :, None]


def inplace_esn_step(k: InPlaceESN, x: Array, amp: Array, *, rng: np.random.Generator | None = None
                     ) -> tuple[Array, Array]:
    """x_t = (1−a) x_{t−1} + a tanh(s·W x_{t−1} + σ w_in u_t + b), written over ``x``; outputs x_t.

    Shapes: x (B, N) C-contiguous, amp = σ·u_t (B, 1) -> ((B, N), (B, N)), both ``x`` itself.
    """
    pre = k.pre
    if k.Wt.ndim == 2:
        np.matmul(x, k.Wt, out=pre)
    else:
        np.matmul(x[:, None, :], k.Wt, out=pre[:, None, :])
    if isinstance(k.scale, np.ndarray) or k.scale != 1.0:
        np.multiply(pre, k.scale, out=pre)
    np.multiply(amp, k.w_in, out=k.drive)
    pre += k.drive
    if isinstance(k.bias, np.ndarray) or k.bias != 0.0:
        pre += k.bias
    if isinstance(k.leak, np.ndarray) or k.leak != 1.0:
        k.tanh(pre, pre)
        x *= 1.0 - k.leak  # (1 − a) x + a φ, the products of leaky_esn_step in its order
        pre *= k.leak
        x += pre
    else:
        k.tanh(pre, x)
    return x, x
