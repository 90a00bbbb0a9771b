"""Lazy package attributes (PEP 562): a public name is imported from its submodule on first access.

``import wrec`` then costs almost nothing, and SciPy's signal processing, pandas, torch or matplotlib load only
when a function that needs them is first used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def attach(namespace: dict[str, Any], exports: Mapping[str, str] | None = None,
           submodules: Iterable[str] = ()) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for the package whose globals are ``namespace``.

    ``exports`` maps a public name to the submodule (relative to the package) that defines it; each name in
    ``submodules`` is a submodule reached as an attribute. The first access imports the submodule and stores the
    value in ``namespace``, so later accesses are plain lookups; storing it also undoes the import system's
    ``package.<submodule> = module``, where a submodule and one of its functions share a name.
    """
    package = namespace["__name__"]
    exports = dict(exports or {})
    submodules = frozenset(submodules)

    def __getattr__(name: str) -> Any:
        if name in exports:
            value = getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
        elif name in submodules:
            value = importlib.import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports) | submodules)

    return __getattr__, __dir__
