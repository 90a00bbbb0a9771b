"""The result store: one Parquet file per finished task, keyed by a hash of its config, written atomically and
verified on every read.

A run directory holds ``<key>.parquet`` files. Each is written to a temporary name in the same directory
(``.<key>.*.tmp``), flushed to disk and renamed into place (``os.replace`` is atomic), so a killed run never
leaves a half-written result behind, only perhaps a temporary file that no reader looks at, and a rerun skips
every task whose file exists.

A stored result cannot silently rot: every data page carries a CRC-32 (Parquet page checksums) and the file's
key-value metadata carries ``wrec.sha256``, a SHA-256 of the table's content as Arrow reads it back (column names,
types, values and the pandas metadata; see ``content_digest``). ``Store.load`` checks both and raises
``CorruptResult`` naming the file and what failed, so a flipped bit anywhere in the file is either harmless (the
data read back is exactly what was written) or an error, never different numbers. ``sweep.run`` sets such a file
aside (``Store.set_aside``, never deleted) and recomputes it; ``Store.table`` (and ``wrec show``) raise instead of
returning a table with a result missing.

The files stay plain Parquet: read them with ``Store(root).table()`` (verified) or, unverified, with pandas or
DuckDB: ``SELECT * FROM read_parquet('ROOT/*.parquet', union_by_name=true)`` (a set-aside file,
``_<key>.parquet.corrupt-<time>``, is passed by both such globs and directory reads, which skip names starting
with ``_``).

Keys (``config_key``) hash a config's type name and only the fields that differ from their defaults, so adding a
field with a default to a config type keeps every stored result. Results stored before this rule (under the hash
of all fields, ``legacy_config_key``) are re-keyed once, automatically, the first time ``sweep.run`` (``wrec run``)
meets their task: the file is verified, its ``key`` column updated and it is stored under the new key.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import io
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from wrec.checkpoint import fsync_folder, write_atomically

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

#: The key, in a stored file's schema metadata, of its content digest (``content_digest``, hex).
DIGEST_KEY = b"wrec.sha256"
_DIGEST_VERSION = b"wrec result digest 1\n"  # changes only if the canonical form ever has to


class CorruptResult(ValueError):
    """A stored result that does not verify: unreadable Parquet, a page checksum error, a content digest that
    does not match, or no digest at all (a file written without one cannot be told intact). ``path`` is the file,
    ``reason`` what failed."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"stored result {path} is corrupt: {reason}")
        self.path = path
        self.reason = reason


class CorruptResultWarning(UserWarning):
    """A stored result failed verification and was set aside to be computed again."""


def config_key(config: object) -> str:
    """A stable 16-hex-digit key of a dataclass config: SHA-256 of its type name and the fields that differ from
    their defaults (sorted JSON; a nested dataclass the same way). A field added later with a default leaves every
    existing key as it was, so stored results stay found; a required field always counts."""
    _check_dataclass(config)
    return _hash(_canonical(config))


def legacy_config_key(config: object) -> str:
    """The key wrec gave ``config`` before keys left out default fields: SHA-256 of its type name and *all* its
    fields. ``sweep.run`` re-keys a result stored under it (see ``Store.rekey``); a task type that replaced an
    older config type tells its old key itself (a ``legacy_key()`` method)."""
    config = _check_dataclass(config)
    own = getattr(config, "legacy_key", None)
    if callable(own):
        return own()
    return legacy_key(type(config).__qualname__, dataclasses.asdict(config))


def legacy_key(type_name: str, fields: dict) -> str:
    """The earlier key formula on a type name and a field dict (for ``legacy_key()`` methods of task types)."""
    return _hash([type_name, fields])


def _check_dataclass(config: object) -> DataclassInstance:
    """``config``, checked to be a dataclass instance (not a dataclass type)."""
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"config must be a dataclass instance, got {type(config).__name__}")
    return config


_MISSING = type(dataclasses.MISSING)


