"""snn-locality experiment: the attacks against hand-computed steps, the measures (CKA, AUC, bootstrap, parameter
matching), bad configs, a non-finite loss, and a smoke run of the whole pipeline."""

import dataclasses
import importlib.util
import math

import numpy as np
import pandas as pd
import pytest
import torch

from wrec import sweep
from wrec.experiments import snn_locality as m
from wrec.spiking.rsnn import RSNN
from wrec.store import Store, config_key

# the attack tests need torchattacks 3.5.1 (installed with --no-deps); the measures and configs do not
needs_torchattacks = pytest.mark.skipif(
    importlib.util.find_spec("torchattacks") is None,
    reason="torchattacks is not installed (pip install --no-deps torchattacks==3.5.1)")


def _model(seed=0) -> torch.nn.Module:
    net = RSNN(64, (30,), 10, generator=torch.Generator().manual_seed(seed))
    return m.pixel_classifier(net, steps=10).eval()


def _images(n=24, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)


@needs_torchattacks
def test_fgsm_equals_the_hand_computed_step():
    """torchattacks FGSM == clip(x + ε·sign(∇ₓ CE(f(x), y)), 0, 1), ∇ through the surrogate."""
    model, (x, y) = _model(), _images()
    for eps in (0.05, 0.2):
        xr = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(torch.nn.functional.cross_entropy(model(xr), y), xr)
        assert float(grad.abs().sum()) > 0  # the surrogate passes a gradient to the pixels
        by_hand = torch.clamp(x + eps * grad.sign(), 0, 1)
        adv = m.make_attack("fgsm", model, eps)(x, y)
        torch.testing.assert_close(adv, by_hand, rtol=0, atol=0)


@needs_torchattacks
@pytest.mark.parametrize("attack", ["pgd", "square", "gn"])
def test_attacks_stay_in_the_box(attack):
    """PGD and Square stay in the L∞ ε-ball and in [0, 1]; GN stays in [0, 1]. PGD lowers the accuracy."""
    model, (x, y) = _model(), _images()
    eps = 0.1
    adv = m._attack(attack, model, eps, x, y, seed=3, square_queries=20)
    assert adv.shape == x.shape and float(adv.min()) >= 0 and float(adv.max()) <= 1
    if attack != "gn":
        assert float((adv - x).abs().max()) <= eps + 1e-6
    if attack == "pgd":
        y_pred = model(x).argmax(1).detach()
        adv = m._attack("pgd", model, 0.3, x, y_pred, seed=3, square_queries=1)
        assert m._accuracy(model, adv, y_pred) < 1.0


@needs_torchattacks
def test_attacks_leave_the_global_rng_alone_and_repeat():
    model, (x, y) = _model(), _images()
    state = torch.random.get_rng_state()
    a = m._attack("pgd", model, 0.1, x, y, seed=5, square_queries=1)
    assert torch.equal(torch.random.get_rng_state(), state)
    torch.testing.assert_close(m._attack("pgd", model, 0.1, x, y, seed=5, square_queries=1), a, rtol=0, atol=0)


@needs_torchattacks
@pytest.mark.parametrize("encoding", ["rate", "latency"])
def test_stochastic_and_latency_encodings_are_attacked_through_straight_through_gradients(encoding):
    """The attacked function of rate coding is deterministic (frozen noise, same logits on every call and for any
    subset of the batch, as Square queries it); FGSM's step is the hand-computed one through the straight-through
    gradient, which is nonzero; PGD lowers the accuracy and stays in the ε-ball."""
    net = RSNN(64, (30,), 10, generator=torch.Generator().manual_seed(0))
    noise = torch.rand(10, 1, 64, generator=torch.Generator().manual_seed(5)) if encoding == "rate" else None
    model = m.pixel_classifier(net, 10, encoding, noise).eval()
    x, y = _images()
    with torch.no_grad():
        torch.testing.assert_close(model(x)[5:9], model(x[5:9]), rtol=0, atol=1e-5)  # float32 GEMM rounding
    xr = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(torch.nn.functional.cross_entropy(model(xr), y), xr)
    assert float(grad.abs().sum()) > 0
    adv = m.make_attack("fgsm", model, 0.1)(x, y)
    torch.testing.assert_close(adv, torch.clamp(x + 0.1 * grad.sign(), 0, 1), rtol=0, atol=0)
    y_pred = model(x).argmax(1).detach()
    adv = m._attack("pgd", model, 0.3, x, y_pred, seed=3, square_queries=1)
    assert float((adv - x).abs().max()) <= 0.3 + 1e-6 and m._accuracy(model, adv, y_pred) < 1.0
    if encoding == "rate":
        with pytest.raises(ValueError, match="frozen noise"):
            m.pixel_classifier(net, 10, "rate")


