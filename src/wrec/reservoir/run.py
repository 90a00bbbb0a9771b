"""Running a reservoir over time, for a whole batch of reservoirs at once, on ``wrec.dynamics.run``."""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from wrec import _checks, _threads, dynamics
from wrec.reservoir import fast
from wrec.reservoir.models import STEPS

_CHECK_EVERY = 256  # steps between blow-up checks of the (B, N) state: cheap, and the error names the step
MIN_SHARE_BYTES = 32 * 1024
"""``threads=None`` gives each thread at least this much state (rows × N × itemsize) per step: below, the threads'
per-step Python work, which holds the GIL, outweighs the elementwise work they share (measured on 2 cores, B = 64:
float64 gains from N = 200, float32 from N = 500)."""


Backend = Literal["auto", "numpy", "torch"]


@dataclass
class _Simulation:
    """A validated run: the step, its parameters, the current state, the inputs (T, ...) and the recording plan."""

    step: Callable
    params: Any
    x: Any
    inputs: Any
    T: int
    washout: int
    cols: slice | np.ndarray
    shape: tuple[int, ...]  # of the recorded states, (B, T − washout, L) or (T − washout, L)
    batch: int
    kind: np.dtype
    shares: list[tuple[int, int, Any]]  # (lo, hi, parameters) of the batch's shares, stepped side by side

    @property
    def batched(self) -> bool:
        return len(self.shape) == 3

    def advance(self, start: int, stop: int, record_to: np.ndarray, offset: int) -> None:
        """Steps t = start .. stop − 1, writing the read-out state of step t ≥ offset to ``record_to[:, t − offset]``
        (B, ·, L); with more than one share, each thread steps its share of the batch on one BLAS thread."""
        torch_tanh = isinstance(self.params, fast.InPlaceESN) and self.params.tanh is fast.torch_tanh
        with np.errstate(over="ignore", invalid="ignore"), (fast.single_threaded_torch() if torch_tanh
                                                             else contextlib.nullcontext()):
            if len(self.shares) == 1:
                self.x = self._rows(self.shares[0], start, stop, record_to, offset)
                return
            with _threads.one_blas_thread(), ThreadPoolExecutor(len(self.shares)) as pool:
                states = [pool.submit(self._rows, share, start, stop, record_to, offset) for share in self.shares]
                for (lo, hi, _), state in zip(self.shares, states, strict=True):
                    self.x[lo:hi] = state.result()

    def _rows(self, share: tuple[int, int, Any], start: int, stop: int, record_to: np.ndarray, offset: int) -> Any:
        """``advance`` for one share (lo, hi, its parameters) of the batch: its state at step ``stop``."""
        lo, hi, params = share
        whole = hi - lo == self.batch
        on_step = _recorder(record_to[lo:hi], self.cols, start, offset, self.T)
        inputs = self.inputs[start:stop] if whole else self.inputs[start:stop, lo:hi]
        return dynamics.run(self.step, params, self.x if whole else self.x[lo:hi], inputs, stop - start,
                            on_step=on_step).state


