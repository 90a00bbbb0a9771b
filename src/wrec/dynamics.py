"""One contract for every simulated system in wrec, and the one loop that runs any of them over time.

The contract (a pure step plus a thin loop, as Diffrax's ``diffeqsolve`` runs any ``solver.step``)::

    step(params, state, inputs, *, rng=None) -> (state, outputs)

Each word has one meaning across wrec:

* ``params``: one frozen record of everything the step reads and never changes: constants *and* weights
  (``reservoir.ESN`` / ``LeakyESN`` / ``Linear`` / ``Rate``; ``spiking.SCN`` = ``SCNWeights`` + ``SCNParams``).
* ``state``: what the step carries to the next step: an array (a reservoir's (B, N) states) or a NamedTuple of
  arrays (``spiking.SCNState``). A learning run's state also holds the weights it changes and its running sums.
* ``inputs``: what the system receives at this step (u_t, the current c_t, or a tuple of aligned per-step values).
* ``outputs``: what the step emits at this step (the observed state; the spikes).
* ``rng``: a ``numpy.random.Generator`` for the step's noise; a step without noise accepts and ignores it.
* ``seed``: ``int | numpy.random.Generator | None``, taken by the functions that *make* a generator, never by a step.
* ``rule``: the frozen record of a learning rule's constants (``AutoencoderLearning``, ``LDSLearning``,
  ``ConvexLearning``); a learning step has the rule's record as its params and the weights in its state.

Torch cells keep ``torch.nn.GRU``'s module contract; their functional steps take ``(params, state, inputs, ...)``
with the weights as tensors after the inputs (autograd needs them as separate leaves).

Example, an ESN over a batch of 8 input streams, recording every state::

    from wrec import dynamics, reservoir
    p = reservoir.ESN(W, w_in=w_in)
    out = dynamics.run(reservoir.esn_step, p, np.zeros((8, N)), u.T, len(u), on_step=record)

``run`` is the loop: it takes the input stream (an array indexed by time, a ``Stream`` drawn chunk by chunk, a
callable of the step index, or any iterable), calls ``on_step(t, state, outputs)`` after every step, calls
``log(t, state) -> (entry, state)`` after the steps listed in ``log_at`` (t = steps done, 0 = before the first), and
with ``checkpoint`` saves everything needed to continue (state, log, the stream's and the generator's states) at
each logged step with ``wrec.checkpoint``; a rerun resumes from that file and gives the uninterrupted numbers.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from wrec import checkpoint as _ckpt

Step = Callable[..., tuple[Any, Any]]
"""``step(params, state, inputs, *, rng=None) -> (state, outputs)``."""


@runtime_checkable
class Stream(Protocol):
    """An input stream drawn chunk by chunk, whose position can be captured and restored exactly.

    ``draw(limit)`` returns the next chunk, an array (L, ...) or a tuple of arrays with the same L, 1 <= L; a stream
    may return fewer than ``limit`` steps (the steps the run still needs) or more (the rest is not used).
    ``get_state()`` returns ``(meta, arrays)`` (JSON values, name -> array) that ``set_state`` restores.
    """

    def draw(self, limit: int) -> Any: ...

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]: ...

    def set_state(self, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None: ...


@dataclasses.dataclass(frozen=True, eq=False)
class Run:
    """What ``run`` returns: the final ``state`` (None when a checkpoint had gone past ``n_steps``: the log is then
    cut at ``n_steps`` and the caller rebuilds what it needs from it); ``steps`` (K,) the logged steps; ``log`` the
    entries stacked per key, each (K, ...); ``resumed_from`` the step a checkpoint resumed from (0 for a fresh run)."""

    state: Any
    steps: np.ndarray
    log: dict[str, np.ndarray]
    resumed_from: int = 0


def stream_identity(inputs: Any) -> tuple:
    """The parts that identify an input stream where it starts (for ``run``'s ``identity``): a ``Stream``'s state,
    an array's bytes, a callable's or iterable's repr."""
    if isinstance(inputs, Stream):
        meta, arrays = inputs.get_state()
        return (repr(sorted(meta.items())), *(arrays[k] for k in sorted(arrays)))
    if isinstance(inputs, tuple):
        return tuple(np.asarray(a) for a in inputs)
    return (inputs,)


def _entry(chunk: Any, i: int) -> Any:
    return tuple([a[i] for a in chunk]) if isinstance(chunk, tuple) else chunk[i]


def _length(chunk: Any) -> int:
    return len(chunk[0]) if isinstance(chunk, tuple) else len(chunk)


class _Chunks:
    """The loop's view of a ``Stream``: the current chunk [start, end) as an iterator of per-step entries, and the
    stream's state before that chunk. Entries are taken in order (the loop asks for t, t + 1, ...)."""

    def __init__(self, stream: Stream, n_steps: int) -> None:
        self.stream, self.n_steps = stream, n_steps
        self.start = self.end = 0
        self.entries: Iterator[Any] = iter(())
        self.before = stream.get_state()

    def resume(self, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray], start: int) -> None:
        """Continue from a state saved by ``saved``: the stream as it was before the chunk that starts at ``start``."""
        self.stream.set_state(meta, arrays)
        self.start = self.end = start

    def saved(self, t: int) -> tuple[tuple[dict[str, Any], dict[str, np.ndarray]], int]:
        """What a checkpoint after t steps holds: the stream's state before the chunk holding step t, and where that
        chunk starts (a used-up chunk is not drawn again on resume)."""
        return (self.stream.get_state(), t) if t >= self.end else (self.before, self.start)

    def at(self, t: int) -> Any:
        while t >= self.end:  # the first chunk, the next one, or (on resume) the chunk holding step t
            self.start = self.end
            self.before = self.stream.get_state()
            chunk = self.stream.draw(self.n_steps - self.start)
            length = _length(chunk)
            if length < 1:
                raise ValueError("an input Stream returned an empty chunk")
            self.end = self.start + length
            self.entries = zip(*chunk, strict=True) if isinstance(chunk, tuple) else iter(chunk)
            if self.start < t < self.end:  # resuming inside this chunk: skip the steps already done
                collections.deque(itertools.islice(self.entries, t - self.start), maxlen=0)
        return next(self.entries)


