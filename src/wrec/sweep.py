"""A grid of configs -> one task each -> one durable record per finished task.

``run(fn, configs, store=...)`` evaluates ``fn(config) -> DataFrame`` for every config not already in the
store, writes each result the moment it finishes, and returns the results of exactly these configs in
config order. An interrupted sweep resumes without recomputing or losing anything finished; a stored result
that no longer verifies (``store.CorruptResult``) is set aside, with a warning, and computed again. A long task can
also keep durable partial state (``checkpoint`` files) in ``task_dir()``, so that it resumes mid-way; the folder
is removed once the task's result is stored.

Where the tasks run is the caller's choice and never changes the numbers: in-process (``workers=1``), a local
process pool (``workers > 1``), or any ``concurrent.futures.Executor`` — for a cluster, Dask's
``distributed.Client(address).get_executor()``. Every task runs with one BLAS/OpenMP thread wherever it runs
(``threadpoolctl``; a BLAS's result can depend on its thread count), so results are bit-identical across
executors. A local pool's workers exit when the process that started them dies, even by SIGKILL. Randomness
inside a task must come from the task's own coordinates (``task_rng``), never from the order or the worker it
ran on.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import hashlib
import multiprocessing
import operator
import os
import shutil
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from wrec._threads import one_blas_thread
from wrec.store import CorruptResult, CorruptResultWarning, Store, config_key, legacy_config_key

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

C = TypeVar("C", bound="DataclassInstance")  # a config: a dataclass instance (``store.config_key``)

#: Environment of the process-pool workers: one BLAS/OpenMP thread each (unless the user set these).
BLAS_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
PARTIAL = ".partial"  # under the store's root: one folder of partial state per running task


@dataclasses.dataclass(frozen=True)
class TaskContext:
    """What a running sweep task is told about itself: its ``key`` (``store.config_key`` of its config) and
    ``folder``, where it may keep durable partial state (``<store>/.partial/<key>``; None without a store)."""

    key: str
    folder: Path | None


# Set for the duration of each task call, in the context of the thread running it: tasks that share a process
# (a thread pool, a Dask worker's threads) each see their own, which a module global could not give them.
_context: contextvars.ContextVar[TaskContext | None] = contextvars.ContextVar("wrec_sweep_task", default=None)


def task_context() -> TaskContext | None:
    """The ``TaskContext`` of the sweep task running in this thread; None outside a sweep task. A thread that the
    task starts itself sees it only when run in a copy of the task's context (``contextvars.copy_context()``)."""
    return _context.get()


def task_dir() -> Path | None:
    """The folder where the running sweep task may keep durable partial state (e.g. ``wrec.checkpoint`` files),
    ``<store>/.partial/<key>``, i.e. ``task_context().folder``; None outside a sweep task or when the sweep has no
    store. It survives an interrupted run (so the rerun of the task resumes from it) and is removed once the
    task's result is stored. On a cluster it must be on a file system the workers share."""
    context = _context.get()
    return None if context is None else context.folder


@dataclasses.dataclass(frozen=True)
class _Task:
    """``fn`` with its ``TaskContext`` set while it runs (picklable, so it travels to pool and Dask workers)."""

    fn: Callable
    partial: Path | None

    def __call__(self, key: str, config: object) -> pd.DataFrame:
        token = _context.set(TaskContext(key, None if self.partial is None else self.partial / key))
        try:
            with one_blas_thread():  # a BLAS's result can depend on its thread count: every task runs on one
                return self.fn(config)
        finally:
            _context.reset(token)


