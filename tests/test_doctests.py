"""Every ``>>>`` example in wrec's docstrings runs and prints what it shows (``doctest``, one test per module).

Modules are discovered with ``pkgutil`` over the installed package, kept when their source holds ``>>>``; a module
that needs an optional dependency (torch and the other extras) is skipped when that dependency is missing.
"""

import doctest
import importlib
import pkgutil

import pytest

import wrec

OPTIONS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
OPTIONAL = {"torch", "torchattacks", "sklearn", "gymnasium", "dask", "distributed", "qpsolvers"}


def _with_examples() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(wrec.__path__, prefix="wrec."):
        spec = info.module_finder.find_spec(info.name, None)  # imports no parent package
        if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
            continue
        with open(spec.origin, encoding="utf-8") as f:
            if ">>>" in f.read():
                names.append(info.name)
    return sorted(names)


MODULES = _with_examples()


def test_modules_found():
    # the discovery itself: the modules whose Examples this suite was written against are among those found
    for name in ("wrec.capacity.mc", "wrec.capacity.ipc", "wrec.capacity.readout", "wrec.capacity.core",
                 "wrec.reservoir", "wrec.weights", "wrec.tasks.inputs", "wrec.states"):
        assert name in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str):
    try:
        module = importlib.import_module(name)  # not attribute access: wrec.capacity.ipc is also a function
    except ModuleNotFoundError as e:
        if (e.name or "").partition(".")[0] in OPTIONAL:
            pytest.skip(f"{name} needs {e.name}")
        raise
    out: list[str] = []
    runner = doctest.DocTestRunner(optionflags=OPTIONS)
    for test in doctest.DocTestFinder().find(module, name):
        runner.run(test, out=out.append)
    result = runner.summarize(verbose=False)
    assert result.attempted > 0, f"{name} holds '>>>' but doctest found no examples in its docstrings"
    assert result.failed == 0, "".join(out)
