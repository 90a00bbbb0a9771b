"""The one timing rule every benchmark uses: the minimum wall time over repeats, after an optional warm-up."""

from __future__ import annotations

import time
from collections.abc import Callable


def best(fn: Callable[[], object], repeats: int, *, warmup: Callable[[], object] | None = None) -> float:
    """Minimum wall time (s) of ``fn()`` over ``repeats`` calls, after one call of ``warmup`` if given."""
    if warmup is not None:
        warmup()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)