def run(
    fn: Callable[[C], pd.DataFrame],
    configs: Sequence[C],
    *,
    store: Store | None = None,
    executor: Executor | None = None,
    workers: int = 1,
    progress: bool = False,
    desc: str | None = None,
) -> pd.DataFrame:
    """Evaluate ``fn`` on each config (skipping those already stored) and return one tidy table.

    Each result gets the config's scalar fields as columns (when ``fn`` did not add them) and its key in
    ``key``. With a ``store``, every result is written by this process the moment its task finishes, and the
    returned rows are the stored ones, so a fresh run, a resumed run and any executor give the same table. A
    stored result that fails verification (``store.CorruptResult``: damaged, or written without a checksum) is
    renamed aside (``Store.set_aside``, never deleted) and recomputed, with a ``store.CorruptResultWarning``
    naming the file and what failed. A result stored under the config's earlier key (``store.legacy_config_key``,
    from before keys left out default fields) is re-keyed (``Store.rekey``) and used, not recomputed.

    ``executor``: any ``concurrent.futures.Executor`` (it is used, not shut down). Otherwise ``workers == 1``
    runs in this process and ``workers > 1`` in a spawned process pool whose workers use one BLAS thread.
    Off-process, ``fn`` and the configs must be picklable (top-level function and dataclass).

    A task that raises stops the sweep: tasks not yet started are cancelled, those already finished (and, on a
    local pool, those running) are stored, then the exception propagates with a note naming the config.
    A result that is not a DataFrame is a ``TypeError`` naming the config.

    Interrupted by Ctrl-C or SIGTERM (while SIGTERM has its default action, it exits with status 143 instead of
    killing this process outright), a local pool's workers are terminated with their running tasks; finished
    results stay stored and the running tasks' ``task_dir()`` folders stay, so a rerun resumes.

    The returned table's ``attrs`` say what this call did: ``tasks`` (distinct configs), ``tasks_computed`` and
    ``tasks_reused`` (found in the store).
    """
    configs = list(configs)
    if not configs:
        raise ValueError("configs is empty: nothing to run")
    workers = operator.index(workers)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if executor is not None and workers != 1:
        raise ValueError("give either executor or workers, not both")
    keys = [config_key(c) for c in configs]
    results, todo = _stored(configs, keys, store)

    partial = None if store is None else store.root / PARTIAL
    task = _Task(fn, partial)
    if partial is not None and partial.is_dir():  # an interrupt between storing and removing its folder
        for stale in set(os.listdir(partial)) & results.keys():
            shutil.rmtree(partial / stale, ignore_errors=True)

    def finish(key: str, result: pd.DataFrame) -> None:
        frame = _label(result, todo[key], key)
        if store is not None:
            store.save(key, frame)
            frame = store.load(key)
            shutil.rmtree(store.root / PARTIAL / key, ignore_errors=True)
        results[key] = frame
        bar.update()

    with tqdm(total=len(todo), desc=desc, disable=not progress or not todo, unit="task") as bar:
        if executor is not None:
            _run_on(executor, task, todo, finish)
        elif workers == 1:
            _run_here(task, todo, finish)
        else:
            _run_on_pool(workers, task, todo, finish)
    table = pd.concat([results[key] for key in keys], ignore_index=True)
    table.attrs.update(tasks=len(results), tasks_computed=len(todo), tasks_reused=len(results) - len(todo))
    return table


def count_stored(configs: Sequence[object], store: Store) -> tuple[int, int]:
    """(distinct configs, how many of them have a result in ``store``, under their key or legacy key): what
    ``run`` would reuse, without reading or verifying any file (a corrupt one is counted as stored)."""
    keys = {config_key(c): c for c in configs}
    return len(keys), sum(k in store or legacy_config_key(c) in store for k, c in keys.items())


