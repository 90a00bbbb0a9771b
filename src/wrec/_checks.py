"""Argument validation shared by every public function: one wording for every error."""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral, Real

import numpy as np
import numpy.typing as npt

Seed = int | np.random.Generator | None


def rng(seed: Seed, name: str = "seed") -> np.random.Generator:
    """A Generator from an int, a SeedSequence or a Generator (passed through)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or (isinstance(seed, (Integral, np.random.SeedSequence)) and not isinstance(seed, bool)):
        return np.random.default_rng(seed)
    raise TypeError(f"{name} must be an int or a numpy.random.Generator, got {type(seed).__name__}")


def array(
    x: object,
    name: str,
    *,
    ndim: int | Sequence[int] | None = None,
    dtype: npt.DTypeLike = np.float64,
    finite: bool = True,
) -> np.ndarray:
    """`x` as a real array of `dtype`, checked for rank and finiteness; errors name the argument."""
    try:
        a = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name} must be array-like of numbers: {exc}") from None
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise TypeError(f"{name} must hold real numbers, got dtype {a.dtype}")
    if np.iscomplexobj(a):
        raise TypeError(f"{name} must be real, got complex dtype {a.dtype}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if a.ndim not in allowed:
            want = " or ".join(f"{d}-D" for d in allowed)
            raise ValueError(f"{name} must be {want}, got shape {a.shape}")
    a = a.astype(dtype, copy=False)
    if finite and not np.all(np.isfinite(a)):
        bad = np.size(a) - int(np.count_nonzero(np.isfinite(a)))
        raise ValueError(f"{name} has {bad} non-finite value(s) (NaN or inf); remove or replace them")
    return a


def first_nonfinite_row(X: np.ndarray) -> int | None:
    """The index of the first row of X (T, N) holding a NaN or inf, or None if every value is finite."""
    bad = ~np.all(np.isfinite(X), axis=1)
    return int(np.argmax(bad)) if bad.any() else None


def integer(x: object, name: str, *, low: int | None = None, high: int | None = None) -> int:
    """An int within [low, high]."""
    if isinstance(x, bool) or not isinstance(x, Integral):
        raise TypeError(f"{name} must be an int, got {type(x).__name__}")
    x = int(x)
    if low is not None and x < low:
        raise ValueError(f"{name} must be >= {low}, got {x}")
    if high is not None and x > high:
        raise ValueError(f"{name} must be <= {high}, got {x}")
    return x


def real(
    x: object,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """A finite float within the given (open or closed) bounds."""
    if isinstance(x, bool) or not isinstance(x, Real):
        raise TypeError(f"{name} must be a real number, got {type(x).__name__}")
    x = float(x)
    if not np.isfinite(x):
        raise ValueError(f"{name} must be finite, got {x}")
    if low is not None and (x <= low if low_open else x < low):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {x}")
    if high is not None and (x >= high if high_open else x > high):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}, got {x}")
    return x


def square(W: object, name: str = "W") -> np.ndarray:
    """A finite square float64 matrix."""
    W = array(W, name, ndim=2)
    if W.shape[0] != W.shape[1] or W.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty square matrix, got shape {W.shape}")
    return W


def readout_index(readout, n: int) -> slice | np.ndarray:
    """Columns of a readout: all (None), the first L (an int), or these neuron indices (a 1-D int array)."""
    if readout is None:
        return slice(None)
    if isinstance(readout, (int, np.integer)) and not isinstance(readout, bool):
        return slice(0, integer(readout, "readout", low=1, high=n))
    idx = np.asarray(readout)
    if idx.ndim != 1 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"readout must be None, an int L (first L neurons) or a 1-D integer index array, "
                         f"got {readout!r}")
    if idx.min() < -n or idx.max() >= n:
        raise ValueError(f"readout indices must lie in [0, {n}), got range [{idx.min()}, {idx.max()}]")
    return idx