def test_linear_cka_against_the_gram_matrix_form_and_invariances():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(60, 7)), rng.normal(size=(60, 5))
    H = np.eye(60) - 1 / 60
    K, L = H @ X @ X.T @ H, H @ Y @ Y.T @ H
    hsic = np.trace(K @ L) / math.sqrt(np.trace(K @ K) * np.trace(L @ L))  # Kornblith et al. eq. via HSIC
    assert m.linear_cka(X, Y) == pytest.approx(hsic, rel=1e-12)
    Q, _ = np.linalg.qr(rng.normal(size=(7, 7)))
    assert m.linear_cka(X, 3.0 * X @ Q + 2.0) == pytest.approx(1.0, rel=1e-12)
    assert m.linear_cka(torch.tensor(X), torch.tensor(Y)) == pytest.approx(hsic, rel=1e-12)
    assert m.linear_cka(X, np.ones((60, 3))) == 0.0
    with pytest.raises(ValueError, match="same number"):
        m.linear_cka(X, Y[:10])


def test_auc_bootstrap_and_parameter_matching():
    assert m.normalised_auc(np.array([0, 0.1, 0.3]), np.array([0.8, 0.8, 0.8])) == pytest.approx(0.8)
    eps = np.array([0.3, 0.0, 0.15])  # unsorted on purpose
    assert m.normalised_auc(eps, 1 - eps) == pytest.approx(1 - 0.15)
    lo, hi = m.bootstrap_ci(np.array([0.1, 0.2, 0.3, 0.4, 0.5]))
    assert lo < 0.3 < hi and lo >= 0.1 and hi <= 0.5
    assert (lo, hi) == m.bootstrap_ci(np.array([0.1, 0.2, 0.3, 0.4, 0.5]))
    assert all(math.isnan(v) for v in m.bootstrap_ci(np.array([0.3])))
    h = m.matched_width(64, (100,), 10)
    rec = m.count_parameters(RSNN(64, (100,), 10))
    assert rec == 64 * 100 + 100 * 99 + 10 * 100 + 10
    ff = [m.count_parameters(RSNN(64, (w,), 10, recurrent=False)) for w in (h - 1, h, h + 1)]
    assert abs(ff[1] - rec) <= min(abs(ff[0] - rec), abs(ff[2] - rec))
    h2 = m.matched_width(64, (100, 100), 10)
    assert abs(m.count_parameters(RSNN(64, (h2, h2), 10, recurrent=False))
               - m.count_parameters(RSNN(64, (100, 100), 10))) < 2 * h2 + 80


def _attack_rows(acc: dict) -> pd.DataFrame:
    """Synthetic attack rows: ``acc[(architecture, attack, source)]`` = robust accuracy at ε = 0.1 per replicate
    (1.0 at ε = 0), so AUC = (1 + acc)/2."""
    rows = []
    for (arch, attack, source), values in acc.items():
        for rep, a in enumerate(values):
            for eps, v in ((0.0, 1.0), (0.1, a)):
                rows.append({"kind": "attack", "study": "recurrence", "dataset": "digits", "encoding": "direct",
                             "replicate": rep, "architecture": arch, "rule": "bptt", "attack": attack,
                             "source": source, "eps": eps, "accuracy": v})
    return pd.DataFrame(rows)