def _stored(configs: list[C], keys: list[str], store: Store | None) -> tuple[dict[str, pd.DataFrame], dict[str, C]]:
    """(the verified stored results by key, the configs still to run by key), each key once. A result stored under
    the config's legacy key is re-keyed; one that fails verification is set aside (with a warning) and run again."""
    results: dict[str, pd.DataFrame] = {}
    todo: dict[str, C] = {}
    for config, key in zip(configs, keys, strict=True):
        if key in results or key in todo:
            continue
        if store is not None:
            legacy = legacy_config_key(config)
            source = key if key in store else legacy if legacy in store else None
            if source is not None:
                try:
                    results[key] = store.load(key) if source == key else store.rekey(legacy, key)
                    continue
                except CorruptResult as exc:
                    aside = store.set_aside(source)
                    warnings.warn(f"{exc}; set aside as {aside.name}, computing it again", CorruptResultWarning,
                                  stacklevel=3)  # at the caller of run()
        todo[key] = config
    return results, todo


def _run_here(task: _Task, todo: dict, finish: Callable[[str, pd.DataFrame], None]) -> None:
    """Run every task in this process, in order; a failed task's exception is named after its config."""
    for key, config in todo.items():
        try:
            result = task(key, config)
        except BaseException as exc:
            _name_config(exc, key, config)
            raise
        _check_frame(result, key, config)
        finish(key, result)


def _run_on_pool(workers: int, task: _Task, todo: dict, finish: Callable[[str, pd.DataFrame], None]) -> None:
    """Run the tasks on a spawned local process pool whose workers use one BLAS thread (none without tasks)."""
    if not todo:
        return
    with _blas_capped_env(), _sigterm_exits(), ProcessPoolExecutor(
        max_workers=min(workers, len(todo)), mp_context=multiprocessing.get_context("spawn"),
        initializer=_exit_with_parent, initargs=(os.getpid(),),
    ) as pool:
        try:
            _run_on(pool, task, todo, finish)
        except BaseException:
            # Interrupted (Ctrl-C, SIGTERM): the running tasks' results could no longer be stored, so
            # stop their workers rather than leave them computing. (A failed task has waited for them.)
            _terminate_workers(pool)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _run_on(executor: Executor, task: _Task, todo: dict, finish: Callable[[str, pd.DataFrame], None]) -> None:
    """Submit every task and finish each as it completes. On the first failed task cancel the others, keep
    finishing those that still complete, then raise it."""
    futures: dict[Future, str] = {}
    try:
        for key, config in todo.items():
            futures[executor.submit(task, key, config)] = key
        failure: BaseException | None = None
        for future in as_completed(futures):
            key = futures[future]
            if future.cancelled():
                continue
            exc = _failure(future, key, todo[key])
            if exc is None:
                finish(key, future.result())
            elif failure is None:
                failure = exc
                for other in futures:
                    other.cancel()
        if failure is not None:
            raise failure
    except BaseException:
        for other in futures:
            other.cancel()
        raise


def _failure(future: Future, key: str, config: object) -> BaseException | None:
    """What failed in a finished task: its exception (named after its config), a TypeError for a result that is
    not a DataFrame, or None."""
    exc = future.exception()
    if exc is not None:
        _name_config(exc, key, config)
        return exc
    try:
        _check_frame(future.result(), key, config)
    except TypeError as bad:
        return bad
    return None


def _check_frame(result: object, key: str, config: object) -> None:
    if not isinstance(result, pd.DataFrame):
        raise TypeError(f"sweep task {key} returned {type(result).__name__}, not a DataFrame: {config!r}")


def _name_config(exc: BaseException, key: str, config: object) -> None:
    note = f"in sweep task {key}: {config!r}"
    if sys.version_info >= (3, 11):
        exc.add_note(note)
    else:  # pragma: no cover
        exc.__notes__ = [*getattr(exc, "__notes__", []), note]


