"""Where the projection runs: NumPy, or PyTorch (CPU or CUDA) when the states are a torch tensor.

The projection ZᵀA (``wrec.capacity.targets.project``) is the hot loop of every capacity; it runs where the
states live. States given as a torch tensor (or any array with ``__dlpack__`` that is not a NumPy array, e.g. a
CuPy array, taken without a copy by ``torch.from_dlpack``) are read in row blocks like a memmap, and the target
generation and the GEMMs run on the tensor's device in float64 (float32 states are converted block by block, so
every reduction accumulates in float64). torch is imported only when such states are given.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


class NumpyBackend:
    """The default: arrays stay NumPy arrays."""

    def asarray(self, x: Any) -> Any:
        return np.asarray(x, dtype=np.float64)

    def index(self, x: np.ndarray) -> Any:
        return x

    def windows(self, basis: Any, rows: int) -> Any:
        """windows[d, j] = basis[d, j : j + rows], a view."""
        return sliding_window_view(basis, rows, axis=1)

    def zeros(self, shape: tuple[int, ...]) -> Any:
        return np.zeros(shape)

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.asarray(x)


class TorchBackend:
    """float64 tensors on one torch device."""

    def __init__(self, device: Any) -> None:
        import torch

        self.torch, self.device = torch, device

    def asarray(self, x: Any) -> Any:
        return self.torch.as_tensor(x, dtype=self.torch.float64, device=self.device)

    def index(self, x: np.ndarray) -> Any:
        return self.torch.as_tensor(x, device=self.device)

    def windows(self, basis: Any, rows: int) -> Any:
        return basis.unfold(1, rows, 1)

    def zeros(self, shape: tuple[int, ...]) -> Any:
        return self.torch.zeros(shape, dtype=self.torch.float64, device=self.device)

    def to_numpy(self, x: Any) -> np.ndarray:
        return x.detach().cpu().numpy()

    def __repr__(self) -> str:
        return f"TorchBackend({self.device})"


NUMPY = NumpyBackend()


def is_tensor(x: object) -> bool:
    """Whether x is a torch tensor or another non-NumPy array that torch takes through DLPack (CuPy, JAX)."""
    module = type(x).__module__
    if module.startswith("torch"):
        return hasattr(x, "device") and hasattr(x, "ndim")
    return hasattr(x, "__dlpack__") and not isinstance(x, np.ndarray) and not module.startswith(("numpy", "dask"))


def as_tensor(x: Any) -> Any:
    """x as a torch tensor on its own device, without a copy."""
    import torch

    return x if isinstance(x, torch.Tensor) else torch.from_dlpack(x)


def backend_of(x: object) -> NumpyBackend | TorchBackend:
    """The backend of a row source (its ``backend`` attribute), NumPy for anything else."""
    return getattr(x, "backend", NUMPY)