def _source(inputs: Any, n_steps: int) -> tuple[Callable[[int], Any], _Chunks | None, bool]:
    """(inputs at step t, the chunked stream or None, whether a run can resume from a checkpoint)."""
    if isinstance(inputs, Stream):
        chunks = _Chunks(inputs, n_steps)
        return chunks.at, chunks, True
    if isinstance(inputs, np.ndarray) or (isinstance(inputs, tuple) and all(isinstance(a, np.ndarray)
                                                                            for a in inputs)):
        if _length(inputs) < n_steps:
            raise ValueError(f"the inputs hold {_length(inputs)} steps, fewer than n_steps = {n_steps}")
        return (inputs.__getitem__ if isinstance(inputs, np.ndarray) else (lambda t: _entry(inputs, t))), None, True
    if callable(inputs):
        return inputs, None, True
    if isinstance(inputs, Iterable):
        it = iter(inputs)
        return (lambda _t: next(it)), None, False
    raise TypeError(f"inputs must be an array, a tuple of arrays, a Stream, a callable of the step index or an "
                    f"iterable, got {type(inputs).__name__}")


def _flatten(prefix: str, x: Any, out: dict[str, np.ndarray]) -> None:
    if isinstance(x, tuple) and hasattr(x, "_fields"):
        for f in x._fields:
            _flatten(f"{prefix}.{f}", getattr(x, f), out)
    elif dataclasses.is_dataclass(x) and not isinstance(x, type):
        for f in dataclasses.fields(x):
            if f.init:
                _flatten(f"{prefix}.{f.name}", getattr(x, f.name), out)
    elif x is not None:
        out[prefix] = np.asarray(x)


def _unflatten(prefix: str, template: Any, arrays: Mapping[str, np.ndarray]) -> Any:
    if isinstance(template, tuple) and hasattr(template, "_fields"):
        return type(template)(*[_unflatten(f"{prefix}.{f}", getattr(template, f), arrays) for f in template._fields])
    if dataclasses.is_dataclass(template) and not isinstance(template, type):
        return dataclasses.replace(template, **{f.name: _unflatten(f"{prefix}.{f.name}", getattr(template, f.name),
                                                                   arrays)
                                                for f in dataclasses.fields(template) if f.init})
    if template is None:
        return None
    a = arrays[prefix]
    if isinstance(template, np.ndarray):
        return a
    if isinstance(template, np.generic):
        return a[()]
    return type(template)(a[()])  # a Python int, float or bool