def run(
    model: Any,
    u: np.ndarray,
    *,
    washout: int = 0,
    readout: int | np.ndarray | None = None,
    dtype: npt.DTypeLike | None = None,
    x0: np.ndarray | None = None,
    step: Callable | None = None,
    out: str | os.PathLike | np.ndarray | None = None,
    backend: Backend = "auto",
    threads: int | None = None,
) -> np.ndarray:
    """Simulate ``model`` driven by ``u`` and return the states after the washout.

    ``X[t]`` is the state right after ``u[washout + t]`` was applied, so ``X`` is aligned with ``u[washout:]``.
    A batch of B reservoirs (batched fields of the model, see ``wrec.reservoir.models``) and/or B input
    streams runs in one loop with one matrix product per step. ``run_blocks`` gives the same states block by
    block from one reused buffer, for runs whose record is not needed whole.

    Args:
        model: an ``ESN``, ``LeakyESN``, ``Linear`` or ``Rate`` record, or any parameter object with ``step``.
        u: input, shape (T,) or (B, T).
        washout: number of initial steps to discard (0 <= washout < T).
        readout: record all neurons (None), the first L (int), or these neuron indices (1-D int array).
        dtype: float64 (default, the model's) or float32 (faster; capacities are still computed in float64).
        x0: initial state, (N,) or (B, N); zeros by default.
        step: a pure ``step(params, x, u, *, rng=None) -> (x, outputs)`` on (B, N) states for user models (then
            x0 is required); the outputs, (B, N), are what is recorded.
        out: where the states go: a new array (None), an array of the right shape and dtype, or a ``.npy`` path,
            written as the run goes (a memory map: the states never need to fit in memory, and every capacity
            function reads the file in row blocks, ``wrec.capacity.blocks``).
        backend: the tanh of an ``ESN``/``LeakyESN`` with a dense W, whose step runs in place
            (``wrec.reservoir.fast``): ``"numpy"`` (states bit for bit those of ``esn_step``), ``"torch"``
            (torch's vectorised CPU kernel, within 2 ulp of ``np.tanh``; ≈ 2× faster than NumPy's in float64) or
            ``"auto"``: torch in float64 when it is installed and B·N ≥ 4096, NumPy otherwise. Other models
            ignore ``"auto"`` and ``"numpy"``.
        threads: how many threads step the batch of a built-in model, each a contiguous share of the B
            reservoirs with its own one-thread product, so that the elementwise work (and SciPy's single-threaded
            sparse product) runs on every core too (float64, N = 500, B = 64 on 2 cores: ≈ 1.2× one loop on
            two-thread BLAS). The states agree with one loop's to rounding (a GEMM's rounding can depend on its
            row count: ≈ 1e-15 in float64). None: BLAS's thread count, from the main thread only and with at least
            32 KiB of state per thread, so 1 inside a sweep's task or under ``OPENBLAS_NUM_THREADS=1``. A custom
            ``step`` runs one loop.

    Returns:
        States of shape (T − washout, L), or (B, T − washout, L) when anything is batched.

    Raises:
        ValueError: on bad shapes or values, and when the states become non-finite (the reservoir blew up).
    """
    sim = _simulation(model, u, washout, readout, dtype, x0, step, backend, threads)
    states = _output(out, sim.shape, sim.kind)
    sim.advance(0, sim.T, states if sim.batched else states[None], sim.washout)
    if isinstance(states, np.memmap):
        states.flush()
    return states


def run_blocks(
    model: Any,
    u: np.ndarray,
    block: int,
    *,
    washout: int = 0,
    readout: int | np.ndarray | None = None,
    dtype: npt.DTypeLike | None = None,
    x0: np.ndarray | None = None,
    step: Callable | None = None,
    backend: Backend = "auto",
    threads: int | None = None,
) -> Iterator[np.ndarray]:
    """``run``'s states, ``block`` time steps at a time: an iterator of (B, K, L) arrays (or (K, L) unbatched),
    K = ``block`` except for a shorter last block; concatenated on the time axis they are ``run``'s states.

    Every block is a view of one buffer that the next block overwrites (so memory stays at one block and the
    simulation keeps the speed of a short run): reduce it, or copy it (``X.copy()``), before asking for the next.
    Arguments as in ``run``; they are checked when ``run_blocks`` is called, the simulation runs as blocks are
    taken.

    Example: the Gram matrix of a long run without its record, ``G = sum(X.T @ X for X in run_blocks(esn, u, 1000))``.
    """
    sim = _simulation(model, u, washout, readout, dtype, x0, step, backend, threads)
    block = _checks.integer(block, "block", low=1)
    return _blocks(sim, block)


