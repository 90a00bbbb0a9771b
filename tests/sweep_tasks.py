"""Sweep tasks for the tests, importable by worker processes (spawned pools and Dask workers put ``tests/`` on
their path: it is on the parent's ``sys.path``, which both copy)."""

from __future__ import annotations

import dataclasses
import os
import signal
import time

import numpy as np
import pandas as pd

from wrec import sweep
from wrec.sweep import task_rng


@dataclasses.dataclass(frozen=True)
class Point:
    i: int
    kind: str = "tanh"
    seed: int = 7
    sleep: float = 0.0


def grid(n: int, **kw) -> list[Point]:
    return [Point(i, kind=("tanh", "linear")[i % 2], **kw) for i in range(n)]


def measure(p: Point) -> pd.DataFrame:
    """Some numbers from the task's own stream: independent of worker and order."""
    if p.sleep:
        time.sleep(p.sleep)
    rng = task_rng(p.seed, p.i, p.kind)
    x = rng.standard_normal(200)
    return pd.DataFrame({"stat": ["mean", "std", "max"], "value": [x.mean(), x.std(), x.max()]})


def logged(p: Point, *, log: str) -> pd.DataFrame:
    """``measure``, first appending "pid i" to ``log`` (O_APPEND: each line is one atomic write)."""
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{os.getpid()} {p.i}\n".encode())
    finally:
        os.close(fd)
    return measure(p)


def marks_task_dir(p: Point) -> pd.DataFrame:
    """``measure``, first writing the worker's pid into the task's ``task_dir()`` (its partial state)."""
    folder = sweep.task_dir()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pid").write_text(str(os.getpid()))
    return measure(p)


def reports_task_dir(p: Point) -> pd.DataFrame:
    """The task's ``task_dir()`` as it is at its start and after ``p.sleep`` seconds (while other tasks start), and
    its ``task_context()`` key, as strings."""
    before = sweep.task_dir()
    time.sleep(p.sleep)
    context = sweep.task_context()
    return pd.DataFrame({"before": [str(before)], "after": [str(sweep.task_dir())],
                         "context_key": [None if context is None else context.key]})


def dies_once(p: Point, *, victim: int, marker: str) -> pd.DataFrame:
    """``measure``, except that task ``victim`` SIGKILLs its own worker process the first time it runs."""
    if p.i == victim:
        try:
            fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            pass
        else:
            os.close(fd)
            os.kill(os.getpid(), signal.SIGKILL)
    return measure(p)


def fails_at(p: Point, *, bad: int) -> pd.DataFrame:
    if p.i == bad:
        raise ArithmeticError(f"task {p.i} is broken")
    return measure(p)


def not_a_frame(p: Point) -> object:
    return [1, 2, 3] if p.i == 1 else measure(p)


def with_nonfinite(p: Point) -> pd.DataFrame:
    return pd.DataFrame({"stat": ["a", "b", "c"], "value": [np.nan, np.inf, -np.inf]})


def measure_and_env(p: Point) -> pd.DataFrame:
    """``measure``, with the BLAS thread settings the worker process runs under as extra columns."""
    return measure(p).assign(**{v: os.environ.get(v) for v in BLAS_VARS})


BLAS_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
