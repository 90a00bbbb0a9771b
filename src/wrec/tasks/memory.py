"""Synthetic memory tasks: linear functionals with a chosen memory function (Wang & Li, ICML 2024).

A linear functional (LF) of the input, y_t = Σ_{s=0}^{t} ρ(s·dt) x_{t−s}, with x_t ~ N(0, 1)·dt (optionally
cumulatively summed: a Gaussian-process input); the memory function ρ sets how far back the target reaches
(Wang & Li 2024; Li et al. 2020, "On the curse of memory in recurrent neural networks"):

    exp       e^{−t}                           exponential
    pol       (1 + 0.1t)^{−1.1}                polynomial (long)
    shift     1 if 9 < t < 11 else 0           delay
    twoparts  e^{−t} + e^{−(t−9)²}             mixed
    airy      Ai(t − 6)                        oscillating
    sin       sin t                            non-decaying
"""

from __future__ import annotations

import numpy as np
from scipy.special import airy

from wrec import _checks
from wrec._checks import Seed

MEMORIES = ("exp", "pol", "shift", "twoparts", "airy", "sin")


def memory_kernel(memory: str, t: object) -> np.ndarray:
    """ρ(t) of the named memory (module docstring table). Shape: as t."""
    if not isinstance(memory, str) or memory not in MEMORIES:
        raise ValueError(f"memory must be one of {MEMORIES}, got {memory!r}")
    t = _checks.array(t, "t")
    if memory == "exp":
        return np.exp(-t)
    if memory == "pol":
        if np.any(t <= -10):
            raise ValueError(f"t must be > -10 for the polynomial memory, got min {t.min()}")
        return (1 + 0.1 * t) ** -1.1
    if memory == "shift":
        return ((t > 9) & (t < 11)).astype(float)
    if memory == "twoparts":
        return np.exp(-t) + np.exp(-((t - 9) ** 2))
    if memory == "airy":
        return airy(t - 6)[0]
    return np.sin(t)


def linear_functional(
    n_samples: int,
    length: int = 100,
    memory: str = "exp",
    *,
    dt: float = 1.0,
    cumulative: bool = False,
    seed: Seed = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Inputs x and targets y_t = Σ_{s=0}^{t} ρ(s·dt) x_{t−s} (zero-padded FFT convolution of length 2T).

    x_t ~ N(0, 1)·dt, cumulatively summed over t if ``cumulative``.

    Shape: x, y (n_samples, length, 1), float64.
    """
    n_samples = _checks.integer(n_samples, "n_samples", low=1)
    length = _checks.integer(length, "length", low=1)
    dt = _checks.real(dt, "dt", low=0.0, low_open=True)
    x = _checks.rng(seed).standard_normal((n_samples, length)) * dt
    if cumulative:
        x = np.cumsum(x, axis=1)
    return x[..., None], apply_memory(x[..., None], memory, dt=dt)


def apply_memory(x: object, memory: str, *, dt: float = 1.0) -> np.ndarray:
    """The linear functional y_t = Σ_{s=0}^{t} ρ(s·dt) x_{t−s} of given inputs, along axis 1 (zero-padded FFT).

    Shape: x (B, T, d) → y (B, T, d).
    """
    x = _checks.array(x, "x", ndim=3)
    dt = _checks.real(dt, "dt", low=0.0, low_open=True)
    T = x.shape[1]
    rho = memory_kernel(memory, np.arange(T) * dt)
    n = 2 * T
    return np.fft.irfft(np.fft.rfft(x, n=n, axis=1) * np.fft.rfft(rho, n=n)[:, None], n=n, axis=1)[:, :T]
