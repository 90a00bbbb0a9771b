"""The result store: one Parquet file per finished task, keyed by a hash of its config, written atomically.

A run directory holds ``<key>.parquet`` files. Each is written to a temporary name in the same directory
(``.<key>.*.tmp``), flushed to disk and renamed into place (``os.replace`` is atomic), so a killed run never
leaves a half-written result behind, only perhaps a temporary file that no reader looks at, and a rerun skips
every task whose file exists. Read it back with ``Store(root).table()`` (pandas) or, equally, with DuckDB:
``SELECT * FROM read_parquet('ROOT/*.parquet', union_by_name=true)``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from pathlib import Path

import pandas as pd


def config_key(config: object) -> str:
    """A stable 16-hex-digit key of a dataclass config: SHA-256 of its type name and sorted JSON fields."""
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"config must be a dataclass instance, got {type(config).__name__}")
    payload = json.dumps([type(config).__qualname__, dataclasses.asdict(config)], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


class Store:
    """A directory of finished results (Parquet), one file per task key."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / f"{key}.parquet"

    def __contains__(self, key: str) -> bool:
        return self.path(key).exists()

    def keys(self) -> list[str]:
        """The keys of every finished result, sorted (temporary files are not results)."""
        return sorted(p.name.removesuffix(".parquet") for p in self.root.glob("*.parquet"))

    def load(self, key: str) -> pd.DataFrame:
        return pd.read_parquet(self.path(key))

    def save(self, key: str, frame: pd.DataFrame) -> Path:
        """Write ``frame`` durably: temporary file, fsync, atomic rename."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=f".{key}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                frame.to_parquet(fh, index=False)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path(key))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(self.root)  # make the rename itself durable
        return self.path(key)

    def table(self) -> pd.DataFrame:
        """Every finished result in the directory, concatenated into one tidy table."""
        keys = self.keys()
        if not keys:
            return pd.DataFrame()
        return pd.concat([self.load(k) for k in keys], ignore_index=True)


def _fsync_dir(path: Path) -> None:
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
