"""The readout-scaling experiment at smoke size: the shape of the MC(L) curve, the theory, and bad configs."""

import numpy as np
import pandas as pd
import pytest

from wrec.experiments import readout_scaling as rs

SMALL = {"sizes": (100,), "gains": (0.9,), "input_scales": (0.5,), "replicates": 1, "length": 10_000,
         "washout": 500, "max_delay": ((1, 119), (2, 7), (3, 7)), "surrogates": 50, "n_readouts": 12}


@pytest.fixture(scope="module")
def results():
    config = rs.Config(kinds=("esn", "linear", "rate"), **SMALL)
    return pd.concat([rs.evaluate(t) for t in config.tasks()], ignore_index=True)


def curve(results, kind, column="capacity", degree=1):
    part = results[(results.kind == kind) & (results.degree == degree)]
    return part.set_index("L")[column]


@pytest.mark.slow
def test_memory_capacity_is_sublinear_and_concave_for_nonlinear_reservoirs(results):
    for kind in ("esn", "rate"):
        mc = curve(results, kind)
        L = mc.index.to_numpy()
        # MC ≤ L is exact for the true value; the bias-corrected estimate still has sampling noise of a few 10⁻²
        # at T = 10⁴ for the slow (autocorrelated) rate network
        assert np.all(curve(results, kind, "adjusted").to_numpy() <= 1.01 * L + 0.05)
        assert mc.iloc[0] >= 0.9  # slope ≈ 1 at L = 1
        assert np.all(np.diff(mc.to_numpy()) >= -1e-9)  # more neurons never remember less
        ratio = mc.to_numpy() / L
        assert np.all(np.diff(ratio) <= 0.02)  # MC(L)/L falls: concave from the origin
        assert mc.iloc[-1] < 0.5 * L[-1]


@pytest.mark.slow
def test_linear_reservoir_is_not_sublinear(results):
    mc = curve(results, "linear", "adjusted")
    small = mc[mc.index <= 40]
    np.testing.assert_allclose(small.to_numpy(), small.index.to_numpy(), rtol=0.03)


@pytest.mark.slow
def test_nonlinear_share_grows_and_theory_matches(results):
    esn = results[results.kind == "esn"]
    wide = esn.pivot(index="L", columns="degree", values="capacity")
    share = (wide.sum(axis=1) - wide[1]) / wide.index
    assert np.all(np.diff(share[share.index <= 40].to_numpy()) >= -0.01)
    assert wide.loc[wide.index.max(), 3] > wide.loc[wide.index.max(), 1]  # degree 3 overtakes memory
    for kind in ("esn", "rate"):
        raw, predicted = curve(results, kind, "raw"), curve(results, kind, "theory")
        assert np.max(np.abs(raw - predicted) / raw) < 0.05  # one random order, so looser than the 3 % of means


@pytest.mark.slow
def test_tables_and_figures(results, tmp_path):
    summary = rs.table(results)
    assert set(summary.kind) == {"esn", "linear", "rate"}
    assert summary.set_index("kind").loc["esn", "<r2>"] > summary.set_index("kind").loc["linear", "<r2>"] * 0.5
    paths = rs.plot(results, tmp_path / "rs.png")
    assert len(paths) == 3 and all(p.stat().st_size > 10_000 for p in paths)


def test_a_blown_up_reservoir_is_recorded_not_dropped():
    config = rs.Config(kinds=("linear",), **{**SMALL, "gains": (1.3,), "length": 3000, "max_delay": ((1, 20),)})
    (task,) = config.tasks()
    out = rs.evaluate(task)
    assert len(out) == 1 and "blew up" in out.note.item() and not out.echo_state.item()
    assert "blew up" in rs.table(out).note.item()


def test_task_streams_depend_only_on_coordinates():
    a = [g.random() for g in rs.streams(0, 100, 2)]
    b = [g.random() for g in rs.streams(0, 100, 2)]
    c = [g.random() for g in rs.streams(0, 100, 3)]
    assert a == b and a != c and len(set(a)) == 3


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"kinds": ("esn", "lstm")}, "kinds has unknown"), ({"sizes": ()}, "sizes is empty"),
     ({"readouts": (1, 500), "sizes": (200,)}, "readouts must be <= 200"), ({"length": -5}, "length must be >= 2"),
     ({"gains": (0.0,)}, "gains must be > 0"), ({"replicates": 0}, "replicates must be >= 1")],
)
def test_bad_configs_are_rejected_before_any_work(kwargs, match):
    with pytest.raises(ValueError, match=match):
        rs.Config(**kwargs)


@pytest.mark.slow
def test_targets_hold_on_the_smoke_run_and_fail_when_a_task_warned(results):
    checks = rs.targets(results).set_index("target")
    assert checks["held"].all(), checks
    warned = results.assign(warnings=np.where(results.kind == "rate", "L = 5: the total capacity 6 exceeds", ""))
    again = rs.targets(warned).set_index("target")
    assert not again.loc["capacity total ≤ rank at every L (no invariant warning)", "held"]
    assert "exceeds" in rs.table(warned).set_index("kind").loc["rate", "check"]
