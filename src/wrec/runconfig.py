"""An experiment's configuration from the command line and from TOML files, and the record of a run.

``override(config, {"sizes": "200,400"})`` returns the config with those fields replaced, each value parsed and
checked against the field's type annotation (``int``, ``float``, ``bool``, ``str``, tuples of these, nested tuples,
``X | None``); ``load(config, path)`` does the same with the fields of a TOML file (all of them or some), and
``dumps(config_fields(config))`` writes a config as TOML that ``load`` reads back to the same config. Every error is
a ``ValueError`` that names the field, its type and, for an unknown name, the fields there are.

Text values (``--set field=value``): a tuple is comma-separated (``sizes=200,400``; empty for ``()``) or a TOML
array (``max_delay=[[1, 199], [2, 19]]``, needed for nested tuples); a bool is true/false (or 1/0, yes/no, on/off);
None is ``none``. TOML has no null: a field set to None is written as the string "none", which reads back as None.

``run_record(...)`` is what ``wrec run`` writes to ``run.toml`` beside a run's results: the experiment, its
effective config, the command line, start and end times, tasks computed and reused, and the versions of wrec (with
its git revision when it runs from a checkout), Python, NumPy and torch.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import json
import math
import platform
import re
import subprocess
import sys
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

C = TypeVar("C", bound="DataclassInstance")

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
_NONE = "none"


def override(config: C, values: Mapping[str, object]) -> C:
    """``config`` with the named fields replaced (``dataclasses.replace``, so the config's own checks run).

    A ``str`` value is parsed as command-line text unless the field is a ``str``; any other value (from TOML) must
    already have the field's type (an int is accepted for a float). ``ValueError`` names the field, its type and
    what was wrong, or, for a name that is no field, the fields there are; one the config rejects is re-raised with
    the fields given."""
    hints = _field_types(config)
    changes = {}
    for name, value in values.items():
        if name not in hints:
            raise ValueError(f"{type(config).__module__.rsplit('.', 1)[-1]}.Config has no field {name!r}; its fields: "
                             + ", ".join(f"{n} ({type_name(t)})" for n, t in hints.items()))
        try:
            changes[name] = from_text(value, hints[name]) if isinstance(value, str) else from_value(value, hints[name])
        except ValueError as exc:
            raise ValueError(f"{name} ({type_name(hints[name])}): {exc}") from None
    try:
        return dataclasses.replace(config, **changes)
    except (TypeError, ValueError) as exc:
        given = ", ".join(f"{k}={v!r}" for k, v in changes.items())
        raise ValueError(f"invalid config ({given}): {exc}") from None


def parse_setting(text: str) -> tuple[str, str]:
    """``"field=value"`` -> ``("field", "value")`` (the value may itself contain "=")."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise ValueError(f"expected FIELD=VALUE, got {text!r}")
    return name.strip(), value.strip()


def load(config: C, path: str | Path, *, experiment: str | None = None) -> C:
    """``config`` with the fields of the TOML file at ``path`` (all of them or some). A ``run.toml`` written by
    ``wrec run`` is read too (its ``[config]`` table), and must then be of ``experiment`` when that is given."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"config file {path} is not valid TOML: {exc}") from None
    if isinstance(data.get("config"), dict) and "config" not in _field_types(config):  # a run.toml
        recorded = data.get("experiment")
        if experiment is not None and recorded not in (None, experiment):
            raise ValueError(f"{path} records a run of {recorded!r}, not {experiment!r}")
        data = data["config"]
    try:
        return override(config, data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def config_fields(config: DataclassInstance) -> dict[str, Any]:
    """The config's fields by name, values as they are (``dumps`` writes them)."""
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}


def _field_types(config: object) -> dict[str, Any]:
    """{field name: resolved type annotation} of a dataclass config, in field order."""
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"config must be a dataclass instance, got {type(config).__name__}")
    hints = typing.get_type_hints(type(config))
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(config)}


