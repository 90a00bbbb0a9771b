"""NARMA-10, the nonlinear autoregressive moving-average benchmark of reservoir computing (Atiya & Parlos 2000)."""

from __future__ import annotations

from typing import Any

import numpy as np

from wrec import _checks


def narma10(u: Any) -> np.ndarray:
    """NARMA-10 (Atiya & Parlos 2000): y_{t+1} = 0.3 y_t + 0.05 y_t Σ_{i=0}^{9} y_{t−i} + 1.5 u_{t−9} u_t + 0.1.

    The output is aligned with the input: ``y[t]`` is y_{t+1}, the value that follows input u_t, from a zero
    history (y and u are 0 before t = 0). The usual input is u_t ~ U[0, 0.5]. ReservoirPy's ``datasets.narma``
    differs: its sum runs over y_{t−1} .. y_{t−10} and its product is u_{t−10} u_t.

    Shape: u (T,) -> y (T,).

    Raises:
        ValueError: u not 1-D and finite, or a sequence that diverges (y non-finite).
    """
    u = _checks.array(u, "u", ndim=1)
    T = u.shape[0]
    y = np.zeros(T + 10)  # y[10 + t] = y_{t+1}; y[:10] the zero history y_{t} for t <= 0
    pad = np.r_[np.zeros(9), u]  # pad[9 + t] = u_t
    with np.errstate(over="ignore", invalid="ignore"):  # a divergence is reported below
        for t in range(T):
            y_t = y[9 + t]
            y[10 + t] = 0.3 * y_t + 0.05 * y_t * y[t:10 + t].sum() + 1.5 * pad[t] * pad[9 + t] + 0.1
    out = y[10:]
    if not np.all(np.isfinite(out)):
        raise ValueError("NARMA-10 diverged on this input; use u_t in [0, 0.5]")
    return out
