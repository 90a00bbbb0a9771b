"""Smooth multi-dimensional input signals for spike coding networks (the inputs of Brendel et al. 2020 and of
our reconstruction of Bourdoukan & Denève 2015).

c = a · (g_σ * ξ), ξ ~ N(0, 1) white noise per dimension, g_σ a unit-sum Gaussian kernel of s.d. σ steps
(zero-padded "same" convolution, as in Brendel et al. 2020's code), regenerated in independent blocks;
x is its leaky integral x_{t+1} = (1 − λdt) x_t + dt c_t.
"""

from __future__ import annotations

import numpy as np

from wrec import _checks
from wrec._checks import Seed


def smoothed_white_noise(
    length: int,
    dim: int,
    *,
    width: float = 30.0,
    amplitude: float = 2000.0,
    block: int | None = 1000,
    batch: int | None = None,
    seed: Seed = None,
) -> np.ndarray:
    """Gaussian-smoothed white noise, c = amplitude · (g_width * ξ), regenerated every ``block`` steps.

    Each block is an independent draw, convolved on its own with zero padding (so c sags toward 0 within
    ~2·width of each block edge, as in the authors' code); ``block=None`` is one long convolution (the test
    input for the decoding error). Defaults are the authors' (Brendel et al. 2020): width 30 steps, amplitude
    2000, blocks of 1000 steps.

    Shape: (length, dim), or (batch, length, dim).
    """
    from scipy.ndimage import gaussian_filter1d

    length = _checks.integer(length, "length", low=1)
    dim = _checks.integer(dim, "dim", low=1)
    width = _checks.real(width, "width", low=0.0, low_open=True)
    amplitude = _checks.real(amplitude, "amplitude")
    block = length if block is None else _checks.integer(block, "block", low=1)
    lead = () if batch is None else (_checks.integer(batch, "batch", low=1),)
    rng = _checks.rng(seed)
    out = np.empty((*lead, length, dim))
    for start in range(0, length, block):
        stop = min(start + block, length)
        xi = rng.standard_normal((*lead, stop - start, dim))
        out[..., start:stop, :] = gaussian_filter1d(xi, width, axis=-2, mode="constant", truncate=4.0)
    return amplitude * out


def leaky_integral(c: np.ndarray, leak: float, dt: float, x0: np.ndarray | None = None) -> np.ndarray:
    """x_{t+1} = (1 − λdt) x_t + dt c_t from x_0 = x0 (0 by default), the Euler integral of ẋ = −λx + c.

    The result is aligned with ``wrec.spiking.simulate``'s traces: x[t] is the state after c[t].

    Shape: c (T, J) or (B, T, J); x0 (J,) or (B, J) → x like c.
    """
    c = _checks.array(c, "c", ndim=(2, 3))
    leak = _checks.real(leak, "leak", low=0.0)
    dt = _checks.real(dt, "dt", low=0.0, low_open=True)
    a = 1.0 - leak * dt
    x = np.zeros(c.shape[:-2] + c.shape[-1:]) if x0 is None else np.array(_checks.array(x0, "x0"), dtype=float)
    if np.broadcast_shapes(x.shape, c.shape[:-2] + c.shape[-1:]) != c.shape[:-2] + c.shape[-1:]:
        raise ValueError(f"x0 must have shape {c.shape[-1:]} or {c.shape[:-2] + c.shape[-1:]}, got {x.shape}")
    from scipy.signal import lfilter  # here, not at import: scipy.signal alone takes ~0.5 s to load

    zi = a * np.broadcast_to(x, c.shape[:-2] + c.shape[-1:])[..., None, :]  # lfilter's state: a·x_0
    return lfilter([dt], [1.0, -a], c, axis=-2, zi=zi)[0]


def linear_response(c: np.ndarray, A: np.ndarray, dt: float, x0: np.ndarray | None = None) -> np.ndarray:
    """x_{t+1} = x_t + dt (A x_t + c_t) from x_0 = x0 (0 by default), the Euler integral of ẋ = A x + c.

    The teacher of ``wrec.spiking.learn_lds`` (a linear dynamical system driven by c). Like ``leaky_integral``
    (A = −λI) the result is aligned with ``wrec.spiking.simulate``'s traces: x[t] is the state after c[t].

    Shape: c (T, J) or (B, T, J); A (J, J); x0 (J,) or (B, J) → x like c.
    """
    c = _checks.array(c, "c", ndim=(2, 3))
    A = _checks.array(A, "A", ndim=2)
    j = c.shape[-1]
    if A.shape != (j, j):
        raise ValueError(f"A must have shape (J, J) = ({j}, {j}) to match c of shape {c.shape}, got {A.shape}")
    dt = _checks.real(dt, "dt", low=0.0, low_open=True)
    lead = c.shape[:-2]
    x = np.zeros((*lead, j)) if x0 is None else np.array(_checks.array(x0, "x0"), dtype=float)
    if np.broadcast_shapes(x.shape, (*lead, j)) != (*lead, j):
        raise ValueError(f"x0 must have shape ({j},) or {(*lead, j)}, got {x.shape}")
    x = np.array(np.broadcast_to(x, (*lead, j)))
    At = np.ascontiguousarray(A.T)
    out = np.empty(c.shape)
    # sequential in time; J is small, so a plain loop over steps (≈ 1 µs each) beats any factorisation
    for t in range(c.shape[-2]):
        x = x + dt * (x @ At + c[..., t, :])
        out[..., t, :] = x
    return out
