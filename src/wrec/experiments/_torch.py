"""Helpers for the experiments that train torch models."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported inside the functions: wrec.experiments loads without the [torch] extra
    import torch


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the body with ``torch.set_num_threads(n)``, then restore the caller's thread count.

    For a task that runs in the caller's process (``--workers 1``, a test, a notebook): its speed and numbers are
    those of ``n`` threads, and the process is left as it was. Pool workers already start with one thread (the
    sweep sets ``OMP_NUM_THREADS=1`` in their environment), so there it changes nothing.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def torch_generator(seed: np.random.Generator | np.random.SeedSequence) -> torch.Generator:
    """A ``torch.Generator`` seeded from a task's NumPy stream (``sweep.task_rng``/``sweep.task_seed``).

    From a ``Generator``: ``manual_seed(rng.integers(2**62))`` (one draw taken from it). From a ``SeedSequence``:
    its first 64-bit state word shifted right by one (a non-negative int63), without drawing from any stream —
    cfc-closed-loop's initial weights are seeded this way, and keep it so that its results stay as stored.
    """
    import torch

    if isinstance(seed, np.random.SeedSequence):
        value = int(seed.generate_state(1, np.uint64)[0] >> np.uint64(1))
    elif isinstance(seed, np.random.Generator):
        value = int(seed.integers(2**62))
    else:
        raise TypeError(f"seed must be a numpy Generator or SeedSequence, got {type(seed).__name__}")
    return torch.Generator().manual_seed(value)