def _canonical(value: object) -> object:
    """[type name, {field: canonical value}] of a dataclass, fields at their default left out; other values as
    they are (JSON turns tuples into lists)."""
    if not (dataclasses.is_dataclass(value) and not isinstance(value, type)):
        return value
    fields = {}
    for f in dataclasses.fields(value):
        v = getattr(value, f.name)
        # not `is MISSING`: unpickling a config class defined in __main__ (cloudpickle, as Dask does)
        # in the process that defined it replaces its fields, whose MISSING is then a copy of the sentinel
        if not isinstance(f.default, _MISSING) and _same(v, f.default):
            continue
        if callable(f.default_factory) and _same(v, f.default_factory()):
            continue
        fields[f.name] = _canonical(v)
    return [type(value).__qualname__, fields]


def _same(a: object, b: object) -> bool:
    """Equal and of the same type (1 and 1.0, or a list and a tuple, hash differently, so they are not "the
    default")."""
    try:
        return type(a) is type(b) and bool(a == b)
    except (TypeError, ValueError):  # an array-like field: compare its JSON form
        return json.dumps(a, default=str) == json.dumps(b, default=str)


def _hash(payload: object) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Store:
    """A directory of finished results (Parquet), one file per task key."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / f"{key}.parquet"

    def __contains__(self, key: str) -> bool:
        return self.path(key).exists()

    def keys(self) -> list[str]:
        """The keys of every stored result, sorted (temporary and set-aside files are not results)."""
        return sorted(p.name.removesuffix(".parquet") for p in self.root.glob("*.parquet"))

    def load(self, key: str) -> pd.DataFrame:
        """The stored result of ``key``, verified: ``CorruptResult`` unless its page checksums and its content
        digest both hold (``FileNotFoundError`` when there is none)."""
        path = self.path(key)
        data = path.read_bytes()
        _verified_table(path, data)
        return pd.read_parquet(io.BytesIO(data))  # the bytes just verified, converted exactly as pandas does

    def save(self, key: str, frame: pd.DataFrame) -> Path:
        """Write ``frame`` durably, with page checksums and its content digest: temporary file, fsync, atomic
        rename. The digest is taken of the table as Parquet reads it back (a round trip may change an Arrow
        type, e.g. a list's item name), and the bytes are verified before they are renamed into place."""
        table = pa.Table.from_pandas(frame, preserve_index=False)
        digest = content_digest(pq.read_table(pa.BufferReader(_parquet_bytes(table))))
        metadata = {**(table.schema.metadata or {}), DIGEST_KEY: digest.encode()}
        data = _parquet_bytes(table.replace_schema_metadata(metadata))
        path = self.path(key)
        _verified_table(path, data)  # a digest that would not verify is a bug here, not corruption on disk later
        return write_atomically(path, lambda fh: fh.write(data))

    def rekey(self, old: str, new: str) -> pd.DataFrame:
        """Move the stored result of key ``old`` to key ``new`` and return it: verified, its ``key`` column (if
        any) set to ``new``, written durably with a fresh digest, then the old file removed. ``CorruptResult`` if
        the old file does not verify (it is left where it is). The one-time migration of results stored under
        ``legacy_config_key`` (``sweep.run`` does it as it finds them)."""
        frame = self.load(old)
        if "key" in frame.columns:
            frame["key"] = new
        self.save(new, frame)
        self.path(old).unlink()
        fsync_folder(self.root)
        return self.load(new)

    def set_aside(self, key: str) -> Path:
        """Rename the stored result of ``key`` to ``_<key>.parquet.corrupt-<UTC time>`` and return the new path.
        It is no longer a result but stays for inspection: ``keys``, ``in`` and ``*.parquet`` globs skip it (it does
        not end in ``.parquet``), and so do Arrow's and pandas' directory reads (they skip names starting with
        ``_``)."""
        path = self.path(key)
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
        aside = path.with_name(f"_{path.name}.corrupt-{stamp}")
        n = 0
        while aside.exists():  # (two set-asides within a microsecond): never replace an earlier one
            n += 1
            aside = path.with_name(f"_{path.name}.corrupt-{stamp}-{n}")
        os.rename(path, aside)
        fsync_folder(self.root)
        return aside

    def table(self) -> pd.DataFrame:
        """Every stored result in the directory, verified, concatenated into one tidy table.

        A result that does not verify raises ``CorruptResult`` (naming the file) rather than being skipped: a
        table quietly missing a task would bias whatever is computed from it. Rerunning the sweep sets the file
        aside and recomputes it."""
        keys = self.keys()
        if not keys:
            return pd.DataFrame()
        return pd.concat([self.load(k) for k in keys], ignore_index=True)


def content_digest(table: pa.Table) -> str:
    """SHA-256 (hex) of a canonical text of ``table``, independent of the library versions that wrote it.

    Hashed, each framed by its length: the schema metadata except ``DIGEST_KEY`` (sorted by key; pandas' own
    metadata is there), then per column its name, Arrow type string, nullability and field metadata, and its
    values as JSON of ``to_pylist()`` (floats as their shortest exact ``repr``, so NaN, ±inf and -0.0 are kept
    apart; dates and times in ISO 8601; bytes in hex). Meant for results tables (up to some thousand rows).
    """
    h = hashlib.sha256(_DIGEST_VERSION)

    def add(chunk: bytes) -> None:
        h.update(len(chunk).to_bytes(8, "little"))
        h.update(chunk)

    metadata = sorted((k, v) for k, v in (table.schema.metadata or {}).items() if k != DIGEST_KEY)
    add(str(len(metadata)).encode())
    for k, v in metadata:
        add(k)
        add(v)
    for field, column in zip(table.schema, table.columns, strict=True):
        field_metadata = sorted((k.hex(), v.hex()) for k, v in (field.metadata or {}).items())
        add(json.dumps([field.name, str(field.type), field.nullable, field_metadata]).encode())
        add(json.dumps(column.to_pylist(), default=_value_text).encode())
    return h.hexdigest()


def _value_text(value: object) -> str:
    """The canonical text of a value JSON has no form for."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "bytes:" + bytes(value).hex()
    if isinstance(value, datetime.timedelta):  # (pandas' Timedelta adds nanoseconds)
        parts = (value.days, value.seconds, value.microseconds, getattr(value, "nanoseconds", 0))
        return "duration:" + ",".join(map(str, parts))
    if isinstance(value, (datetime.date, datetime.time)):  # (and datetime, pandas' Timestamp); the type says which
        return "temporal:" + value.isoformat()
    return f"{type(value).__name__}:{value!r}"


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, write_page_checksum=True)
    return sink.getvalue()


def _verified_table(path: Path, data: bytes) -> pa.Table:
    """The Arrow table in ``data`` (the bytes of ``path``) if its page checksums and content digest hold."""
    try:
        table = pq.read_table(pa.BufferReader(data), page_checksum_verification=True)
        stored = (table.schema.metadata or {}).get(DIGEST_KEY)
        if stored is None:
            raise CorruptResult(path, f"no checksum (no {DIGEST_KEY.decode()} in its metadata): it was written "
                                      "without one, so whether it is intact cannot be told")
        digest = content_digest(table)
    except CorruptResult:
        raise
    except Exception as exc:  # any failure to parse these bytes is a damaged file
        message = " ".join(str(exc).split())  # (Arrow's messages may span lines)
        raise CorruptResult(path, f"unreadable Parquet ({type(exc).__name__}: {message})") from exc
    if stored != digest.encode():
        shown = stored.decode("ascii", errors="replace")
        raise CorruptResult(path, f"content digest mismatch (stored {shown[:16]}…, computed {digest[:16]}…)")
    return table


