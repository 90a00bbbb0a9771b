"""capacity-atlas: a task's rows are those of state_matrix + profile on the family's network, seeded tasks repeat,
every family runs under the one protocol, fading memory is measured (not assumed), failures are rows, and the
summaries run on a tiny result."""

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest

from wrec import weights
from wrec.capacity import Surrogate, profile
from wrec.capacity.profile import readout_grid
from wrec.experiments import capacity_atlas as atlas
from wrec.experiments._protocol import Task
from wrec.experiments.readout_scaling import streams
from wrec.reservoir import ESN
from wrec.states import state_matrix

pytest.importorskip("torch")

TINY = {"size": 16, "length": 3000, "washout": 200, "replicates": 1, "max_delay": ((1, 20), (2, 5), (3, 3)),
        "n_readouts": 4, "surrogates": 10}


def tiny(**overrides):
    return atlas.Config.quick(**{**TINY, **overrides})


def task(family, gain, replicate=0, **overrides):
    config = tiny(families=(family,), gains=((family, (gain,)),), conditions=("untrained",), **overrides)
    return Task(config, replicate)


def test_esn_rows_are_state_matrix_then_profile_of_the_same_network():
    t = task("esn", 0.9, replicate=1)
    rows = atlas.evaluate(t)
    c = t.config
    net, inp, order = streams(c.seed, c.size, 1)
    esn = ESN(weights.gaussian(c.size, spectral_radius=0.9, seed=net), w_in=weights.input_weights(c.size, seed=net),
              input_scale=c.input_scale)
    u = inp.uniform(-1.0, 1.0, c.washout + c.length)
    X = state_matrix(esn, u, washout=c.washout)
    ref = profile(X, u[c.washout:], readout_grid(c.size, c.n_readouts), max_delay=dict(c.max_delay),
                  order="random", seed=order, threshold=Surrogate(c.surrogates)).table
    assert len(rows) == len(ref) and rows.note.eq("").all() and rows.echo_state.all()
    for column in ("L", "degree", "capacity", "raw", "rank", "theory", "independent"):
        np.testing.assert_allclose(rows[column].to_numpy(float), ref[column].to_numpy(float), rtol=0, atol=1e-12,
                                   err_msg=column)
    mc = ref[ref.L == c.size].set_index("degree")
    assert rows.MC_N.iloc[0] == pytest.approx(mc.loc[1, "capacity"], abs=1e-12)


@pytest.mark.parametrize("family", ["gru", "rsnn", "scn"])
def test_a_task_repeats_exactly_and_its_replicates_differ(family):
    gain = dict(atlas.QUICK_GAINS)[family][0]
    a, b = atlas.evaluate(task(family, gain)), atlas.evaluate(task(family, gain))
    pd.testing.assert_frame_equal(a.drop(columns="seconds"), b.drop(columns="seconds"))
    other = atlas.evaluate(task(family, gain, replicate=1))
    assert not np.allclose(a.raw.to_numpy(float), other.raw.to_numpy(float))


@pytest.mark.parametrize("family", atlas.FAMILIES)
def test_every_family_runs_and_its_capacity_stays_below_its_rank(family):
    rows = atlas.evaluate(task(family, dict(atlas.QUICK_GAINS)[family][0]))
    assert rows.note.eq("").all(), rows.note.iloc[0]
    assert set(rows.degree) == {1, 2, 3}
    assert rows.family.eq(family).all() and rows.condition.eq("untrained").all()
    # the total may pass the rank by its sampling error only (profile's check warns beyond it)
    assert rows.warnings.eq("").all(), rows.warnings.iloc[0]
    totals = rows.groupby("L").agg(total=("capacity", "sum"), rank=("rank", "first"))
    assert np.all(totals.total <= totals["rank"] + 0.1)
    mc = rows[rows.degree == 1]
    assert np.all(mc.capacity <= np.minimum(mc.L, mc["rank"]) + 0.1)  # MC(L) <= r(L) <= L
    assert 2 <= rows.n_active.iloc[0] <= 16 and np.isfinite(rows.mean_r2.iloc[0])


def test_a_task_config_names_one_point_of_the_grid():
    with pytest.raises(ValueError, match="one condition"):
        atlas.evaluate(Task(tiny(families=("gru",), gains=(("gru", (1.0,)),)), 0))


