"""The command line and the ipc-profile experiment end to end, at smoke size."""

import dataclasses
import importlib.metadata
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from wrec import runconfig
from wrec.cli import app
from wrec.experiments import ipc_profile, readout_scaling
from wrec.runconfig import tomllib
from wrec.store import Store, config_key

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


def test_figures_in_every_format_asked_and_one_report_of_the_runs(tiny, tmp_path):
    args = ["run", "ipc-profile", "--quick", "--out", str(tmp_path), "--format", "png,pdf,svg"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    folder = tmp_path / "ipc-profile"
    for suffix, magic in ((".png", b"\x89PNG"), (".pdf", b"%PDF"), (".svg", b"<?xml")):
        assert (folder / f"ipc-profile{suffix}").read_bytes().startswith(magic), suffix
    page = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert page.exit_code == 0, page.output
    html = (tmp_path / "report.html").read_text()
    assert "ipc-profile" in html and html.count("<img") >= 1 and (tmp_path / "report.md").exists()


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
    pd.testing.assert_frame_equal(stored.drop(columns="seconds"), stored2.drop(columns="seconds"), check_exact=True)
    pd.testing.assert_frame_equal(summary, summary2, check_exact=True)


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


# ---------------------------------------------------------------------------------------------------------------
# Configuring a run (--set, --config, wrec config, --dry-run), its record (run.toml), and errors in one line.

def test_version():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout == f"wrec {importlib.metadata.version('wrec')}\n"


def test_set_gives_one_replicate_at_n_100_and_dry_run_runs_nothing(tmp_path):
    """The issue's check, as a dry run (the real run takes 20 s): 5 tasks, one per reservoir kind."""
    result = CliRunner().invoke(app, ["run", "readout-scaling", "--quick", "--set", "replicates=1", "--set",
                                      "sizes=100", "--out", str(tmp_path), "--dry-run"])
    assert result.exit_code == 0, result.output
    expected = dataclasses.replace(readout_scaling.Config.quick(), replicates=1, sizes=(100,))
    assert runconfig.override(readout_scaling.Config(), tomllib.loads(result.stdout)) == expected
    assert f"# 5 tasks: 0 already stored in {tmp_path / 'readout-scaling' / 'results'}, 5 to compute" in result.stdout
    tasks = expected.tasks()
    assert {t.config.sizes for t in tasks} == {(100,)} and {t.replicate for t in tasks} == {0}
    assert sorted(t.config.kinds[0] for t in tasks) == sorted(readout_scaling.KINDS)
    assert not any(tmp_path.iterdir())  # nothing written


def test_config_round_trips_through_config_and_set_applies_after_it(tmp_path):
    runner = CliRunner()
    printed = runner.invoke(app, ["config", "ipc-profile", "--quick", "--set", "n=40", "--seed", "3"])
    assert printed.exit_code == 0, printed.output
    path = tmp_path / "ipc.toml"
    path.write_text(printed.stdout)
    again = runner.invoke(app, ["config", "ipc-profile", "--config", str(path)])
    assert again.stdout.splitlines()[2:] == printed.stdout.splitlines()[2:]  # (the header says --quick or not)
    config = runconfig.load(ipc_profile.Config(), path)
    assert config == runconfig.override(ipc_profile.Config.quick(), {"n": 40, "seed": 3})
    path.write_text("n = 30\nseed = 5\n")  # a partial file, then --set
    partial = runner.invoke(app, ["config", "ipc-profile", "--quick", "--config", str(path), "--set", "seed=6"])
    assert runconfig.load(ipc_profile.Config(), _toml(tmp_path, partial.stdout)) == runconfig.override(
        ipc_profile.Config.quick(), {"n": 30, "seed": 6})


def _toml(tmp_path, text: str):
    path = tmp_path / "printed.toml"
    path.write_text(text)
    return path


def test_run_toml_records_the_config_the_versions_and_what_was_reused(tiny, tmp_path):
    runner = CliRunner()
    args = ["run", "ipc-profile", "--quick", "--out", str(tmp_path), "--set", "spectral_radii=0.5,1.2"]
    assert runner.invoke(app, args).exit_code == 0
    record_path = tmp_path / "ipc-profile" / "run.toml"
    first = tomllib.loads(record_path.read_text())
    assert first["experiment"] == "ipc-profile" and first["config"]["spectral_radii"] == [0.5, 1.2]
    assert (first["tasks"], first["tasks_computed"], first["tasks_reused"]) == (2, 2, 0)
    assert first["versions"]["wrec"] == importlib.metadata.version("wrec")
    assert first["versions"]["numpy"] == np.__version__ and first["versions"]["python"] == sys.version.split()[0]
    assert first["started"] <= first["finished"] and first["started"].endswith("Z") and first["seconds"] > 0
    grown = runner.invoke(app, [*args[:-1], "spectral_radii=0.5,1.2,0.9"])
    assert grown.exit_code == 0 and "tasks: 1 computed, 2 reused" in grown.output
    second = tomllib.loads(record_path.read_text())
    assert (second["tasks"], second["tasks_computed"], second["tasks_reused"]) == (3, 1, 2)
    # the record is a config file: it reproduces the run
    assert runconfig.load(ipc_profile.Config(), record_path, experiment="ipc-profile") == runconfig.override(
        ipc_profile.Config.quick(), {"spectral_radii": (0.5, 1.2, 0.9)})


def test_a_truncated_result_is_recomputed_with_a_one_line_warning(tiny, tmp_path):
    runner = CliRunner()
    args = ["run", "ipc-profile", "--quick", "--out", str(tmp_path)]
    assert runner.invoke(app, args).exit_code == 0
    store = Store(tmp_path / "ipc-profile" / "results")
    victim, other = (store.path(config_key(t)) for t in ipc_profile.Config.quick().tasks())
    clean, other_mtime = store.load(victim.stem), other.stat().st_mtime_ns
    victim.write_bytes(victim.read_bytes()[:300])  # a copy cut short
    shown = runner.invoke(app, ["show", str(tmp_path / "ipc-profile")])
    assert shown.exit_code == 1 and shown.stderr.count("\n") == 1 and str(victim) in shown.stderr
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    warning = [line for line in again.stderr.splitlines() if line.startswith("Warning:")]
    assert len(warning) == 1 and f"stored result {victim} is corrupt" in warning[0] and "set aside" in warning[0]
    assert "tasks: 1 computed, 1 reused" in again.stdout and other.stat().st_mtime_ns == other_mtime
    pd.testing.assert_frame_equal(store.load(victim.stem).drop(columns="seconds"), clean.drop(columns="seconds"))
    assert len(list(store.root.glob(f"_{victim.name}.corrupt-*"))) == 1


def _bad_invocations(tmp_path):
    """(arguments, what the one error line must say) of invocations that must fail before any work."""
    a_file, bad_toml, other_run = tmp_path / "a_file", tmp_path / "bad.toml", tmp_path / "run.toml"
    a_file.write_text("not a folder")
    empty = tmp_path / "empty"
    empty.mkdir()
    bad_toml.write_text("sizes = [1,\n")
    other_run.write_text('experiment = "readout-scaling"\n[config]\nsizes = [100]\n')
    run = ["run", "ipc-profile", "--quick", "--out", str(tmp_path / "out")]
    return [
        (["run", "no-such-thing"], "unknown experiment 'no-such-thing'"),
        (["run"], "Missing argument"),
        (["frobnicate"], "No such command"),
        ([*run, "--seed", "-1"], "'--seed'"),
        ([*run, "--seed", "x"], "'--seed'"),
        ([*run, "--workers", "0"], "'--workers'"),
        ([*run, "--bogus"], "No such option: --bogus"),
        ([*run, "--set", "n"], "expected FIELD=VALUE, got 'n'"),
        ([*run, "--set", "n=many"], "n (int): 'many' is not an int"),
        ([*run, "--set", "sizes=100"], "Config has no field 'sizes'; its fields: spectral_radii (tuple[float, ...])"),
        ([*run, "--set", "n=0"], "invalid config (n=0)"),
        ([*run, "--set", "seed=-1"], "seed must be >= 0, got -1"),
        ([*run, "--set", "max_delay=1,2"], "TOML array"),
        ([*run, "--config", str(tmp_path / "missing.toml")], "cannot read config file"),
        ([*run, "--config", str(bad_toml)], "is not valid TOML"),
        ([*run, "--config", str(other_run)], "records a run of 'readout-scaling', not 'ipc-profile'"),
        (["run", "ipc-profile", "--out", str(a_file)], f"{a_file} exists and is not a folder"),
        (["run", "ipc-profile", "--out", str(a_file / "below")], "cannot write to"),
        (["run", "ipc-profile", "--out", "/proc/wrec-cannot-be-here"], "cannot write to"),
        ([*run, "--scheduler", "no-port"], "malformed scheduler address 'no-port'"),
        ([*run, "--scheduler", "http://localhost:8786"], "unknown protocol 'http'"),
        ([*run, "--scheduler", "tcp://localhost:notaport"], "malformed scheduler address"),
        ([*run, "--scheduler", "tcp://127.0.0.1:1"], "cannot reach the scheduler at tcp://127.0.0.1:1"),
        ([*run, "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "mutually exclusive"),
        (["config", "ipc-profile", "--set", "standardize=perhaps"], "standardize (bool): 'perhaps' is not a bool"),
        (["show", str(tmp_path / "nowhere")], "is not a folder"),
        (["show", str(tmp_path)], "no stored results"),
        ([*run, "--format", "png,bmpx"], "'png,bmpx': formats must be some of"),
        ([*run, "--format", ","], "formats must be some of"),
        (["report", str(tmp_path / "nowhere")], "is not a folder"),
        (["report", str(empty)], "holds no run folder"),
    ]


def test_every_bad_invocation_is_one_line_on_stderr_and_no_traceback(tmp_path):
    try:
        import distributed  # noqa: F401
        cases = _bad_invocations(tmp_path)
    except ImportError:  # (the --scheduler cases then say that Dask is needed)
        cases = [(args, says) for args, says in _bad_invocations(tmp_path) if "--scheduler" not in args]
    runner = CliRunner()
    for args, says in cases:
        start = time.monotonic()
        result = runner.invoke(app, args)
        assert result.exit_code not in (0, None), args
        assert result.exception is None or isinstance(result.exception, SystemExit), (args, result.exception)
        assert "Traceback" not in result.output, args
        assert result.stdout == "" and result.stderr.count("\n") == 1, (args, result.stderr)
        assert result.stderr.startswith("Error: ") and says in result.stderr, (args, result.stderr)
        assert time.monotonic() - start < 10, args  # (an unreachable scheduler: a few seconds at most)
    assert not (tmp_path / "out").exists()  # none of them started work


def test_a_scheduler_address_where_no_dask_answers_is_one_line_within_seconds(tmp_path):
    pytest.importorskip("distributed")
    with socket.socket() as server:  # listens (connections are accepted by the kernel) but never answers
        server.bind(("127.0.0.1", 0))
        server.listen()
        address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
        start = time.monotonic()
        result = CliRunner().invoke(app, ["run", "ipc-profile", "--out", str(tmp_path), "--scheduler", address])
    assert time.monotonic() - start < 10
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.output
    assert f"cannot reach the scheduler at {address}: no Dask answer within" in result.stderr
    assert not any(tmp_path.iterdir())


def test_read_only_out_is_an_error_before_any_work(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes into a read-only folder (the /proc case of the corpus covers this as root)")
    tmp_path.chmod(0o500)
    try:
        result = CliRunner().invoke(app, ["run", "ipc-profile", "--out", str(tmp_path / "out")])
    finally:
        tmp_path.chmod(0o700)
    assert result.exit_code == 2 and "cannot write to" in result.stderr and result.stderr.count("\n") == 1


def test_a_real_process_prints_one_line_and_no_traceback(tmp_path):
    code = "import sys; from wrec.cli import app; sys.argv[0] = 'wrec'; app()"
    for args in (["run", "ipc-profile", "--set", "n=many"], ["run", "ipc-profile", "--seed", "-1"]):
        done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
        assert done.returncode == 2 and done.stdout == "", done
        assert done.stderr.startswith("Error: wrec run: Invalid value for") and done.stderr.count("\n") == 1, done
