"""Every program in ``examples/`` and every Python block of the README runs, and gives the number it claims.

Each example runs as a user runs it (``python examples/NAME.py --small``, in a fresh process, warnings as errors)
and prints ``name = value`` lines; each test checks one of those numbers against what the example says it shows.
Each README block runs on its own in a fresh process, so a block that uses a name it does not define fails.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
NUMBER = re.compile(r"^(?P<name>[^=\n]+?) = (?P<value>[-+0-9.eE]+|nan|inf)$", re.M)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(MPLBACKEND="Agg", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return env


def _python(args: list[str], cwd: Path, timeout: float = 600) -> str:
    done = subprocess.run([sys.executable, "-W", "error", *args], cwd=cwd, env=_env(), capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, f"exit {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    return done.stdout


def example(name: str, tmp_path: Path, *args: str) -> dict[str, float]:
    """Run ``examples/<name>.py --small`` and return the ``name = value`` lines it printed."""
    out = _python([str(EXAMPLES / f"{name}.py"), "--small", *args], cwd=tmp_path)
    return {m["name"].strip(): float(m["value"]) for m in NUMBER.finditer(out)}


def test_every_example_is_tested():
    tested = {"reservoir_capacity", "gru_capacity", "sligru_training", "spike_coding", "cfc_control", "sweep_dask"}
    assert {p.stem for p in EXAMPLES.glob("*.py")} == tested


def test_reservoir_capacity(tmp_path):
    r = example("reservoir_capacity", tmp_path, "--out", str(tmp_path))
    # the linear reservoir's MC equals the exact Krylov value (its rank over the delays) within sampling error
    assert r["MC linear"] == pytest.approx(r["MC linear theory"], rel=0.03)
    # no capacity total beyond the rank of the states (N = 40)
    assert r["IPC total tanh"] <= r["rank tanh"] + 0.5
    assert r["MC tanh"] > 10
    assert (tmp_path / "reservoir_capacity.png").stat().st_size > 0


def test_gru_capacity(tmp_path):
    pytest.importorskip("torch")
    r = example("gru_capacity", tmp_path)
    assert r["rank"] == 32
    assert r["MC"] > 2
    assert r["IPC total"] <= r["rank"] + 0.5  # the total over all targets stays below the rank


@pytest.mark.slow
def test_sligru_training(tmp_path):
    pytest.importorskip("torch")
    r = example("sligru_training", tmp_path)
    # far below the constant predictor's 1/6 on held-out sequences
    assert r["test MSE"] < 0.1 * r["constant predictor MSE"]


def test_spike_coding(tmp_path):
    r = example("spike_coding", tmp_path, "--out", str(tmp_path))
    # the readout tracks the circle to within a few spikes' size (each decoding vector has norm 0.1)
    assert r["relative error"] < 0.08
    assert 1 < r["mean rate (Hz)"] < 50
    assert (tmp_path / "spike_coding.png").stat().st_size > 0


@pytest.mark.slow
def test_cfc_control(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("gymnasium")
    r = example("cfc_control", tmp_path)
    assert r["held-out R2"] > 0.3  # the cloned torques explain most of the expert's on fresh episodes
    assert r["normalised return"] > 0  # in closed loop, better than applying no torque


@pytest.mark.slow
def test_sweep_dask(tmp_path):
    pytest.importorskip("distributed")
    r = example("sweep_dask", tmp_path, "--out", str(tmp_path))
    assert r["tasks"] == 4
    assert r["computed on the second run"] == 0  # every result came from the store
    assert r["largest difference between the runs"] == 0
    assert len(list((tmp_path / "sweep").glob("*.parquet"))) == 4


# ------------------------------------------------------------------------------------------------- README blocks

def python_blocks(path: Path) -> list[str]:
    """The ```python blocks of a Markdown file, in order."""
    return re.findall(r"^```python\n(.*?)^```", path.read_text(encoding="utf-8"), flags=re.S | re.M)


README_BLOCKS = python_blocks(ROOT / "README.md")
# blocks that take more than about 10 s on the development machine, recognised by what they run
SLOW = ("capacity_by_readout", "dask.array", "learn_autoencoder", "RSNN")


def _block_id(block: str) -> str:
    first = next((line for line in block.splitlines() if line and not line.startswith(("import", "from"))), "")
    return re.sub(r"\W+", "-", first)[:40].strip("-")


def test_readme_has_python_blocks():
    assert len(README_BLOCKS) >= 5


@pytest.mark.parametrize("block", [
    pytest.param(b, id=f"{i}-{_block_id(b)}", marks=[pytest.mark.slow] if any(s in b for s in SLOW) else [])
    for i, b in enumerate(README_BLOCKS)])
def test_readme_block_runs_on_its_own(block, tmp_path):
    if "torch" in block:
        pytest.importorskip("torch")
    _python(["-c", block], cwd=tmp_path)  # a fresh process: only what the block itself defines