def test_fading_memory_is_measured_and_a_blow_up_is_a_row():
    assert atlas.evaluate(task("esn", 0.5)).echo_state.all()
    assert not atlas.evaluate(task("esn", 4.0)).echo_state.any()  # chaotic: two histories never meet
    blown = atlas.evaluate(task("linear", 1.5))
    assert len(blown) == 1 and "blew up" in blown.note.iloc[0] and not blown.echo_state.iloc[0]


def test_only_torch_families_train():
    with pytest.raises(ValueError, match="not trainable"):
        atlas.build("esn", tiny(), 0.9, np.random.default_rng(0), train=np.random.default_rng(1))


def test_tasks_cover_each_familys_gain_grid():
    config = tiny(families=("esn", "gru"), gains=(("esn", (0.5, 0.9)), ("gru", (1.0,))), replicates=2)
    tasks = config.tasks()
    assert [(t.config.conditions, t.config.families, t.config.gains[0][1], t.replicate) for t in tasks] == [
        (("untrained",), ("esn",), (0.5,), 0), (("untrained",), ("esn",), (0.5,), 1),
        (("untrained",), ("esn",), (0.9,), 0), (("untrained",), ("esn",), (0.9,), 1),
        (("untrained",), ("gru",), (1.0,), 0), (("untrained",), ("gru",), (1.0,), 1),
        (("trained",), ("gru",), (1.0,), 0), (("trained",), ("gru",), (1.0,), 1)]  # only torch families train
    assert len(atlas.Config().tasks()) == 12 * 2 * 3 + 6 * 2 * 3
    assert len(atlas.Config(conditions=("untrained",)).tasks()) == 12 * 2 * 3


def test_a_trained_task_starts_from_its_untrained_network_and_training_changes_it():
    """The trained row is the same draw, trained: with the loop's first step undone (lr → 0) its rows equal the
    untrained task's; with training, the recall loss falls and the profile moves."""
    before = atlas.evaluate(task("gru", 1.0))
    untouched = atlas.Config.quick(**TINY, families=("gru",), gains=(("gru", (1.0,)),), conditions=("trained",),
                                   train_steps=150)
    original = atlas.TRAIN_LR
    try:
        atlas.TRAIN_LR = 0.0
        frozen = atlas.evaluate(Task(untouched, 0))
    finally:
        atlas.TRAIN_LR = original
    np.testing.assert_allclose(frozen.raw.to_numpy(float), before.raw.to_numpy(float), rtol=0, atol=1e-12)
    trained = atlas.evaluate(Task(untouched, 0))
    assert trained.condition.eq("trained").all() and trained.note.eq("").all()
    first, last = trained.train_loss_first.iloc[0], trained.train_loss_last.iloc[0]
    assert 0.2 < first < 0.5 and last < 0.8 * first  # chance is var u = 1/3
    assert not np.allclose(trained.raw.to_numpy(float), before.raw.to_numpy(float), atol=1e-3)


def test_train_recall_targets_are_the_delayed_inputs():
    """A network whose output is its input (a linear 'GRU' of one unit) and a readout that copies it reaches zero
    loss on delay 0 only: the loss equals the variance of the K other delays, (K/(K+1))·(1/3)."""
    import torch

    class Copy(torch.nn.Module):
        hidden_size = 1

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones((), dtype=torch.float64))

        def forward(self, u, hx=None):
            return u * self.w / self.w.detach(), None  # the input itself; w only so that Adam has a parameter

    config = tiny(train_steps=1500, recall_delay=3)
    record = atlas.train_recall(Copy(), config, np.random.default_rng(0))
    assert record["train_loss_last"] == pytest.approx(3 / 4 / 3, rel=0.1)  # delays 1..3 unpredictable from u_t


@pytest.mark.parametrize(("field", "value"), [
    ("families", ("esn", "lstm")), ("families", ()), ("gains", (("esn", ()),)), ("gains", (("esn", (-1.0,)),)),
    ("size", 18), ("washout", 0), ("replicates", 0), ("max_delay", ((2, 3),)), ("max_delay", ((1, 2000),)),
    ("leak", 1.5), ("surrogates", 0), ("conditions", ("pretrained",)), ("conditions", ()), ("train_steps", 0),
    ("recall_delay", -1)])
def test_bad_config_values_raise_errors_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        tiny(**{field: value})


@pytest.fixture(scope="module")
def results():
    config = tiny(families=("esn", "linear", "gru", "scn"), gains=(("esn", (0.5, 0.9)), ("linear", (0.9,)),
                                                                  ("gru", (1.0,)), ("scn", (0.95,))), replicates=2)
    return pd.concat([atlas.evaluate(t) for t in config.tasks()] + [atlas.evaluate(task("linear", 1.5))],
                     ignore_index=True)


