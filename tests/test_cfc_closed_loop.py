"""The cfc-closed-loop experiment at smoke size (every code path; the numbers are not the result), and the pieces
whose numbers can be checked exactly: the normalisation anchors, D, the paired bootstrap and the verdicts."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from wrec import sweep
from wrec.experiments import cfc_closed_loop as exp
from wrec.store import Store, config_key

pytest.importorskip("gymnasium")


@pytest.fixture(scope="module")
def smoke_results():
    return sweep.run(exp.evaluate, exp.Config.smoke().tasks())


@pytest.mark.slow
def test_smoke_run_has_every_condition_and_variant(smoke_results, tmp_path):
    res = smoke_results
    config = exp.Config.smoke()
    assert len(res) == len(config.tasks()) * 8  # nominal + 7 shifts per task
    assert set(res.role) == {"nominal", "validation", "report"}
    assert np.isfinite(res.r_hat).all()
    # R̂'s anchors: the zero policy and the retuned expert, identical for every variant on a replicate's conditions
    anchors = res.groupby(["replicate", "condition"])[["return_zero", "return_oracle"]].nunique()
    assert (anchors == 1).all().all()
    assert (res.return_oracle > res.return_zero).all()
    summary = exp.table(res)
    assert set(summary.variant) == {"CfC dense", "CfC r=H/4 s=0.5", "LSTM", "GRU"}
    # low rank cuts the recurrent parameters: 4 heads × (H² − 2Hr) fewer with H = 8, r = 2
    p = summary.set_index("variant").params
    assert p["CfC dense"] - p["CfC r=H/4 s=0.5"] == 4 * (8 * 8 - 2 * 8 * 2)
    checks = exp.targets(res)
    assert list(checks.columns) == ["target", "measured", "tolerance", "held"]
    assert checks.target.str.startswith("H1").sum() == 1 and checks.target.str.startswith("H2").sum() == 2
    assert not checks.held.any()  # 2 replicates give no CI: never "reproduced"
    assert checks.measured.str.contains("not reproduced at this scale").all()
    assert all(f.exists() for f in exp.plot(res, tmp_path / "cfc.png"))


@pytest.mark.slow
def test_cartpole_smoke_run():
    config = exp.Config.smoke(env="CartPole-v1", variants=(("CfC", 1, 0.0), ("GRU", 1, 0.0)), replicates=1)
    res = sweep.run(exp.evaluate, config.tasks())
    assert len(res) == 2 * 6 and set(res.condition) >= {"nominal", "length×2", "force×0.5", "action_delay 1"}
    assert (res.return_oracle == config.steps).all()  # the retuned LQR expert survives every shift
    assert np.isfinite(res.r_hat).all()
    obs, labels, alive = exp.expert_data(config, np.random.default_rng(0))
    assert obs.shape == (config.episodes, config.steps, 4) and set(np.unique(labels)) <= {0, 1}
    assert alive[:, 0].all()


def test_same_task_same_numbers():
    task = exp.Config.smoke().tasks()[1]
    a, b = exp.evaluate(task), exp.evaluate(task)
    pd.testing.assert_frame_equal(a.drop(columns="seconds"), b.drop(columns="seconds"))


def _fake(D_by_variant: dict[str, list[float]]) -> pd.DataFrame:
    """Results whose per-replicate D on the report shifts is given (R̂ nominal 1, validation R̂ = 1 − D − 0.01·i)."""
    rows = []
    variants = {"CfC dense": ("CfC", 1, 0.0), "CfC r=H/4 s=0.5": ("CfC", 4, 0.5), "CfC r=H/4 s=0.8": ("CfC", 4, 0.8),
            "LSTM": ("LSTM", 1, 0.0), "GRU": ("GRU", 1, 0.0)}
    for i, (name, Ds) in enumerate(D_by_variant.items()):
        cell, d, s = variants[name]
        for rep, D in enumerate(Ds):
            for cond, role, r_hat in (("nominal", "nominal", 1.0), ("obs", "validation", 1.0 - 0.01 * i),
                                      ("g", "report", 1.0 - D)):
                rows.append({"cell": cell, "d": d, "rank": 32 // d, "sparsity": s, "replicate": rep,
                             "condition": cond, "role": role, "r_hat": r_hat})
    return pd.DataFrame(rows)


def test_degradation_and_verdicts_on_known_numbers():
    res = _fake({"CfC dense": [0.5, 0.6, 0.55, 0.5, 0.6], "CfC r=H/4 s=0.5": [0.2, 0.25, 0.3, 0.2, 0.22],
                 "CfC r=H/4 s=0.8": [0.9, 0.9, 0.9, 0.9, 0.9], "LSTM": [0.2, 0.3, 0.25, 0.2, 0.22],
                 "GRU": [0.6, 0.7, 0.8, 0.7, 0.7]})
    per = exp.degradation(res)
    dense = per[per.variant == "CfC dense"].sort_values("replicate")
    np.testing.assert_allclose(dense.D_report, [0.5, 0.6, 0.55, 0.5, 0.6])
    checks = exp.targets(res).set_index("target")
    # the best sparse CfC is chosen on the validation shift: s = 0.5 (index 1) beats s = 0.8 (index 2) there
    assert all("CfC r=H/4 s=0.5" in t for t in checks.index)
    held = dict(zip([t.split(":")[0] + t.split("D(")[1].split(")")[0] for t in checks.index], checks.held,
                    strict=True))
    assert held == {"H1CfC dense": True, "H2LSTM": False, "H2GRU": True}


def test_a_ceiling_on_the_report_shifts_is_called_untestable():
    res = _fake({"CfC dense": [0.0] * 5, "CfC r=H/4 s=0.5": [0.0] * 5, "CfC r=H/4 s=0.8": [0.0] * 5,
                 "LSTM": [0.0] * 5, "GRU": [0.1, 0.0, 0.0, 0.0, 0.0]})
    checks = exp.targets(res).set_index("target")
    verdicts = {t.split("D(")[1].split(")")[0]: m for t, m in checks.measured.items()}
    assert "untestable" in verdicts["CfC dense"] and "untestable" in verdicts["LSTM"]
    assert "untestable" not in verdicts["GRU"]  # one replicate below R̂ = 1: a difference could show
    assert not checks.held.any()


def test_bootstrap_ci_of_a_constant_and_of_a_known_spread():
    assert exp.bootstrap_ci(np.full(5, 0.3)) == pytest.approx((0.3, 0.3))
    x = np.random.default_rng(0).standard_normal(400)
    lo, hi = exp.bootstrap_ci(x)
    se = x.std() / np.sqrt(x.size)
    assert lo == pytest.approx(x.mean() - 1.96 * se, abs=0.3 * se)
    assert hi == pytest.approx(x.mean() + 1.96 * se, abs=0.3 * se)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"variants": (("Mamba", 1, 0.0),)}, r"cell must be one of"),
    ({"variants": (("CfC", 3, 0.0),)}, r"d must divide hidden_size"),
    ({"variants": (("CfC", 4, 1.0),)}, r"s must be < 1"),
    ({"observe": "pixels"}, r"observe must be 'positions' or 'full'"),
    ({"env": "Acrobot-v1"}, r"env must be one of Pendulum-v1, CartPole-v1"),
])
def test_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        exp.Config.smoke(**kwargs)


def test_low_rank_sparse_baseline_gate_blocks():
    import torch

    from wrec.nn import LowRankSparseLSTM

    policy = exp.build_policy(exp.Config.smoke(), ("LSTM", 4, 0.5), torch.Generator().manual_seed(0))
    assert isinstance(policy["rnn"], LowRankSparseLSTM) and policy["rnn"].rank == 2
    assert exp._label("LSTM", 4, 0.5) == "LSTM r=H/4 s=0.5" and exp._label("GRU", 1, 0.0) == "GRU"


def test_tasks_are_variant_replicate_pairs_of_the_grid():
    config = exp.Config.smoke()
    tasks = config.tasks()
    assert [(t.variant, t.replicate) for t in tasks] == [(v, r) for v in config.variants for r in (0, 1)]
    assert all(t.config == config for t in tasks) and len({config_key(t) for t in tasks}) == len(tasks)
    assert not any(f.name in ("variant", "replicate") for f in dataclasses.fields(exp.Config))  # the grid has none
    with pytest.raises(ValueError, match="replicate must be >= 0"):
        exp.Task(config, ("CfC", 1, 0.0), -1)
    with pytest.raises(ValueError, match="d must divide hidden_size"):
        exp.Task(config, ("CfC", 3, 0.0), 0)


# The keys of Config.smoke()'s tasks when a task was the grid Config with variant and replicate fields, keyed by
# the hash of all its fields (computed with wrec at commit cbd4017).
SMOKE_LEGACY_KEYS = ["7a80ceec6f18f602", "f42b56c7c462e2c5", "b5d07df36637640a", "8490d4b6eb20ed86",
                     "b110db9145aa485a", "378ab6df6df07d72", "6cf082c42c5006ca", "88225c1d0cd084b9"]


def test_results_stored_under_the_earlier_task_type_are_rekeyed_not_recomputed(tmp_path):
    tasks = exp.Config.smoke().tasks()
    assert [t.legacy_key() for t in tasks] == SMOKE_LEGACY_KEYS
    store = Store(tmp_path)
    store.save(SMOKE_LEGACY_KEYS[1], pd.DataFrame({"return": [1.5], "key": [SMOKE_LEGACY_KEYS[1]]}))

    def never(task):
        raise AssertionError(f"recomputed {task}")

    out = sweep.run(never, [tasks[1]], store=store)
    assert out["return"].tolist() == [1.5] and out.key.tolist() == [config_key(tasks[1])]
    assert store.keys() == [config_key(tasks[1])]
