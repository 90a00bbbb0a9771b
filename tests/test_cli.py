"""The command line and the ipc-profile experiment end to end, at smoke size."""

import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from wrec.cli import app
from wrec.experiments import ipc_profile
from wrec.store import Store

TINY = {"spectral_radii": (0.5, 1.2), "length": 4000, "washout": 500, "max_delay": ((1, 40), (2, 6), (3, 6)),
        "surrogates": 20}


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setattr(ipc_profile.Config, "quick", classmethod(lambda cls, **kw: cls(**{**TINY, **kw})))


def test_list():
    result = CliRunner().invoke(app, ["list"])
    assert result.exit_code == 0
    assert "ipc-profile" in result.output


def test_run_writes_table_figure_and_resumes(tiny, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["run", "ipc-profile", "--quick", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    folder = tmp_path / "ipc-profile"
    table = pd.read_csv(folder / "table.csv")
    assert table["spectral_radius"].tolist() == [0.5, 1.2]
    assert (table["total"] <= table["rank"] + 0.5).all()
    assert table.loc[1, "total/rank"] < table.loc[0, "total/rank"]  # chaos destroys capacity
    assert "published total" in table  # seed 0, N = 50: Kubota's reservoir
    assert (folder / "ipc-profile.png").stat().st_size > 10_000
    targets = pd.read_csv(folder / "targets.csv").set_index("target")
    assert targets.loc["total ≤ rank at every ρ (no invariant warning)", "held"]
    assert targets.loc["ranks = Kubota et al.'s published ranks", "held"]  # 49 at ρ = 0.5, 50 at 1.2
    stored = sorted((folder / "results").glob("*.parquet"))
    assert len(stored) == 2
    mtimes = [p.stat().st_mtime_ns for p in stored]
    again = runner.invoke(app, ["run", "ipc-profile", "--quick", "--out", str(tmp_path)])
    assert again.exit_code == 0
    assert [p.stat().st_mtime_ns for p in stored] == mtimes  # nothing recomputed
    other = runner.invoke(app, ["run", "ipc-profile", "--quick", "--out", str(tmp_path), "--seed", "3"])
    assert other.exit_code == 0
    assert len(list((folder / "results").glob("*.parquet"))) == 4
    assert "published total" not in pd.read_csv(folder / "table.csv")


def _text(result) -> str:
    """The output with typer's error box and line wrapping taken away."""
    return " ".join(result.output.replace("│", " ").split())


def _run(tmp_path, name, *options):
    """``wrec run ipc-profile --quick`` into tmp_path/name: (printed output, stored tidy table, summary table)."""
    result = CliRunner().invoke(app, ["run", "ipc-profile", "--quick", "--out", str(tmp_path / name), *options])
    assert result.exit_code == 0, result.output
    folder = tmp_path / name / "ipc-profile"
    return result.output, Store(folder / "results").table(), pd.read_csv(folder / "table.csv")


@pytest.mark.slow
def test_workers_give_the_same_tables(tiny, tmp_path):
    # the configs are made here (tiny) and sent to the workers whole, so the pool runs the tiny sweep too
    _, stored, summary = _run(tmp_path, "one", "--workers", "1")
    _, stored2, summary2 = _run(tmp_path, "two", "--workers", "2")
    pd.testing.assert_frame_equal(stored.drop(columns="seconds"), stored2.drop(columns="seconds"))
    pd.testing.assert_frame_equal(summary, summary2)


@pytest.mark.slow
def test_scheduler_runs_on_a_dask_cluster(tiny, tmp_path):
    distributed = pytest.importorskip("distributed")
    _, stored, _ = _run(tmp_path, "local")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    with cluster:
        _, on_dask, _ = _run(tmp_path, "dask", "--scheduler", cluster.scheduler_address)
    pd.testing.assert_frame_equal(stored.drop(columns="seconds"), on_dask.drop(columns="seconds"))


def test_workers_and_scheduler_are_exclusive_and_dask_is_optional(tmp_path, monkeypatch):
    runner = CliRunner()
    both = runner.invoke(app, ["run", "ipc-profile", "--workers", "2", "--scheduler", "tcp://localhost:1"])
    assert both.exit_code != 0 and "mutually exclusive" in _text(both)
    assert runner.invoke(app, ["run", "ipc-profile", "--workers", "0"]).exit_code != 0
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if Dask were not installed
    missing = runner.invoke(app, ["run", "ipc-profile", "--out", str(tmp_path), "--scheduler", "tcp://localhost:1"])
    assert missing.exit_code != 0 and "pip install 'wrec[dask]'" in _text(missing)


def test_show_prints_the_stored_table(tiny, tmp_path):
    _, stored, _ = _run(tmp_path, "run")
    runner = CliRunner()
    for where in (tmp_path / "run" / "ipc-profile", tmp_path / "run" / "ipc-profile" / "results"):
        shown = runner.invoke(app, ["show", str(where)])
        assert shown.exit_code == 0, shown.output
        assert f"{len(stored)} rows from 2 tasks" in shown.output
        assert "spectral_radius" in shown.output and stored["key"].iloc[0] in shown.output
    empty = runner.invoke(app, ["show", str(tmp_path)])
    assert empty.exit_code != 0 and "no stored results" in empty.output


def test_unknown_experiment_is_a_clear_error():
    result = CliRunner().invoke(app, ["run", "no-such-thing"])
    assert result.exit_code != 0
    assert "unknown experiment" in result.output


def test_kubota_reservoir_is_the_published_draw():
    W, w_in = ipc_profile.kubota_reservoir(50, seed=0)
    assert np.max(np.abs(np.linalg.eigvals(W))) == pytest.approx(1.0, abs=1e-12)
    assert 0 < np.count_nonzero(w_in) < 15  # density 0.1
    # the first inputs printed in the published notebook; the published ranks are checked in test_ipc
    np.testing.assert_allclose(ipc_profile.kubota_input(3), [0.09762701, 0.43037873, 0.20552675], atol=1e-8)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"spectral_radii": ()}, "empty"), ({"spectral_radii": (-0.1,)}, "spectral_radii"), ({"n": 0}, "n must be"),
     ({"length": 100, "max_delay": ((1, 200),)}, "max_delay must be < length"), ({"input_scale": 0.0}, "input_scale")],
)
def test_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ipc_profile.Config(**kwargs)


