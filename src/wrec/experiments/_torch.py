"""Helpers for the experiments that train torch models."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


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
