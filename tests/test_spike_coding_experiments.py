"""The three spike coding experiments (spike-coding-autoencoder, -convex, -lds) on the experiment protocol: their
tasks are ``Task`` records whose stored results keep the keys they had when a task was the narrowed ``Config``
itself, and their plots only read results (no simulation, no learning, no QP)."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from wrec import dynamics, store, sweep
from wrec.experiments import spike_coding_autoencoder as ae
from wrec.experiments import spike_coding_convex as convex
from wrec.experiments import spike_coding_lds as lds
from wrec.experiments._protocol import Task
from wrec.spiking import learning, qp, scn

MODULES = {"autoencoder": ae, "convex": convex, "lds": lds}

# store.legacy_config_key of each task as computed before the tasks were Task records (when a task was the Config
# narrowed to one replicate, with a ``replicate`` field), in Config.tasks() order
LEGACY_KEYS = {
    ("autoencoder", "quick"): ["f12f0abf8c8615f9", "f4bdad196ecfbc56", "352292e8ef2890e2"],
    ("autoencoder", "full"): ["900b307f8eba79db", "2448a9d6d6a59f2f", "c85d1ab19a6e5b98"],
    ("convex", "quick"): ["9256d9a8da5adc25"],
    ("convex", "full"): ["66765b4ff72ace92", "83a74f2cbee7a795", "452bedcca52c0abe"],
    ("lds", "quick"): ["5866b660d7f6a70c", "156d8ed0d0402113", "e30b31aedb910d76", "11e8fb442989b14c"],
    ("lds", "full"): ["827b23f82f2174e0", "d3a60732d6f46c42", "8631983dab0957ea", "9a5a33c7d4c465ad",
                      "48ecc45b412a3635", "5cd336f145fb4e38"],
}


# the quick autoencoder learned for 2·10⁵ steps when its legacy keys were recorded (now 7·10⁵: a new run, new keys)
LEGACY_OVERRIDES = {("autoencoder", "quick"): {"n_steps": 200_000, "checkpoints": (0, 1_000, 10_000, 50_000, 200_000)}}


def _config(name: str, size: str, legacy: bool = False):
    cls = MODULES[name].Config
    overrides = LEGACY_OVERRIDES.get((name, size), {}) if legacy else {}
    return cls.quick(**overrides) if size == "quick" else cls(**overrides)


@pytest.mark.parametrize("name, size", list(LEGACY_KEYS))
def test_tasks_keep_their_legacy_keys(name, size):
    tasks = _config(name, size, legacy=True).tasks()
    assert all(isinstance(t, Task) for t in tasks)
    assert [store.legacy_config_key(t) for t in tasks] == LEGACY_KEYS[name, size]
    assert len({store.config_key(t) for t in tasks}) == len(tasks)


def test_a_changed_quick_config_is_a_new_run():
    """Results of the 2·10⁵-step quick autoencoder are not reused for the 7·10⁵-step one: its keys differ."""
    now = {store.config_key(t) for t in _config("autoencoder", "quick").tasks()}
    before = {store.config_key(t) for t in _config("autoencoder", "quick", legacy=True).tasks()}
    assert now.isdisjoint(before)


@pytest.mark.parametrize("name", list(MODULES))
def test_a_result_under_its_legacy_key_is_rekeyed_not_recomputed(tmp_path, name):
    tasks = _config(name, "quick").tasks()
    results = store.Store(tmp_path)
    frames = [pd.DataFrame({"replicate": [t.replicate], "value": [float(i)], "key": ["old"]})
              for i, t in enumerate(tasks)]
    for task, frame in zip(tasks, frames, strict=True):
        results.save(task.legacy_key(), frame)
    got = sweep.run(lambda task: pytest.fail(f"{task} was recomputed"), tasks, store=results)
    assert got.value.tolist() == [float(i) for i in range(len(tasks))]
    assert got.key.tolist() == [store.config_key(t) for t in tasks]
    assert results.keys() == sorted(store.config_key(t) for t in tasks)


def test_tasks_are_the_grid_narrowed_to_one_point_and_replicate():
    config = ae.Config.quick(replicates=2)
    assert config.tasks() == [Task(replace(config, replicates=1), r) for r in (0, 1)]
    config = convex.Config(epochs=3, replicates=2)
    assert config.tasks() == [Task(replace(config, replicates=1), r) for r in (0, 1)]
    config = lds.Config.quick()  # K outermost, both gains of a replicate on the same streams
    assert [(t.config.feedbacks, t.config.replicates, t.replicate) for t in config.tasks()] == [
        ((50.0,), 1, 0), ((50.0,), 1, 1), ((0.0,), 1, 0), ((0.0,), 1, 1)]


def _forbid_simulation(monkeypatch) -> None:
    """Every simulator, learning run and QP a plot might call raises (also under the names the experiment modules
    imported)."""

    def forbidden(*args, **kwargs):
        raise AssertionError("a plot function ran a simulation")

    for module, names in (
        (dynamics, ("run",)),
        (scn, ("simulate", "step")),
        (qp, ("simulate", "readout_trajectory", "readout_qp", "polytope", "spiking_readout", "fit_convex")),
        (learning, ("learn_autoencoder", "learn_lds", "autonomous_test")),
        (ae, ("simulate", "learn_autoencoder", "fit_decoder", "measure", "raster")),
        (convex, ("box_rows", "box_network")),
        (lds, ("learn_lds", "autonomous_test")),
    ):
        for name in names:
            if hasattr(module, name):
                monkeypatch.setattr(module, name, forbidden)


def test_convex_plot_only_reads_results(tmp_path, monkeypatch):
    results = sweep.run(convex.evaluate, convex.Config(epochs=2, replicates=1, readout_points=11).tasks(),
                        store=store.Store(tmp_path / "results"))
    _forbid_simulation(monkeypatch)
    paths = convex.plot(results, tmp_path / "convex.png")
    assert [p.name for p in paths] == ["convex.png", "convex-rmse.png", "convex-box.png"]
    assert all(p.stat().st_size > 10_000 for p in paths)
    with pytest.warns(UserWarning, match="no bounding-box figure"):  # results stored before the box rows were
        older = convex.plot(results[results.record != "box"], tmp_path / "older.png")
    assert [p.name for p in older] == ["older.png", "older-rmse.png"]


def test_lds_plot_only_reads_results(tmp_path, monkeypatch):
    config = lds.Config(train_time=0.4, eval_times=(0.2, 0.4), checkpoint_every=0.1, replicates=1, test_time=0.3,
                        test_discard=0.1)
    results = sweep.run(lds.evaluate, config.tasks(), store=store.Store(tmp_path / "results"))
    _forbid_simulation(monkeypatch)
    paths = lds.plot(results, tmp_path / "fig" / "lds.png")
    assert [p.name for p in paths] == ["lds.png", "lds-test.png", "lds-weights.png", "lds-A.png"]
    assert all(p.stat().st_size > 10_000 for p in paths)


def test_box_rows_are_the_polytope_and_a_readout_at_the_midpoint_solution():
    """What the bounding-box figure draws: the polytope's vertices satisfy F x − G y ≤ T, each neuron's boundary
    segment lies on G_i y = F_i x − T_i, and the settled mean readout sits at y*(T_mid), not at y*(T)."""
    box = convex.box_rows()
    F, G, T = convex.box_network(n=convex.BOX_NEURONS)
    x = np.array(convex.BOX_INPUT)

    def part(name):
        return box[box.part == name][["y1", "y2"]].to_numpy()

    assert np.all(F @ x - part("polytope") @ G.T <= T + 1e-9)
    boundary = box[box.part == "boundary"]
    assert sorted(boundary.neuron.unique()) == list(range(convex.BOX_NEURONS))
    for i, seg in boundary.groupby("neuron"):
        np.testing.assert_allclose(seg[["y1", "y2"]].to_numpy() @ G[int(i)], (F @ x - T)[int(i)], atol=1e-12)
    y = part("trajectory")
    assert y.shape == (round(convex.BOX_DURATION / convex.BOX_DT), 2)
    settled = y[round(convex.BOX_SETTLE / convex.BOX_DT):].mean(0)
    (y_star,), (y_mid,) = part("y_star"), part("y_mid")
    assert np.linalg.norm(settled - y_mid) < 0.02 < np.linalg.norm(settled - y_star)