def test_table_has_one_row_per_family_and_gain(results):
    out = atlas.table(results)
    assert list(zip(out.family, out.condition, out.gain, strict=True)) == [
        ("esn", "untrained", 0.5), ("esn", "untrained", 0.9), ("linear", "untrained", 0.9), ("gru", "untrained", 1.0),
        ("scn", "untrained", 0.95), ("gru", "trained", 1.0), ("linear", "untrained", 1.5)]
    assert out.recall_loss_last.notna().tolist() == [False] * 5 + [True, False]
    for column in ("rank", "MC", "C_2", "C_3", "<r2>", "PR", "L_half/N", "max|raw-theory|/raw", "fading"):
        assert column in out
    assert "blew up" in out.note.iloc[-1] and out.fading.iloc[-1] == 0
    esn = results[(results.family == "esn") & (results.gain == 0.5)].drop_duplicates("replicate")
    assert out.MC.iloc[0] == pytest.approx(esn.MC_N.mean())


def test_targets_are_measured_and_the_correlation_claim_can_fail(results):
    out = atlas.targets(results)
    assert list(out.columns) == ["target", "measured", "tolerance", "held"]
    assert out.target.str.contains("Spearman").iloc[0]
    theory = [t.split(": ")[1].rsplit(" (", 1)[0] for t in out.target if t.startswith("theory")]
    assert theory == ["esn", "linear", "gru", "scn", "gru trained"]
    assert out.target.str.contains("untrained only").iloc[1] and out.target.str.contains("training lowered").any()
    rho, lo, hi, count = atlas.correlation_claim(results)
    assert count == 12 and lo <= rho <= hi
    assert atlas.correlation_claim(results, condition="untrained")[3] == 10
    # flipping the sign of the relation flips the verdict: the claim is not held by construction
    flipped = results.assign(mean_r2=-results.mean_r2)
    assert atlas.correlation_claim(flipped)[0] == pytest.approx(-rho)
    # the bootstrap CI does not depend on the order in which the tasks' rows arrive
    assert atlas.correlation_claim(results.iloc[::-1]) == pytest.approx((rho, lo, hi, count))
    assert out.target.str.startswith("training: L½/N").sum() == 1


def test_the_paired_sign_test_counts_pairs_whose_onset_moves_against_their_correlation():
    rows = [{"family": "gru", "gain": 1.0, "replicate": r, "condition": c, "mean_r2": r2, "L_half_N": onset}
            for r in range(6) for c, r2, onset in (("untrained", 0.5, 0.1), ("trained", 0.1, 0.4 if r else np.nan))]
    points = pd.DataFrame(rows)
    row = atlas._paired_row(points)  # every pair: ⟨r²⟩ down, L½/N up (NaN: never at L/2, so up too)
    assert row["measured"].startswith("6 of 6 pairs") and row["held"]
    same = points.assign(mean_r2=np.where(points.condition == "trained", 0.9, 0.5))  # both up: against the claim
    row = atlas._paired_row(same)
    assert row["measured"].startswith("0 of 6 pairs") and not row["held"]


def test_the_bootstrap_ci_is_that_of_scipys_spearman_on_each_resample(results):
    from scipy.stats import spearmanr

    p = atlas._points(results).sort_values([*atlas.KEYS, "replicate"], kind="stable")
    x = np.where(np.isfinite(p.L_half_N), p.L_half_N, 2.0).astype(float)
    y = p.mean_r2.to_numpy(float)
    idx = np.random.default_rng(0).integers(0, x.size, (atlas.BOOTSTRAP, x.size))
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a constant resample: NaN, as in the vectorised version
        boot = np.array([spearmanr(x[i], y[i]).statistic for i in idx], dtype=float)
    _, lo, hi, _ = atlas.correlation_claim(results, seed=0)
    np.testing.assert_allclose([lo, hi], np.nanquantile(boot, [0.025, 0.975]), rtol=0, atol=1e-12)


def test_plot_writes_three_figures(results, tmp_path):
    paths = atlas.plot(results, tmp_path / "atlas.png")
    assert len(paths) == 3 and all(p.exists() and p.stat().st_size > 0 for p in paths)


def test_the_cli_knows_the_experiment():
    from wrec.experiments import EXPERIMENTS

    assert EXPERIMENTS["capacity-atlas"] is atlas
    assert dataclasses.is_dataclass(atlas.Config)
