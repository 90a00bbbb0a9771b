"""Durable checkpoints of long loops (learning runs): arrays plus JSON metadata in one ``.npz``, written atomically.

A loop that may be interrupted calls ``save`` at each checkpoint and ``load`` when it starts: a killed run leaves
either the previous checkpoint or the new one, never a torn file, and a rerun continues from the last one.
Random generators are saved exactly with ``rng_state`` / ``set_rng_state`` (their bit-generator state is JSON),
so a resumed run gives the same numbers as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

_META = "__meta__"


def save(path: str | os.PathLike, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any] | None = None) -> Path:
    """Write ``arrays`` (name -> array) and JSON-serialisable ``meta`` to ``path`` (temporary file, fsync, rename)."""
    path = Path(path)
    if _META in arrays:
        raise ValueError(f"{_META!r} is reserved for the metadata; rename that array")
    payload = json.dumps(dict(meta or {}))
    # allow_pickle=False: plain arrays only (``load`` refuses pickles too)
    return write_atomically(path, lambda fh: np.savez(fh, allow_pickle=False, **{_META: np.array(payload)},
                                                      **{k: np.asarray(v) for k, v in arrays.items()}))


def write_atomically(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> Path:
    """Write ``path`` so that a crash leaves the old file or the whole new one, never a part: ``write(fh)`` into a
    temporary file beside it, fsync, rename over ``path``, fsync the folder (so the rename itself is durable)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)
    return path


def fsync_folder(path: Path) -> None:
    """Make the entries of folder ``path`` (a rename, a removal) durable, where the platform allows it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def load(path: str | os.PathLike | None) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """``(arrays, meta)`` saved at ``path``, or None when there is no checkpoint (or ``path`` is None)."""
    if path is None or not Path(path).exists():
        return None
    with np.load(Path(path), allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files if k != _META}
        meta = json.loads(str(data[_META]))
    return arrays, meta


def fingerprint(*parts: object) -> str:
    """A short hash (SHA-256, 16 hex digits) that identifies a run by its parameters: arrays by their dtype, shape
    and bytes, everything else by ``repr``. A loop stores it with its checkpoint and refuses a file whose
    fingerprint differs (a checkpoint of another run)."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            a = np.ascontiguousarray(part)
            h.update(f"ndarray:{a.dtype.str}:{a.shape}:".encode())
            h.update(a.tobytes())
        else:
            h.update(f"{type(part).__qualname__}:{part!r}:".encode())
    return h.hexdigest()[:16]


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """The generator's bit-generator state as plain JSON values."""
    return json.loads(json.dumps(rng.bit_generator.state, default=_plain))


def set_rng_state(rng: np.random.Generator, state: Mapping[str, Any]) -> np.random.Generator:
    """Restore a state from ``rng_state`` into ``rng`` (in place) and return it."""
    rng.bit_generator.state = dict(state)
    return rng


def _plain(value: object) -> object:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.integer):
        return int(value)
    raise TypeError(f"cannot serialise {type(value).__name__} in a generator state")