def run(step: Step, params: Any, state: Any, inputs: Any, n_steps: int, *, rng: np.random.Generator | None = None,
        on_step: Callable[[int, Any, Any], None] | None = None,
        log: Callable[[int, Any], tuple[Mapping[str, Any], Any]] | None = None,
        log_at: Sequence[int] | np.ndarray = (), checkpoint: str | os.PathLike | None = None,
        identity: Mapping[str, object] | None = None, what: str = "run", unit: str = "step") -> Run:
    """Run ``step`` for steps t = 0 .. n_steps − 1: ``state, out = step(params, state, inputs_t, rng=rng)``, then
    ``on_step(t, state, out)``; after the steps listed in ``log_at`` (counts of steps done, in [0, n_steps]),
    ``entry, state = log(t, state)`` (a log may reset running sums it reads from the state).

    ``checkpoint``: a file saved at every logged step (atomically, ``wrec.checkpoint.save``) with the state, the
    log, the stream's state before its current chunk and the generator's state; when it exists the run continues
    from it, bit for bit as an uninterrupted run. ``identity`` names what makes a file this run's (description ->
    a value or a tuple of parts, each fingerprinted with ``wrec.checkpoint.fingerprint``); a file whose identity
    differs is a ``ValueError`` naming ``what`` and the parts that differ. A file past ``n_steps`` gives its log cut at
    ``n_steps`` and ``state`` None. Resuming needs inputs that can be replayed (not a bare iterator). ``unit`` names
    one step (an ``"epoch"`` for a loop over epochs): the file's metadata holds the steps done under that name.
    An error raised by a step carries a note naming ``what`` and the step.

    Shape: whatever the step takes; an array input is indexed on its first axis (time).
    """
    n_steps = int(n_steps)
    get, chunks, replayable = _source(inputs, n_steps)
    marks = _log_marks(log_at, n_steps, log)
    book = _Log(log, checkpoint, _fingerprints(identity), unit, rng, chunks)
    t0 = 0
    saved = _ckpt.load(checkpoint) if checkpoint is not None else None
    if saved is not None:
        t0 = book.resume(saved, replayable, what)
        if t0 > n_steps:
            return book.result(None, t0, cut_at=n_steps)
        state = _restored(saved, state, rng, chunks)
    elif marks.size and marks[0] == 0:
        state = book.record(0, state)
    pending = iter(marks[marks > t0].tolist())  # the logged steps still to come, in order
    next_log = next(pending, -1)
    t = t0
    try:
        for t in range(t0, n_steps):
            state, out = step(params, state, get(t), rng=rng)
            if on_step is not None:
                on_step(t, state, out)
            if t + 1 == next_log:
                state = book.record(t + 1, state)
                next_log = next(pending, -1)
    except Exception as exc:
        exc.add_note(f"(in {what}, {unit} {t} of {n_steps})")
        raise
    return book.result(state, t0)


def _log_marks(log_at: Sequence[int] | np.ndarray, n_steps: int, log: object) -> np.ndarray:
    """``run``'s ``log_at`` as sorted distinct step counts, checked to lie in [0, n_steps] and to come with a log."""
    marks = np.unique(np.asarray(log_at, dtype=np.int64))
    if marks.size and (marks[0] < 0 or marks[-1] > n_steps):
        raise ValueError(f"log_at must lie in [0, n_steps] = [0, {n_steps}], got [{marks[0]}, {marks[-1]}]")
    if marks.size and log is None:
        raise ValueError("log_at needs a log function")
    return marks


def _fingerprints(identity: Mapping[str, object] | None) -> dict[str, str]:
    """``run``'s ``identity``, each value (or tuple of parts) fingerprinted with ``wrec.checkpoint.fingerprint``."""
    return {k: _ckpt.fingerprint(*v) if isinstance(v, tuple) else _ckpt.fingerprint(v)
            for k, v in (identity or {}).items()}


