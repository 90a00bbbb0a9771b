"""The documentation site builds with ``mkdocs build --strict`` (any warning fails: a broken link or anchor, a
missing snippet, a reference mkdocstrings cannot resolve, a docstring griffe cannot parse), and every public name
the API reference renders has a docstring.

mkdocs, mkdocs-material and mkdocstrings come with the ``[dev]`` extra. Without them the tests skip, except under
CI (``CI`` set), where a missing tool is a failure: CI installs the extra, so a skip there would hide a broken site.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python", "griffe")


def _require_tools() -> None:
    missing = [name for name in TOOLS if importlib.util.find_spec(name.partition(".")[0]) is None
               or importlib.util.find_spec(name) is None]
    if not missing:
        return
    message = f"the documentation tools are not installed ({', '.join(missing)}): pip install -e '.[dev]'"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def rendered_modules() -> list[str]:
    """The modules that the API reference pages render (``::: module`` lines outside HTML comments)."""
    names = []
    for page in sorted((ROOT / "docs" / "reference").glob("*.md")):
        text = re.sub(r"<!--.*?-->", "", page.read_text(encoding="utf-8"), flags=re.S)
        names += re.findall(r"^::: *(\S+)", text, flags=re.M)
    return names


def test_mkdocs_build_strict(tmp_path):
    _require_tools()
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, env=dict(os.environ, NO_MKDOCS_2_WARNING="1"), capture_output=True, text=True,
                          timeout=600)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log
    assert "WARNING" not in log, log
    assert (tmp_path / "site" / "index.html").exists()
    assert (tmp_path / "site" / "reference" / "capacity" / "index.html").exists()


def test_the_reference_renders_the_main_modules():
    for name in ("wrec.weights", "wrec.reservoir.models", "wrec.capacity.mc", "wrec.capacity.ipc", "wrec.nn.cfc",
                 "wrec.nn.sligru", "wrec.nn.stablessm", "wrec.tasks.control"):
        assert name in rendered_modules()


def test_every_public_name_in_the_reference_has_a_docstring():
    _require_tools()
    import griffe

    package = griffe.load("wrec", search_paths=[str(ROOT / "src")], resolve_aliases=False)
    undocumented = []
    for name in rendered_modules():
        module = package[name.removeprefix("wrec.")] if name != "wrec" else package
        exports = module.exports if module.exports is not None else list(module.members)
        for member_name in map(str, exports):
            member = module.members.get(member_name)
            if member_name.startswith("_") or member is None or member.is_alias:
                continue  # private, or imported from elsewhere (documented where it is defined)
            if (member.is_function or member.is_class) and not member.docstring:
                undocumented.append(f"{name}.{member_name}")
    assert not undocumented, f"public names without a docstring: {undocumented}"


def _python_blocks(path: Path) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", path.read_text(encoding="utf-8"), flags=re.S | re.M)


# The pages' own Python blocks; blocks included from examples/ (tests/test_examples.py runs those) and blocks that
# repeat one of the README's (tests/test_examples.py runs each README block) are left out.
_README = set(_python_blocks(ROOT / "README.md"))
DOC_BLOCKS = [(page, block) for page in sorted((ROOT / "docs").rglob("*.md")) for block in _python_blocks(page)
              if "--8<--" not in block and block not in _README]


@pytest.mark.parametrize("page, block", [
    pytest.param(page, block, id=f"{page.relative_to(ROOT / 'docs')}-{i}")
    for i, (page, block) in enumerate(DOC_BLOCKS)])
def test_page_block_runs_on_its_own(page, block, tmp_path):
    if "torch" in block:
        pytest.importorskip("torch")
    if "reservoirpy" in block:
        pytest.importorskip("reservoirpy")
    env = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-W", "error", "-c", block], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, f"{page}:\n{block}\n--- stderr\n{done.stderr}"