@pytest.mark.parametrize(("recurrent_gain", "verdict"), [
    ({"fgsm": 0.1}, "gradient masking"),  # FGSM says robust, PGD/Square/transfer do not
    ({"fgsm": 0.1, "pgd": 0.1, "square": 0.1, "transfer-same": 0.1, "transfer-other": 0.1}, "robust"),
    ({"pgd": 0.1, "square": 0.1, "transfer-same": 0.1}, "gradient masking"),  # transfer from the other net: no
    ({"square": 0.1}, "no white-box gain"),
    ({"pgd": -0.1}, "no white-box gain"),
])
def test_gradient_masking_verdicts(recurrent_gain, verdict):
    """White-box (FGSM or PGD) "more robust" confirmed by transfer and Square is robustness; unconfirmed
    it is gradient masking. Five replicates with small jitter, so the bootstrap CIs are tight around the gains."""
    jitter = np.array([0.0, 0.01, -0.01, 0.005, -0.005])
    acc = {}
    for attack, source in (("fgsm", "white-box"), ("pgd", "white-box"), ("square", "white-box"),
                           ("gn", "white-box"), ("pgd", "transfer-same"), ("pgd", "transfer-other")):
        name = source if source != "white-box" else attack
        acc[("feedforward", attack, source)] = 0.4 + jitter
        acc[("recurrent", attack, source)] = 0.4 + recurrent_gain.get(name, 0.0) + jitter[::-1]
    v = m.verdicts(_attack_rows(acc))
    assert list(v.verdict) == [verdict]
    gained = {k for k, g in recurrent_gain.items() if g > 0}
    keys = [k for k in v.more_robust_under.iloc[0].split(", ") if k]  # e.g. "pgd white-box", "pgd transfer-same"
    named = {k.split()[1] if "transfer" in k else k.split()[0] for k in keys}
    assert named == gained


@pytest.mark.parametrize(("overrides", "match"), [
    ({"rules": ("bptt", "hebb")}, "unknown rule"),
    ({"encodings": ("phase",)}, "unknown encoding"),
    ({"attacks": ("cw",)}, "unknown attack"),
    ({"eps": (0.0, 1.5)}, "eps must be <= 1.0"),
    ({"eps": (-0.1,)}, "eps must be >= 0.0"),
    ({"steps": 0}, "steps must be >= 1"),
    ({"datasets": "digits"}, "non-empty tuple"),
    ({"attack_encodings": ("phase",)}, "unknown attack_encoding"),
])
def test_bad_config(overrides, match):
    with pytest.raises(ValueError, match=match):
        m.Config(**overrides)


@needs_torchattacks
def test_bad_attack_arguments():
    model = _model()
    with pytest.raises(ValueError, match="attack must be one of"):
        m.make_attack("cw", model, 0.1)
    with pytest.raises(ValueError, match=r"eps must be <= 1\.0"):
        m.make_attack("fgsm", model, 2.0)


def test_names_agree_with_the_library():
    from wrec.spiking.rules import RULES
    from wrec.tasks.spikes import ENCODINGS

    assert m.RULES == RULES and m.ENCODINGS == ENCODINGS


