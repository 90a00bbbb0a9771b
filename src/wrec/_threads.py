"""One BLAS thread while any caller needs it: the one mechanism the sweep's tasks and the capacity projection share."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

from threadpoolctl import threadpool_info, threadpool_limits

_lock = threading.Lock()
_users = 0  # blocks of this process inside ``one_blas_thread`` now
_limiter: threadpool_limits | None = None


def blas_threads() -> int:
    """The number of threads BLAS may use now (the largest over the loaded BLAS libraries; 1 if none is seen)."""
    return max([int(lib["num_threads"]) for lib in threadpool_info() if lib["user_api"] == "blas"] or [1])


def spare_threads() -> int:
    """How many threads a call may spread its work over, each on one BLAS thread: BLAS's thread count (at most the
    cores) from the main thread; 1 from any other (a pool's worker: nesting is the caller's business, and a BLAS
    limit set there would outlive the call, see ``one_blas_thread``)."""
    if threading.current_thread() is not threading.main_thread():
        return 1
    return min(blas_threads(), os.cpu_count() or 1)


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run the block with one thread in every BLAS/OpenMP library loaded (``threadpoolctl``). Re-entrant and shared
    by threads: the first block to enter sets the limit, the last to leave restores the previous one (a per-block
    restore would lift the limit under a block still running on another thread). (OpenBLAS ignores a limit set
    from another thread than the one that last set its thread count: enter it from the thread that owns the
    count, as the sweep's tasks and the projection's main thread do.)"""
    global _users, _limiter
    with _lock:
        if _users == 0:
            _limiter = threadpool_limits(limits=1)
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0 and _limiter is not None:
                _limiter.restore_original_limits()
                _limiter = None