def _restored(saved: tuple[Mapping[str, np.ndarray], Mapping[str, Any]], template: Any,
              rng: np.random.Generator | None, chunks: _Chunks | None) -> Any:
    """The state saved in a checkpoint (shaped as ``template``, the caller's start); the generator and the stream
    are put back where they were."""
    arrays, meta = saved
    state = _unflatten("state", template, arrays)
    if rng is not None:
        _ckpt.set_rng_state(rng, meta["rng"])
    if chunks is not None:
        chunks.resume(meta["stream"], {k[7:]: v for k, v in arrays.items() if k.startswith("stream.")},
                      int(meta["chunk_start"]))
    return state


class _Log:
    """``run``'s log: the logged steps and entries (per key), and the checkpoint written at every logged step."""

    def __init__(self, log: Callable[[int, Any], tuple[Mapping[str, Any], Any]] | None,
                 checkpoint: str | os.PathLike | None, ident: dict[str, str], unit: str,
                 rng: np.random.Generator | None, chunks: _Chunks | None) -> None:
        self.log, self.checkpoint, self.ident, self.unit = log, checkpoint, ident, unit
        self.rng, self.chunks = rng, chunks
        self.steps: list[int] = []
        self.columns: dict[str, list] = {}

    def resume(self, saved: tuple[Mapping[str, np.ndarray], Mapping[str, Any]], replayable: bool, what: str) -> int:
        """Take the log of a checkpoint after checking it is this run's; returns the steps it had done."""
        if not replayable:
            raise TypeError("resuming from a checkpoint needs replayable inputs (an array, a Stream or a callable)")
        arrays, meta = saved
        theirs, ident = meta.get("identity", {}), self.ident
        differ = [k for k in ident if theirs.get(k) != ident[k]] or ([] if theirs.keys() == ident.keys() else
                                                                     sorted(set(theirs) ^ set(ident)))
        if differ or self.unit not in meta:
            raise ValueError(f"checkpoint {self.checkpoint} was written by a different {what} "
                             f"({', '.join(differ or [repr(self.unit)])} differ); delete it or pass another path")
        self.steps = [int(s) for s in arrays["log.steps"]] if "log.steps" in arrays else []
        self.columns = {k[4:]: list(v) for k, v in arrays.items() if k.startswith("log.") and k != "log.steps"}
        return int(meta[self.unit])

    def record(self, t: int, state: Any) -> Any:
        """Log after t steps (the log may change the state: it is returned) and save the checkpoint."""
        assert self.log is not None  # checked by _log_marks: log_at needs a log function
        entry, state = self.log(t, state)
        self.steps.append(t)
        for k, v in entry.items():
            self.columns.setdefault(k, []).append(v)
        if self.checkpoint is not None:
            self._save(t, state)
        return state

    def _save(self, t: int, state: Any) -> None:
        assert self.checkpoint is not None
        arrays: dict[str, np.ndarray] = {}
        _flatten("state", state, arrays)
        arrays["log.steps"] = np.asarray(self.steps, dtype=np.int64)
        arrays.update({f"log.{k}": np.asarray(v) for k, v in self.columns.items()})
        meta: dict[str, Any] = {"identity": self.ident, self.unit: t}
        if self.rng is not None:
            meta["rng"] = _ckpt.rng_state(self.rng)
        if self.chunks is not None:
            (stream_meta, stream_arrays), start = self.chunks.saved(t)
            meta.update(stream=stream_meta, chunk_start=start)
            arrays.update({f"stream.{k}": np.asarray(v) for k, v in stream_arrays.items()})
        _ckpt.save(self.checkpoint, arrays, meta)

    def result(self, state: Any, t0: int, cut_at: int | None = None) -> Run:
        """The ``Run``: with ``cut_at``, the log of the steps up to it only."""
        keep = len(self.steps) if cut_at is None else sum(s <= cut_at for s in self.steps)
        return Run(state, np.asarray(self.steps[:keep], dtype=np.int64),
                   {k: np.asarray(v[:keep]) for k, v in self.columns.items()}, resumed_from=t0)