def test_orderings_gate_the_predicted_pairs_on_each_dataset_and_report_the_others():
    accuracy = {"bptt": 0.95, "eprop": 0.945, "eprop-random": 0.90, "local": 0.92, "fa": 0.5, "dfa": 0.5}
    rows = [{"kind": "clean", "study": "recurrence", "dataset": d, "encoding": "direct", "replicate": 0,
             "architecture": "recurrent", "rule": r, "epoch": 1, "accuracy": a + (0.0 if d == "digits" else -0.1)}
            for d in ("digits", "timing") for r, a in accuracy.items()]
    held = m.targets(pd.DataFrame(rows)).set_index("target")["held"]
    assert held["recurrence: bptt >= eprop on digits (recurrent)"]  # 0.5 point below: within 1 point
    assert held["recurrence: eprop >= eprop-random on timing (recurrent)"]
    assert held["recurrence: bptt >= local on timing (recurrent)"]
    assert not held["recurrence: eprop-random >= local on digits (recurrent, reported)"]
    assert held.index.str.contains(">=").sum() == 2 * 4  # 3 predicted pairs, 1 reported, per dataset; FA/DFA unranked
    worse = pd.DataFrame(rows).assign(accuracy=lambda f: np.where(f.rule == "eprop", 0.97, f.accuracy))  # > BPTT + 1
    assert not m.targets(worse).set_index("target")["held"]["recurrence: bptt >= eprop on digits (recurrent)"]


def test_timing_patterns_have_one_spike_per_channel_in_every_template():
    from wrec.tasks.spikes import pattern_templates

    templates = pattern_templates(10, 64, 50, seed=0, kind="timing")
    assert (templates.sum(axis=1) == 1).all()  # counts are equal: only timing separates the classes


def test_task_grid():
    grid = m.Config(replicates=2)
    tasks = grid.tasks()
    assert len(tasks) == 2 * (3 + 1) * 2  # 2 studies × (digits × 3 encodings + timing patterns) × 2 replicates
    assert len({config_key(t) for t in tasks}) == len(tasks)
    assert [(t.dataset, t.encoding) for t in tasks[:4]] == [("digits", "direct")] * 4  # the headline tasks first
    patterns = [t for t in tasks if t.dataset == "timing"]
    assert {(t.study, t.config.encodings, t.encoding, t.replicate) for t in patterns} == {
        (s, ("direct",), "spikes", r) for s in m.STUDIES for r in (0, 1)}
    assert all(t.config == dataclasses.replace(grid, datasets=(t.dataset,), encodings=t.config.encodings)
               for t in tasks)
    assert {t.hidden_sizes for t in tasks} == {(100,), (100, 100)}
    assert {(t.study, t.encoding) for t in tasks if t.attacked} == {("recurrence", e) for e in m.ENCODINGS}
    assert len(m.Config(replicates=2, locality_hidden_sizes=()).tasks()) == (3 + 1) * 2
    assert not any(f.name in ("study", "replicate") for f in dataclasses.fields(m.Config))  # the grid has none
    point = tasks[0].config
    with pytest.raises(ValueError, match="study must be one of"):
        m.Task(point, "depth", 0)
    with pytest.raises(ValueError, match="replicate must be >= 0"):
        m.Task(point, "recurrence", -1)
    with pytest.raises(ValueError, match="one dataset and one encoding"):
        m.Task(grid, "recurrence", 0)
    with pytest.raises(ValueError, match="locality study needs hidden layers"):
        m.Task(dataclasses.replace(point, locality_hidden_sizes=()), "locality", 0)


# The keys of Config.smoke()'s and Config.quick()'s tasks when a task was the narrowed Config with replicate and
# study fields, keyed by the hash of all its fields (computed with wrec at commit cbd4017).
LEGACY_KEYS = {"smoke": ["4b1258bd04f79b20", "473dc2134b9d370e"],
               "quick": ["bdd25ac75fdc3cf3", "7cad0789de2d4e54", "b47b1b9fba644628", "00d39e4fff971a96"]}


def test_results_stored_under_the_earlier_task_type_are_rekeyed_not_recomputed(tmp_path):
    assert [t.legacy_key() for t in m.Config.smoke().tasks()] == LEGACY_KEYS["smoke"]
    tasks = m.Config.quick().tasks()
    assert [t.legacy_key() for t in tasks] == LEGACY_KEYS["quick"]
    store = Store(tmp_path)
    store.save(LEGACY_KEYS["quick"][2], pd.DataFrame({"accuracy": [0.97], "key": [LEGACY_KEYS["quick"][2]]}))

    def never(task):
        raise AssertionError(f"recomputed {task}")

    out = sweep.run(never, [tasks[2]], store=store)
    assert out.accuracy.tolist() == [0.97] and out.key.tolist() == [config_key(tasks[2])]
    assert store.keys() == [config_key(tasks[2])]