@pytest.mark.parametrize("name", sorted(__import__("wrec.experiments", fromlist=["EXPERIMENTS"]).EXPERIMENTS))
def test_every_experiment_follows_the_protocol(name):
    """``wrec run`` treats every registered experiment alike: a Config grid (quick, tasks, seed) whose tasks are
    frozen dataclasses with stable keys, and evaluate/table/plot/targets (reports optional, callable if there)."""
    import dataclasses
    import inspect

    from wrec.experiments import EXPERIMENTS
    from wrec.experiments._protocol import Experiment, ExperimentConfig
    from wrec.store import config_key

    module = EXPERIMENTS[name]
    assert isinstance(module, Experiment), name
    config = module.Config.quick()
    assert isinstance(config, ExperimentConfig) and dataclasses.is_dataclass(config)
    assert dataclasses.replace(config, seed=3).seed == 3
    tasks = config.tasks()
    assert tasks and all(dataclasses.is_dataclass(t) and t.__dataclass_params__.frozen for t in tasks)
    assert len({config_key(t) for t in tasks}) == len(tasks)  # every task its own stored result
    for fn in ("evaluate", "table", "targets"):
        assert len(inspect.signature(getattr(module, fn)).parameters) == 1, fn
    assert len(inspect.signature(module.plot).parameters) == 2
    if hasattr(module, "reports"):
        assert callable(module.reports)