@contextlib.contextmanager
def _sigterm_exits() -> Iterator[None]:
    """While a local pool runs, make SIGTERM raise ``SystemExit(143)`` here, so it takes the interrupt path that
    terminates the workers (SIGTERM's default action would kill this process alone and orphan them); then restore
    the previous handler. Only in the main thread, and only over the default action: a handler the program
    installed itself (or SIG_IGN) is left alone."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield
        return
    received = False

    def exit_once(signum: int, frame: object) -> None:
        nonlocal received
        if not received:  # a second SIGTERM must not interrupt the cleanup the first one started
            received = True
            raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, exit_once)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _terminate_workers(pool: ProcessPoolExecutor) -> None:
    """SIGTERM each of the pool's worker processes (Python >= 3.14 has this as ``terminate_workers``; before, the
    processes are only in the private ``_processes``). The pool then reports itself broken and shuts down."""
    if hasattr(pool, "terminate_workers"):  # pragma: no cover (Python >= 3.14)
        pool.terminate_workers()
        return
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        with contextlib.suppress(OSError, ValueError):  # already exited (or closed)
            process.terminate()


def _exit_with_parent(parent: int) -> None:
    """Pool-worker initializer: end this worker when the process that started it (pid ``parent``) dies, even by
    SIGKILL, which gives it no chance to stop its workers (they would live on idle, adopted by PID 1). On Linux
    the kernel sends SIGKILL at once (``prctl(PR_SET_PDEATHSIG)``); everywhere a daemon thread checks the parent
    pid twice a second."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent:  # (died before the line above)
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="wrec-exit-with-parent", daemon=True).start()


@contextlib.contextmanager
def _blas_capped_env() -> Iterator[None]:
    """Set ``BLAS_ENV`` (where unset) while a pool runs, so the workers it spawns (on demand) inherit it; then
    restore this process's environment.

    A worker initializer would run too late: a spawned worker imports NumPy (loading OpenBLAS, which reads its
    thread count once) while it re-imports ``__main__`` and unpickles its target, before any initializer runs.
    """
    added = {k: v for k, v in BLAS_ENV.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)


def _label(frame: pd.DataFrame, config: DataclassInstance, key: str) -> pd.DataFrame:
    """``frame`` with the config's scalar fields as columns where it has none of that name (a nested dataclass,
    e.g. a task's grid point, contributes its own fields in place), and ``key``."""
    frame = frame.copy()

    def add(fields: dict) -> None:
        for name, value in fields.items():
            if isinstance(value, dict):
                add(value)
            elif name not in frame.columns and not isinstance(value, (list, tuple)):
                frame[name] = value

    add(dataclasses.asdict(config))
    frame["key"] = key
    return frame


def task_seed(root_seed: int, *coordinates: int | str | float) -> np.random.SeedSequence:
    """The ``SeedSequence`` of one task: the root seed spawned along the task's coordinates.

    Coordinates are integers (a non-negative int ``i`` gives exactly ``SeedSequence(root_seed).spawn(...)[i]``),
    strings, or floats (hashed with SHA-256 of a typed encoding, so ``1`` and ``1.0`` are different coordinates).
    The stream depends only on ``(root_seed, *coordinates)``: not on the worker, the order, or ``PYTHONHASHSEED``.
    """
    root = operator.index(root_seed)
    if root < 0:
        raise ValueError(f"root_seed must be >= 0, got {root}")
    return np.random.SeedSequence(root, spawn_key=tuple(_coordinate_word(c) for c in coordinates))


def task_rng(root_seed: int, *coordinates: int | str | float) -> np.random.Generator:
    """``numpy.random.default_rng(task_seed(root_seed, *coordinates))``: a task's own random stream."""
    return np.random.default_rng(task_seed(root_seed, *coordinates))


def _coordinate_word(c: int | str | float) -> int:
    if isinstance(c, str):
        encoded = b"str:" + c.encode("utf-8")
    elif isinstance(c, (float, np.floating)):
        encoded = b"float:" + float(c).hex().encode()
    else:
        try:
            value = operator.index(c)
        except TypeError:
            raise TypeError(f"task coordinates must be int, str or float, got {type(c).__name__}: {c!r}") from None
        if value >= 0:
            return value
        encoded = b"int:" + str(value).encode()
    return int.from_bytes(hashlib.sha256(encoded).digest()[:16], "little")