def _blocks(sim: _Simulation, block: int) -> Iterator[np.ndarray]:
    buffer = np.empty((sim.batch, min(block, sim.shape[-2]), sim.shape[-1]), sim.kind)  # (B, K, L)
    sim.advance(0, sim.washout, buffer, sim.T)  # the washout: nothing is recorded
    for start in range(sim.washout, sim.T, block):
        stop = min(start + block, sim.T)
        sim.advance(start, stop, buffer, start)
        yield (buffer if sim.batched else buffer[0])[..., : stop - start, :]


def _simulation(model: Any, u: np.ndarray, washout: int, readout: int | np.ndarray | None,
                dtype: npt.DTypeLike | None, x0: np.ndarray | None, step: Callable | None,
                backend: str, threads: int | None) -> _Simulation:
    """``run``'s arguments, checked, as a ``_Simulation`` at t = 0."""
    custom_step = step is not None
    model, step, kind, n, model_batch = _model_step(model, step, dtype, x0)
    if threads is not None:
        _checks.integer(threads, "threads", low=1)
    if x0 is not None:
        x0 = _initial_state(x0, kind, n, model_batch)
    if kind not in (np.float32, np.float64):
        raise TypeError(f"dtype must be numpy.float32 or numpy.float64, got {kind}")
    u = _checks.array(u, "u", ndim=(1, 2), dtype=kind)
    T = u.shape[-1]
    washout = _checks.integer(washout, "washout", low=0)
    if washout >= T:
        raise ValueError(f"washout must be smaller than the input length T = {T}, got {washout}")
    B, batched = _batch(model_batch, u)
    u = np.ascontiguousarray(np.broadcast_to(u, (B, T)).T)  # (T, B): u[t] is contiguous
    if x0 is not None and x0.ndim == 2 and x0.shape[0] not in (1, B):
        raise ValueError(f"x0 has {x0.shape[0]} rows but the batch has B = {B}")
    x = np.zeros((B, n), kind) if x0 is None else np.array(np.broadcast_to(x0, (B, n)))
    cols = _checks.readout_index(readout, n)
    n_out = len(range(n)[cols]) if isinstance(cols, slice) else cols.size
    shape = (B, T - washout, n_out) if batched else (T - washout, n_out)
    params, inputs = model, u
    tanh = _tanh(backend, model, custom_step, kind, B * n)
    if tanh is not None:
        step = fast.inplace_esn_step
        params, inputs = fast.prepare(model, u, tanh)
    count = 1 if custom_step else _share_count(threads, B, n * kind.itemsize)
    cuts = np.linspace(0, B, count + 1).astype(int).tolist()
    shares = [(lo, hi, fast.rows(params, lo, hi) if tanh is not None else params.rows(lo, hi))
              for lo, hi in itertools.pairwise(cuts)] if count > 1 else [(0, B, params)]
    return _Simulation(step, params, x, inputs, T, washout, cols, shape, B, kind, shares)