def type_name(annotation: Any) -> str:
    """``int``, ``tuple[int, ...]``, ``float | None``: an annotation as a user reads it."""
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _optional(annotation: Any) -> Any | None:
    """X for ``X | None`` (``Optional[X]``), else None."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(annotation)) == 2:
            return args[0]
    return None


def _tuple_items(annotation: Any, n: int) -> list[Any]:
    """The item type of each of ``n`` items of a tuple annotation (``tuple[X, ...]`` or ``tuple[X, Y]``)."""
    args = typing.get_args(annotation)
    if not args:
        return [Any] * n
    if len(args) == 2 and args[1] is Ellipsis:
        return [args[0]] * n
    if len(args) != n:
        raise ValueError(f"expected {len(args)} items, got {n}")
    return list(args)


def from_text(text: str, annotation: Any) -> Any:
    """A value of type ``annotation`` from command-line text (see the module docstring for the forms)."""
    inner = _optional(annotation)
    if inner is not None:
        return None if text.strip().lower() == _NONE else from_text(text, inner)
    if annotation is str or annotation is Any:
        return text
    if typing.get_origin(annotation) is tuple:
        stripped = text.strip()
        if stripped.startswith("["):  # a TOML array
            try:
                value = tomllib.loads(f"v = {stripped}")["v"]
            except tomllib.TOMLDecodeError as exc:
                raise ValueError(f"{text!r} is not a TOML array: {exc}") from None
            return from_value(value, annotation)
        parts = [p.strip() for p in stripped.split(",")] if stripped else []
        items = _tuple_items(annotation, len(parts))
        if any(typing.get_origin(t) is tuple for t in items):
            raise ValueError(f"give nested tuples as a TOML array, e.g. [[1, 2], [3, 4]]; got {text!r}")
        return tuple(from_text(p, t) for p, t in zip(parts, items, strict=True))
    return _scalar_from_text(text.strip(), annotation)


def _scalar_from_text(text: str, annotation: Any) -> Any:
    if annotation is bool:
        if text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        raise ValueError(f"{text!r} is not a bool (true or false)")
    if annotation in (int, float):
        try:
            return annotation(text)
        except ValueError:
            raise ValueError(f"{text!r} is not {'an int' if annotation is int else 'a float'}") from None
    literal = typing.get_args(annotation) if typing.get_origin(annotation) is typing.Literal else None
    if literal is not None:
        for option in literal:
            if str(option) == text:
                return option
        raise ValueError(f"{text!r} is not one of {list(literal)}")
    raise ValueError(f"fields of type {type_name(annotation)} cannot be set")


def from_value(value: object, annotation: Any) -> Any:
    """``value`` (as TOML reads it) checked to be of type ``annotation``: lists become tuples, an int a float."""
    inner = _optional(annotation)
    if inner is not None:
        return None if value is None or value == _NONE else from_value(value, inner)
    if typing.get_origin(annotation) is tuple:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"expected an array, got {value!r}")
        items = _tuple_items(annotation, len(value))
        return tuple(from_value(v, t) for v, t in zip(value, items, strict=True))
    if annotation is Any:
        return value
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if typing.get_origin(annotation) is typing.Literal:
        if value in typing.get_args(annotation):
            return value
        raise ValueError(f"{value!r} is not one of {list(typing.get_args(annotation))}")
    if annotation in (bool, int, float, str) and type(value) is annotation:
        return value
    raise ValueError(f"expected {type_name(annotation)}, got {value!r}")


# ---------------------------------------------------------------------------------------------------------------
# TOML out: configs hold scalars and (nested) tuples, written inline so a user reads and edits them easily.

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def dumps(data: Mapping[str, object], header: str = "") -> str:
    """TOML text of ``data``: scalars and arrays as ``key = value``, then each dict value as a ``[table]`` of
    such. ``header`` lines are written first, as comments. ``tomllib.loads`` reads it back (tuples as lists)."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    tables = {k: v for k, v in data.items() if isinstance(v, Mapping)}
    lines += [f"{_key(k)} = {_value(v)}" for k, v in data.items() if k not in tables]
    for name, table in tables.items():
        lines += ["", f"[{_key(name)}]"]
        lines += [f"{_key(k)} = {_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def _key(name: str) -> str:
    return name if _BARE_KEY.fullmatch(name) else _string(name)


def _string(text: str) -> str:
    # JSON's escapes are TOML's; TOML also wants DEL escaped
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _value(value: object) -> str:
    if value is None:
        return _string(_NONE)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML: {value!r}")


# ---------------------------------------------------------------------------------------------------------------
# The record of a run (run.toml).

def now() -> datetime.datetime:
    """The current time, in UTC."""
    return datetime.datetime.now(datetime.timezone.utc)


def _iso(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def versions() -> dict[str, str]:
    """wrec's version (and git revision when imported from a checkout), Python's, NumPy's and torch's (where it is
    installed; it is not imported)."""
    out = {"wrec": _version("wrec") or "unknown"}
    revision = git_revision(Path(__file__).parent)
    if revision:
        out["git"] = revision
    out["python"] = platform.python_version()
    for name in ("numpy", "torch"):
        version = _version(name)
        if version:
            out[name] = version
    return out


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def git_revision(folder: Path) -> str | None:
    """The commit checked out where ``folder`` is (``-dirty`` added when tracked files differ from it), or None
    outside a git checkout, without git, or if git does not answer within 5 s."""
    try:
        head = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=5, check=True).stdout.strip()
        status = subprocess.run(["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}-dirty" if status else head or None


def run_record(experiment: str, config: DataclassInstance, *, started: datetime.datetime,
               finished: datetime.datetime | None = None, counts: Mapping[str, int] | None = None,
               argv: list[str] | None = None) -> dict[str, object]:
    """What ``run.toml`` holds (``dumps`` it): the experiment, the command line, start (and end) time in UTC, the
    seconds taken and the task counts when finished, the versions, and the effective config."""
    record: dict[str, object] = {"experiment": experiment, "command": list(sys.argv if argv is None else argv),
                                 "started": _iso(started)}
    if finished is not None:
        record["finished"] = _iso(finished)
        record["seconds"] = round((finished - started).total_seconds(), 3)
    record.update(counts or {})
    record["versions"] = versions()
    record["config"] = config_fields(config)
    return record