def test_non_finite_loss_stops_with_a_clear_message(monkeypatch):
    class Diverging:
        def compute_grads(self, net, x, target):
            return torch.tensor(float("nan"))

    monkeypatch.setattr("wrec.spiking.rules.make_rule", lambda name, **kwargs: Diverging())
    task = m.Config.smoke().tasks()[0]
    task = dataclasses.replace(task, config=dataclasses.replace(task.config, rules=("eprop",)))
    with pytest.raises(FloatingPointError, match=r"rule 'eprop'.*non-finite.*epoch 1"):
        m.evaluate(task)


@needs_torchattacks
@pytest.mark.slow
def test_smoke_run(tmp_path):
    """The whole pipeline at smoke size: every (architecture, rule) trained and attacked, ε = 0 rows equal the
    clean accuracy, CKA in [0, 1], table/targets/plots produced; the caller's torch RNG state is untouched."""
    config = m.Config.smoke()
    assert [t.study for t in config.tasks()] == ["recurrence", "locality"]
    state = torch.random.get_rng_state()
    threads = torch.get_num_threads()
    try:
        res = sweep.run(m.evaluate, config.tasks())
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(torch.random.get_rng_state(), state)
    clean = res[res.kind == "clean"]
    assert set(clean.architecture) == set(m.ARCHITECTURES)
    assert set(clean.rule) == {*m.RULES, m.SOURCE_RULE}
    assert set(clean[clean.study == "locality"].rule) == set(m.RULES)  # no transfer source: not attacked
    assert set(res[res.kind == "attack"].study) == {"recurrence"}
    assert clean.accuracy.between(0, 1).all() and set(clean.epoch) == {0, 1}
    # the locality study's recurrent nets have its two layers of 12
    assert set(clean[(clean.study == "locality") & (clean.architecture == "recurrent")].hidden) == {12}
    att = res[res.kind == "attack"]
    assert set(att.attack) == set(m.ATTACKS) and set(att.source) == {"white-box", "transfer-same", "transfer-other"}
    for _, g in att[att.eps == 0].groupby(["architecture", "rule"]):
        # ε = 0: every attack and source reports the same clean accuracy of that net on the attacked subset
        assert g.accuracy.nunique() == 1 and 0 <= g.accuracy.iloc[0] <= 1
    assert len(att) == 3 * len(m.RULES) * len(config.eps) * (4 + 2)  # archs × rules × ε × (white-box + 2 transfers)
    cka = res[res.kind == "cka"]
    assert cka.cka.between(0, 1 + 1e-12).all()
    tab = m.table(res)
    assert {"accuracy", "AUC pgd white-box", "AUC square white-box"} <= set(tab.columns)
    tg = m.targets(res)
    assert list(tg.columns) == ["target", "measured", "tolerance", "held"] and len(tg) >= 2 * 11
    d = m.delta_rec(res)
    assert set(d.source) == {"white-box", "transfer-same", "transfer-other"} and d.ci_low.isna().all()
    assert isinstance(m.verdicts(res), pd.DataFrame)
    reports = m.reports(res)
    assert set(reports) == {"delta_rec", "verdicts"}
    assert set(reports["delta_rec"].baseline) == {"feedforward", "feedforward-matched"}
    assert set(reports["verdicts"].verdict) == {"undetermined (fewer than 2 replicates)"}
    paths = m.plot(res, tmp_path / "snn.png")
    assert len(paths) == 3 and all(p.exists() for p in paths)
    # results without attacks (the locality study alone, as stored by its tasks) summarise too
    alone = res[res.study == "locality"].dropna(axis=1, how="all")
    assert "AUC pgd white-box" not in m.table(alone) and m.delta_rec(alone).empty
    assert len(m.targets(alone)) >= 11 and len(m.plot(alone, tmp_path / "locality.png")) == 1