def _share_count(threads: int | None, B: int, row_bytes: int) -> int:
    """How many shares ``run``'s ``threads`` cuts the batch of B reservoirs into (rows of ``row_bytes`` each)."""
    if threads is not None:
        return min(_checks.integer(threads, "threads", low=1), B)
    return min(_threads.spare_threads(), max(1, B * row_bytes // MIN_SHARE_BYTES))


def _tanh(backend: str, model: Any, custom_step: bool, kind: np.dtype,
          block: int) -> Callable[[np.ndarray, np.ndarray], None] | None:
    """The tanh kernel of the in-place ESN step that ``backend`` picks, or None where the model's own step runs;
    ``block`` = B·N."""
    if backend not in ("auto", "numpy", "torch"):
        raise ValueError(f"backend must be 'auto', 'numpy' or 'torch', got {backend!r}")
    if custom_step or not fast.supports(model):
        if backend == "torch":
            raise ValueError("backend='torch' needs an ESN or LeakyESN with a dense W, (N, N) or (B, N, N), and "
                             f"the activation np.tanh; got {'a custom step' if custom_step else type(model).__name__}")
        return None
    if backend == "torch" and not fast.available():
        raise ImportError("backend='torch' needs torch: pip install 'wrec[torch]'")
    use_torch = backend == "torch" or (backend == "auto" and kind == np.float64 and block >= fast.MIN_BLOCK
                                       and fast.available())
    return fast.torch_tanh if use_torch else fast.numpy_tanh


def _model_step(model, step: Callable | None, dtype: npt.DTypeLike | None,
                x0: np.ndarray | None) -> tuple[object, Callable, np.dtype, int, int | None]:
    """(model, step, dtype, N, the model's batch size or None) for ``run``: a built-in model's own step, in ``dtype``
    when given; a custom step takes N and the batch from ``x0``."""
    if step is None:
        step = STEPS.get(type(model))
        if step is None:
            raise TypeError(f"model must be one of {[t.__name__ for t in STEPS]} or come with step=...; "
                            f"got {type(model).__name__}")
        if dtype is not None:
            model = model.astype(dtype)
        return model, step, np.dtype(model.dtype), model.n, model.batch_size
    if x0 is None:
        raise ValueError("x0 is required with a custom step (it fixes N)")
    return model, step, np.dtype(dtype or np.float64), np.shape(x0)[-1], (np.shape(x0)[0] if np.ndim(x0) == 2 else None)


def _initial_state(x0: np.ndarray, kind: np.dtype, n: int, model_batch: int | None) -> np.ndarray:
    """``run``'s x0 as an array of ``kind``, checked against N and the model's batch size."""
    x0 = _checks.array(x0, "x0", ndim=(1, 2), dtype=kind)
    if x0.shape[-1] != n or (x0.ndim == 2 and model_batch is not None and x0.shape[0] not in (1, model_batch)):
        raise ValueError(f"x0 must have shape (N,) or (B, N) with N = {n}"
                         f"{'' if model_batch is None else f' and B = {model_batch}'}, got {x0.shape}")
    return x0


def _batch(model_batch: int | None, u: np.ndarray) -> tuple[int, bool]:
    """(B, whether anything is batched): the model's batch and u's input streams must agree."""
    sizes = {s for s in (model_batch, u.shape[0] if u.ndim == 2 else None) if s is not None}
    if len(sizes) > 1:
        raise ValueError(f"the model describes {model_batch} reservoirs but u has {u.shape[0]} input streams; "
                         "give u of shape (T,) or (B, T) with the same B")
    return (sizes.pop(), True) if sizes else (1, False)


def _recorder(record_to: np.ndarray, cols: slice | np.ndarray, start: int, offset: int,
              T: int) -> Callable[[int, np.ndarray, np.ndarray], None]:
    """``run``'s ``on_step`` for a loop that starts at step ``start``: writes the read-out state of step t ≥ ``offset``
    into ``record_to[:, t − offset]`` (B, ·, L) and checks every ``_CHECK_EVERY`` steps (and at the last) that the
    reservoir has not blown up."""

    def record(t: int, x: np.ndarray, y: np.ndarray) -> None:
        t += start
        if t >= offset:
            record_to[:, t - offset] = y[:, cols]
        if t % _CHECK_EVERY == _CHECK_EVERY - 1 or t == T - 1:
            if not np.all(np.isfinite(x)):
                raise ValueError(
                    f"the reservoir blew up: states became non-finite by step {t} of {T}; "
                    "lower the spectral radius / gain, the input scale or the time step")

    return record


def _output(out: str | os.PathLike | np.ndarray | None, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """The array the states are written to (``run``'s ``out``)."""
    if out is None:
        return np.empty(shape, dtype)
    if isinstance(out, (str, os.PathLike)):
        path = os.fspath(out)
        if not path.endswith(".npy"):
            raise ValueError(f"out as a path must name a .npy file, got {path!r}")
        return np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    if not isinstance(out, np.ndarray) or out.shape != shape or out.dtype != dtype:
        raise ValueError(f"out must be a .npy path or an array of shape {shape} and dtype {dtype}, got "
                         f"{getattr(out, 'shape', type(out).__name__)} {getattr(out, 'dtype', '')}")
    return out
