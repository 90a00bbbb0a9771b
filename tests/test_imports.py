"""Importing wrec has no cost and no side effects: subpackages and heavy dependencies load on first use.

Each check runs in a fresh interpreter (this test process has long since imported everything), some with torch
and matplotlib made unimportable by a ``sys.meta_path`` finder that raises on them.
"""

import subprocess
import sys
import textwrap

import pytest

BLOCK = textwrap.dedent("""
    import sys

    class Block:
        '''Refuse torch and matplotlib, as on an install without the [torch] extra or matplotlib.'''
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "matplotlib"):
                raise ImportError(f"{name} is blocked in this test")
            return None

    sys.meta_path.insert(0, Block())
""")


def run_python(code: str, *, block: bool = True) -> str:
    """Run ``code`` in a fresh interpreter (warnings are errors); return its stdout, fail with its stderr."""
    script = "import sys\n" + (BLOCK if block else "") + textwrap.dedent(code)
    proc = subprocess.run([sys.executable, "-W", "error", "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_import_wrec_loads_no_heavy_module():
    out = run_python("""
        import wrec
        heavy = ("matplotlib", "torch", "scipy.signal", "pandas", "scipy")
        print(sorted(m for m in heavy if m in sys.modules))
    """, block=False)
    assert out.strip() == "[]"


def test_core_subpackages_work_without_torch_and_matplotlib():
    out = run_python("""
        import numpy as np
        import wrec

        W = wrec.weights.gaussian(20, spectral_radius=0.9, seed=0)
        u = wrec.tasks.uniform_input(300, seed=1)
        X = wrec.reservoir.run(wrec.reservoir.ESN(W, input_scale=0.1, seed=2), u, washout=100)
        c = wrec.tasks.smoothed_white_noise(200, 2, seed=3)
        x = wrec.tasks.leaky_integral(c, 10.0, 1e-3)
        _, y = wrec.tasks.linear_functional(2, 50, "airy", seed=4)
        assert X.shape == (200, 20) and x.shape == (200, 2) and y.shape == (2, 50, 1)
        from wrec.spiking import optimal_weights, simulate  # the NumPy spike coding networks need no torch
        net = optimal_weights(np.eye(2)[:, [0, 1, 0, 1]] * [0.1, 0.1, -0.1, -0.1])
        assert simulate(net, np.zeros((10, 2))).n_steps == 10
        try:
            from wrec.spiking import RSNN  # noqa: F401
        except ImportError as exc:
            assert "torch is blocked" in str(exc)
        else:
            raise AssertionError("RSNN imported without torch")
        print(sorted(m for m in ("matplotlib", "torch") if m in sys.modules))
    """)
    assert out.strip() == "[]"


def test_one_experiment_does_not_import_the_others():
    out = run_python("""
        import wrec.experiments.sligru_gain_sweep
        # the shared private helpers (_stats, _protocol, _torch) may load; no other experiment may
        print(sorted(m for m in sys.modules if m.startswith("wrec.experiments.")
                     and not m.rpartition(".")[2].startswith("_")))
    """, block=False)
    assert out.strip() == "['wrec.experiments.sligru_gain_sweep']"


def test_plotting_selects_no_backend_and_leaves_no_open_figure():
    out = run_python("""
        import os, tempfile
        import matplotlib
        import numpy as np
        import pandas as pd
        from wrec import plotting

        before = matplotlib.rcParams._get_backend_or_none()
        by_degree = pd.DataFrame({1: [1.0, 2.0], 2: [0.5, 0.2]}, index=[0.1, 0.2])
        with tempfile.TemporaryDirectory() as tmp:
            path = plotting.capacity_profile(by_degree, pd.Series([2.0, 3.0], index=by_degree.index),
                                             os.path.join(tmp, "p.png"), xlabel="x")
            assert path.stat().st_size > 0
        assert matplotlib.rcParams._get_backend_or_none() == before
        print("matplotlib.pyplot" in sys.modules)
    """, block=False)
    assert out.strip() == "False"


@pytest.mark.parametrize("name", ["wrec", "wrec.spiking", "wrec.tasks", "wrec.nn", "wrec.experiments"])
def test_every_public_name_resolves_and_is_listed(name):
    import importlib

    module = importlib.import_module(name)
    assert set(module.__all__) <= set(dir(module))
    for attr in module.__all__:
        assert getattr(module, attr) is not None
    with pytest.raises(AttributeError, match=f"module '{name}' has no attribute 'no_such_name'"):
        module.no_such_name  # noqa: B018


def test_a_function_named_like_its_submodule_stays_the_function():
    import wrec.reservoir.run  # the import system sets wrec.reservoir.run = <module> on first load

    assert callable(wrec.reservoir.run) and wrec.reservoir.run.__name__ == "run"