def test_an_interrupted_task_resumes_after_its_finished_trainings(tmp_path, monkeypatch):
    """Each finished (architecture, rule) training is kept in the task's folder: killed during a later training,
    the rerun trains only what was left and stores the uninterrupted numbers."""
    task = m.Config.smoke().tasks()[1]  # the locality study: trained, not attacked
    whole = sweep.run(m.evaluate, [task]).drop(columns=["seconds", "key"])
    real_train, calls = m._train, []

    def dying_train(*args, **kwargs):
        calls.append(args[2])
        if len(calls) == 3:
            raise KeyboardInterrupt  # killed during the third training
        return real_train(*args, **kwargs)

    monkeypatch.setattr(m, "_train", dying_train)
    store = Store(tmp_path)
    threads = torch.get_num_threads()
    try:
        with pytest.raises(KeyboardInterrupt):
            sweep.run(m.evaluate, [task], store=store)
        calls.clear()
        monkeypatch.setattr(m, "_train", lambda *a, **k: (calls.append(a[2]), real_train(*a, **k))[1])
        resumed = sweep.run(m.evaluate, [task], store=store).drop(columns=["seconds", "key"])
    finally:
        torch.set_num_threads(threads)
    n_trainings = len(m.ARCHITECTURES) * len(task.config.rules)
    assert len(calls) == n_trainings - 2  # the two finished trainings were not redone
    pd.testing.assert_frame_equal(resumed, whole, check_dtype=False)


def test_a_saved_training_is_resumed_only_by_its_own_task_and_network(tmp_path):
    """A finished training kept in the task folder carries the fingerprint of its task (every grid field, study,
    replicate) and network: the same task loads it (weights, rows, spike counts); another replicate's, another
    config's (same study and replicate, another learning rate or epoch count), another network's, or a file with no
    owner, is trained again rather than resumed."""
    from wrec import checkpoint

    task = m.Config.smoke().tasks()[1]
    others = {"replicate": dataclasses.replace(task, replicate=task.replicate + 1),
              "lr": dataclasses.replace(task, config=dataclasses.replace(task.config, lr=1e-3)),
              "epochs": dataclasses.replace(task, config=dataclasses.replace(task.config, epochs=2)),
              "study": dataclasses.replace(task, study="recurrence")}

    def fn(task):
        net = m._build(task, "recurrent", 64, torch.Generator().manual_seed(0))
        m._save_trained(task, net, "recurrent", "bptt", [{"epoch": 0, "accuracy": 0.5}], [np.arange(3.0)])
        fresh = m._build(task, "recurrent", 64, torch.Generator().manual_seed(1))
        rows, history = m._load_trained(task, fresh, "recurrent", "bptt")
        same = all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), fresh.state_dict().values(),
                                                     strict=True))
        refused = {name: m._load_trained(other, fresh, "recurrent", "bptt") is None for name, other in others.items()}
        path = sweep.task_dir() / "trained-recurrent-bptt.npz"
        path.rename(path.with_name("trained-recurrent-eprop.npz"))  # the file of another network of this task
        refused["network"] = m._load_trained(task, fresh, "recurrent", "eprop") is None
        path.with_name("trained-recurrent-eprop.npz").rename(path)
        arrays, meta = checkpoint.load(path)
        checkpoint.save(path, arrays, {k: v for k, v in meta.items() if k != "identity"})  # written without owner
        refused["ownerless"] = m._load_trained(task, fresh, "recurrent", "bptt") is None
        own = same and rows == [{"epoch": 0, "accuracy": 0.5}] and history[0].tolist() == [0.0, 1.0, 2.0]
        return pd.DataFrame([{"own": own, **refused}])

    out = sweep.run(fn, [task], store=Store(tmp_path))
    assert set(out.columns) >= {"own", *others, "network", "ownerless"}
    assert out[["own", *others, "network", "ownerless"]].all(axis=None)
