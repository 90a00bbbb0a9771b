"""Spiking networks trained by rules of varying locality, with and without explicit recurrence: clean accuracy,
representational similarity, and robustness to gradient and non-gradient attacks (Lin, Lu, Bal & Sengupta,
arXiv 2402.01782; counter-evidence Yin et al., arXiv 2403.16674).

One sweep task (``Task``) is one (study, dataset, encoding, replicate); the ``recurrence`` study uses
``hidden_sizes`` (default one layer of 100) and is attacked, the ``locality`` study uses ``locality_hidden_sizes``
(default 100, 100: local errors differ from e-prop only with two layers) and gives clean accuracy and CKA. Inside a
task, for every architecture — ``feedforward`` (no W_rec), ``recurrent``, ``feedforward-matched`` (uniform width
chosen so the trained parameter count, autapses excluded, matches the recurrent net) — every rule (BPTT,
symmetric e-prop, random-B e-prop, local errors, feedback alignment, direct feedback alignment) trains from the
same initial weights (so rules are compared paired), plus, where attacked, one BPTT net from an independent
initialisation, the transfer source. Adam, one optimiser for every rule; one torch thread per task.
e-prop and local errors train through their autograd implementation by default (``online=False``: the same
gradients as the online traces, tested to 1e-10, and 3–4× faster on a CPU at T = 25).

Recorded (tidy rows, ``kind`` column): ``clean`` test accuracy per epoch; ``cka``: linear CKA (Kornblith et al.
2019) between the rules' top-layer spike counts on the test set per epoch, and against the untrained net;
``attack``: accuracy under L∞ attacks on the analog intensities before the encoding, for every ε —
FGSM, PGD (10 steps of ε/4, random start), Square (margin loss, score-based), GN (Gaussian noise of std ε),
white-box through the attacked net's surrogate, and PGD transferred from the independent BPTT net of the same
and of the other architecture. Attacks run on digits in the ``recurrence`` study, for each encoding of
``attack_encodings``. Direct coding is deterministic. Rate coding is attacked with its noise frozen (one uniform
field u (T, 1, 64) per task for every example and query: spikes 1[u < x], so the attacked function is
deterministic and Square's queries are comparable — not EOT), and rate and latency pass straight-through
gradients to the intensities (``encode(..., straight_through=True)``); ε = 0 rows give the accuracy under that
frozen noise. The spike-pattern task gives clean accuracy and CKA.

``table`` gives mean clean accuracy, the normalised AUC of robust accuracy over ε, and Δ_rec = AUC(recurrent) −
AUC(feed-forward) (also against the parameter-matched net) with a 95 % bootstrap CI over replicates, and a
gradient-masking verdict: white-box says "recurrent more robust" but transfer or Square do not.
torchattacks draws from torch's global RNG; each attack runs inside ``torch.random.fork_rng`` seeded from the
task's coordinates, so the caller's RNG state is untouched and results are reproducible.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from wrec import _checks, checkpoint, sweep
from wrec.experiments._stats import bootstrap_ci, target_row
from wrec.experiments._torch import torch_generator, torch_threads
from wrec.store import legacy_key

if TYPE_CHECKING:  # torch is imported inside the functions: wrec.experiments must import without it
    import torch
    from torch import Tensor, nn

    from wrec.spiking.rsnn import RSNN

RULES = ("bptt", "eprop", "eprop-random", "local", "fa", "dfa")  # wrec.spiking.rules.RULES (a test checks they agree)
ENCODINGS = ("direct", "rate", "latency")  # wrec.tasks.spikes.ENCODINGS
#: "timing": spike patterns whose templates fire once per channel (only spike timing tells the classes apart);
#: "patterns": Poisson templates (spike counts alone solve them: every rule does)
DATASETS = ("digits", "timing", "patterns")
STUDIES = ("recurrence", "locality")
ARCHITECTURES = ("feedforward", "recurrent", "feedforward-matched")
ATTACKS = ("fgsm", "pgd", "square", "gn")
SOURCE_RULE = "bptt-independent"


@dataclass(frozen=True)
class Config:
    """The grid; ``tasks()`` makes one ``Task`` per (study, dataset, encoding, replicate)."""

    datasets: tuple[str, ...] = ("digits", "timing")
    encodings: tuple[str, ...] = ENCODINGS
    rules: tuple[str, ...] = RULES
    architectures: tuple[str, ...] = ARCHITECTURES
    hidden_sizes: tuple[int, ...] = (100,)
    locality_hidden_sizes: tuple[int, ...] = (100, 100)
    replicates: int = 5
    epochs: int = 30
    batch: int = 64
    lr: float = 2e-3
    steps: int = 25
    pattern_train: int = 1000
    pattern_test: int = 500
    eps: tuple[float, ...] = (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3)
    attacks: tuple[str, ...] = ATTACKS
    attack_points: int = 540
    square_queries: int = 500
    transfer: bool = True
    attack_encodings: tuple[str, ...] = ENCODINGS
    online: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        for name, allowed in (("datasets", DATASETS), ("encodings", ENCODINGS), ("rules", RULES),
                              ("architectures", ARCHITECTURES), ("attacks", ATTACKS),
                              ("attack_encodings", ENCODINGS)):
            values = getattr(self, name)
            if isinstance(values, str) or not values:
                raise ValueError(f"{name} must be a non-empty tuple, got {values!r}")
            for v in values:
                if v not in allowed:
                    raise ValueError(f"{name}: unknown {name[:-1]} {v!r}; expected one of {allowed}")
        if not self.hidden_sizes:
            raise ValueError("hidden_sizes is empty")
        for h in (*self.hidden_sizes, *self.locality_hidden_sizes):
            _checks.integer(h, "hidden_sizes", low=1)
        for eps in self.eps:
            _checks.real(eps, "eps", low=0.0, high=1.0)
        _checks.integer(self.replicates, "replicates", low=1)
        _checks.integer(self.epochs, "epochs", low=1)
        _checks.integer(self.batch, "batch", low=1)
        _checks.integer(self.steps, "steps", low=1)
        _checks.integer(self.pattern_train, "pattern_train", low=1)
        _checks.integer(self.pattern_test, "pattern_test", low=1)
        _checks.integer(self.attack_points, "attack_points", low=1)
        _checks.integer(self.square_queries, "square_queries", low=1)
        _checks.real(self.lr, "lr", low=0.0, low_open=True)

    @classmethod
    def quick(cls, **overrides: Any) -> Config:
        """Digits with direct coding only, 2 replicates, 6 epochs, ε ∈ {0, 0.05, 0.1, 0.2}, attacks on 200 test
        points with 100 Square queries."""
        return cls(**{"datasets": ("digits",), "encodings": ("direct",), "replicates": 2, "epochs": 6,
                      "eps": (0.0, 0.05, 0.1, 0.2), "attack_points": 200, "square_queries": 100, **overrides})

    @classmethod
    def smoke(cls, **overrides: Any) -> Config:
        """A seconds-long run for CI: one replicate, H = 16, 1 epoch, T = 8, two ε, 48 attacked points."""
        return cls.quick(**{"replicates": 1, "epochs": 1, "hidden_sizes": (16,), "locality_hidden_sizes": (12, 12),
                            "steps": 8, "eps": (0.0, 0.1),
                            "attack_points": 48, "square_queries": 5, **overrides})

    def tasks(self) -> list[Task]:
        """One task per (study, dataset, encoding, replicate): ``recurrence`` with ``hidden_sizes`` (attacked on
        digits, ``attack_encodings``) and, unless ``locality_hidden_sizes`` is empty, ``locality`` with those
        layers (clean accuracy and CKA only: local errors differ from e-prop only with two or more layers)."""
        out: list[Task] = []
        studies = STUDIES if self.locality_hidden_sizes else STUDIES[:1]
        for study in studies:
            for dataset in self.datasets:
                # the spike patterns need no encoding: their task keeps the grid's first one, unused
                for enc in (self.encodings if dataset == "digits" else self.encodings[:1]):
                    point = replace(self, datasets=(dataset,), encodings=(enc,))
                    out.extend(Task(point, study, r) for r in range(self.replicates))
        # digits with direct coding first (the attacked comparison and the clean-accuracy targets): an interrupted
        # full run has its headline results first; the order does not change any task's numbers
        return sorted(out, key=lambda t: (t.dataset, t.config.encodings[0]) != ("digits", "direct"))


@dataclass(frozen=True)
class Task:
    """One sweep task: the ``study`` ('recurrence' or 'locality') of one dataset and encoding, ``config`` being the
    grid narrowed to them (the spike patterns keep the grid's first encoding, which they do not use), on
    ``replicate``'s initial weights, batches and encoding noise."""

    config: Config
    study: str
    replicate: int

    def __post_init__(self) -> None:
        if self.study not in STUDIES:
            raise ValueError(f"study must be one of {STUDIES}, got {self.study!r}")
        _checks.integer(self.replicate, "replicate", low=0)
        if len(self.config.datasets) != 1 or len(self.config.encodings) != 1:
            raise ValueError("a task's config holds one dataset and one encoding, got datasets="
                             f"{self.config.datasets} and encodings={self.config.encodings}")
        if not self.hidden_sizes:
            raise ValueError(f"the {self.study} study needs hidden layers, got none")

    @property
    def dataset(self) -> str:
        return self.config.datasets[0]

    @property
    def encoding(self) -> str:
        """The digits' encoding, or 'spikes' for the spike patterns (already spike trains)."""
        return self.config.encodings[0] if self.dataset == "digits" else "spikes"

    @property
    def hidden_sizes(self) -> tuple[int, ...]:
        """The recurrent net's layers: ``hidden_sizes`` in the recurrence study, ``locality_hidden_sizes`` in the
        locality study."""
        return self.config.hidden_sizes if self.study == "recurrence" else self.config.locality_hidden_sizes

    @property
    def attacked(self) -> bool:
        """Whether the nets are attacked: the recurrence study on digits, for the ``attack_encodings``."""
        return (self.study == "recurrence" and self.dataset == "digits"
                and self.encoding in self.config.attack_encodings)

    def legacy_key(self) -> str:
        """The key of this task's result when the task was the narrowed ``Config`` itself with ``replicate`` and
        ``study`` fields (see ``store.legacy_config_key``): such results are re-keyed, not recomputed."""
        return legacy_key(type(self.config).__qualname__, {**dataclasses.asdict(self.config),
                                                           "replicate": self.replicate, "study": self.study})


# ---------------------------------------------------------------------------------------------------------------
# Measures.


def linear_cka(A: Tensor | np.ndarray, B: Tensor | np.ndarray) -> float:
    """Linear CKA (Kornblith et al., ICML 2019): ‖B̃ᵀÃ‖²_F / (‖ÃᵀÃ‖_F ‖B̃ᵀB̃‖_F), Ã, B̃ column-centred.

    Shape: A ``(n, p)``, B ``(n, q)`` (same n examples); returns a float in [0, 1] (0 if either is constant).
    """
    a = _checks.array(A.detach().cpu().numpy() if hasattr(A, "detach") else A, "A", ndim=2)
    b = _checks.array(B.detach().cpu().numpy() if hasattr(B, "detach") else B, "B", ndim=2)
    if a.shape[0] != b.shape[0] or a.shape[0] < 2:
        raise ValueError(f"A and B must have the same number (>= 2) of rows, got {a.shape} and {b.shape}")
    a = a - a.mean(0)
    b = b - b.mean(0)
    den = np.linalg.norm(a.T @ a) * np.linalg.norm(b.T @ b)
    return 0.0 if den == 0 else float(np.linalg.norm(b.T @ a) ** 2 / den)


def normalised_auc(eps: np.ndarray, accuracy: np.ndarray) -> float:
    """Trapezoid area under accuracy(ε) divided by the ε range: 1 for a net unaffected and always right."""
    order = np.argsort(eps)
    e, a = np.asarray(eps, float)[order], np.asarray(accuracy, float)[order]
    if e[-1] == e[0]:
        return float(a.mean())
    return float(np.sum((a[1:] + a[:-1]) / 2 * np.diff(e)) / (e[-1] - e[0]))


def count_parameters(net: RSNN) -> int:
    """Trained parameters, the masked autapses of W_rec excluded."""
    n = sum(p.numel() for p in net.parameters())
    return n - (sum(net.hidden_sizes) if net.recurrent else 0)


def matched_width(input_size: int, hidden_sizes: tuple[int, ...], output_size: int) -> int:
    """Uniform width H' of a feed-forward net with as many trained parameters as the recurrent one."""
    sizes = (input_size, *hidden_sizes)
    target = sum(n * h + h * (h - 1) for n, h in itertools.pairwise(sizes)) + output_size * (sizes[-1] + 1)
    L = len(hidden_sizes)

    def count(h: int) -> int:
        return input_size * h + (L - 1) * h * h + output_size * h + output_size

    h = 1
    while count(h + 1) <= target:
        h += 1
    return h if target - count(h) <= count(h + 1) - target else h + 1


# ---------------------------------------------------------------------------------------------------------------
# Data and training.


@dataclass(frozen=True)
class _Data:
    """Training inputs (intensities ``(n, N)`` or spikes ``(T, n, C)``), labels, test set likewise, and the test
    set's input trains ``(T, n_test, N)``, encoded once (so every net sees the same encoding noise)."""

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    intensities: bool
    test_inputs: Tensor


def _data(task: Task, generator: torch.Generator) -> _Data:
    import torch

    from wrec.tasks.spikes import digits, encode, spike_patterns

    config = task.config
    if task.dataset == "digits":
        d = digits(config.seed)
        f32 = torch.float32
        x_test = torch.tensor(d.x_test, dtype=f32)
        test_inputs = encode(x_test, task.encoding, config.steps, generator=generator).contiguous()
        return _Data(torch.tensor(d.x_train, dtype=f32), torch.tensor(d.y_train), x_test, torch.tensor(d.y_test),
                     True, test_inputs)
    templates = "timing" if task.dataset == "timing" else "poisson"
    train = spike_patterns(config.pattern_train, seed=2 * config.seed, template_seed=config.seed, templates=templates)
    test = spike_patterns(config.pattern_test, seed=2 * config.seed + 1, template_seed=config.seed,
                          templates=templates)
    return _Data(train.x, train.y, test.x, test.y, False, test.x)


def _inputs(config: Config, data: _Data, x: Tensor, generator: torch.Generator | None) -> Tensor:
    """(T, B, N) input for a batch: encoded intensities, or a slice of the spike patterns (already (T, B, C))."""
    from wrec.tasks.spikes import encode

    if data.intensities:
        return encode(x, config.encodings[0], config.steps, generator=generator)
    return x


def _batch(data: _Data, idx: Tensor) -> Tensor:
    return data.x_train[idx] if data.intensities else data.x_train[:, idx]


def _test_forward(net: RSNN, data: _Data) -> tuple[float, np.ndarray]:
    """(test accuracy, top-layer spike counts ``(n_test, H)``)."""
    import torch

    n = len(data.y_test)
    correct, counts = 0, []
    with torch.no_grad():
        for start in range(0, n, 256):
            idx = torch.arange(start, min(n, start + 256))
            z = net.hidden(data.test_inputs[:, idx])[-1]
            logits = net.readout(z).mean(0)
            correct += int((logits.argmax(1) == data.y_test[idx]).sum())
            counts.append(z.sum(0).numpy())
    return correct / n, np.concatenate(counts)


def _build(task: Task, architecture: str, n_in: int, init: torch.Generator) -> RSNN:
    from wrec.spiking.rsnn import RSNN, LIFParameters

    hidden = task.hidden_sizes
    if architecture == "feedforward-matched":
        hidden = (matched_width(n_in, hidden, 10),) * len(hidden)
    return RSNN(n_in, hidden, 10, recurrent=architecture == "recurrent", params=LIFParameters(), generator=init)


def _train(config: Config, net: RSNN, rule_name: str, data: _Data, coords: tuple[str | int, ...],
           on_epoch: Callable[[int, RSNN], None]) -> None:
    """Adam on the rule's gradients; ``on_epoch(epoch, net)`` after each epoch (epoch 0: before training). Its
    random streams (feedback matrices, batch order, encoding noise) come from the task's ``coords``.

    A non-finite loss stops the task with a FloatingPointError naming the rule, architecture and epoch (finished
    tasks of the sweep are kept)."""
    import torch

    from wrec.spiking.rules import make_rule

    rule = make_rule(rule_name, seed=int(sweep.task_rng(config.seed, "feedback", *coords).integers(2**31)),
                     online=config.online)
    opt = torch.optim.Adam(net.parameters(), lr=config.lr)
    order = torch_generator(sweep.task_rng(config.seed, "batches", *coords))
    noise = torch_generator(sweep.task_rng(config.seed, "encoding", *coords))
    n = len(data.y_train)
    on_epoch(0, net)
    for epoch in range(1, config.epochs + 1):
        perm = torch.randperm(n, generator=order)
        for start in range(0, n, config.batch):
            idx = perm[start:start + config.batch]
            opt.zero_grad(set_to_none=True)
            loss = rule.compute_grads(net, _inputs(config, data, _batch(data, idx), noise), data.y_train[idx])
            if not math.isfinite(float(loss)):
                raise FloatingPointError(f"snn-locality: the loss of rule {rule_name!r} on {coords} became non-finite "
                                         f"({float(loss)}) in epoch {epoch}; training stopped")
            opt.step()
        on_epoch(epoch, net)


# ---------------------------------------------------------------------------------------------------------------
# Attacks.


def pixel_classifier(net: RSNN, steps: int, encoding: str = "direct", noise: Tensor | None = None) -> nn.Module:
    """A module taking images ``(N, 1, 8, 8)`` (or ``(N, 64)``) in [0, 1] to the logits of ``net`` on their
    ``encoding`` over ``steps`` steps: what the attacks see. Rate coding needs frozen uniform ``noise``
    (broadcastable to ``(steps, N, 64)``), so the attacked function is deterministic; rate and latency pass
    straight-through gradients to the intensities (see ``wrec.tasks.spikes.encode``)."""
    from torch import nn

    from wrec.tasks.spikes import encode

    if encoding == "rate" and noise is None:
        raise ValueError("pixel_classifier: rate coding needs frozen noise (uniform draws of shape (steps, 1, 64))")

    class PixelClassifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, images: Tensor) -> Tensor:
            return self.net.logits(encode(images.reshape(len(images), -1), encoding, steps, noise=noise,
                                          straight_through=True))

    return PixelClassifier()


def make_attack(name: str, model: nn.Module, eps: float, *, square_queries: int = 500):
    """A torchattacks 3.5.1 attack on the analog intensities at L∞ budget (or Gaussian std) ``eps``: FGSM, PGD
    (10 steps of ε/4, random start), Square (margin loss, score-based black box) or GN (Gaussian noise)."""
    import torchattacks

    _checks.real(eps, "eps", low=0.0, high=1.0)
    if name == "fgsm":
        return torchattacks.FGSM(model, eps=eps)
    if name == "pgd":
        return torchattacks.PGD(model, eps=eps, alpha=eps / 4, steps=10, random_start=True)
    if name == "square":
        return torchattacks.Square(model, norm="Linf", eps=eps, n_queries=square_queries, n_restarts=1,
                                   loss="margin", seed=0)
    if name == "gn":
        return torchattacks.GN(model, std=eps)
    raise ValueError(f"attack must be one of {ATTACKS}, got {name!r}")


def _attack(name: str, model: nn.Module, eps: float, images: Tensor, labels: Tensor, seed: int,
            square_queries: int) -> Tensor:
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # torchattacks draws from the global RNG; fork_rng restores the caller's
        return make_attack(name, model, eps, square_queries=square_queries)(images, labels)


def _accuracy(model: nn.Module, images: Tensor, labels: Tensor) -> float:
    import torch

    with torch.no_grad():
        return float((model(images).argmax(1) == labels).double().mean())


# ---------------------------------------------------------------------------------------------------------------
# The task.


def evaluate(task: Task) -> pd.DataFrame:
    """Train every (architecture, rule) of one (study, dataset, encoding, replicate); tidy rows as in the module
    doc. Runs with one torch thread (tasks run side by side in the sweep's pool) and restores the caller's count."""
    with torch_threads(1):
        return _evaluate(task)


def _evaluate(task: Task) -> pd.DataFrame:
    config, dataset, enc, rep = task.config, task.dataset, task.encoding, task.replicate
    coords = (task.study, dataset, enc, rep)
    data = _data(task, torch_generator(sweep.task_rng(config.seed, "test-encoding", *coords)))
    n_in = data.x_train.shape[-1]
    rows: list[dict[str, Any]] = []
    nets: dict[tuple[str, str], RSNN] = {}
    for arch in config.architectures:
        reps: dict[str, list[np.ndarray]] = {}
        init_state = None
        for rule in (*config.rules, *([SOURCE_RULE] if task.attacked and config.transfer else [])):
            independent = rule == SOURCE_RULE
            init = torch_generator(sweep.task_rng(config.seed, "init", *coords, arch, "independent" if independent
                                                   else "shared"))
            net = _build(task, arch, n_in, init)
            if not independent:  # every rule starts from the same weights
                if init_state is None:
                    init_state = {k: v.clone() for k, v in net.state_dict().items()}
                net.load_state_dict(init_state)
            saved = _load_trained(task, net, arch, rule)
            if saved is not None:  # trained before this task was interrupted
                rows.extend(saved[0])
                reps[rule] = saved[1]
                nets[(arch, rule)] = net
                continue
            start = time.perf_counter()
            history = reps.setdefault(rule, [])
            first_row = len(rows)

            def on_epoch(epoch: int, net: RSNN, arch=arch, rule=rule, history=history, start=start) -> None:
                acc, counts = _test_forward(net, data)
                history.append(counts)
                rows.append({"kind": "clean", "architecture": arch, "rule": rule, "epoch": epoch, "accuracy": acc,
                             "hidden": net.hidden_sizes[-1], "params": count_parameters(net),
                             "seconds": time.perf_counter() - start})

            _train(config, net, "bptt" if independent else rule, data, (*coords, arch, rule), on_epoch)
            nets[(arch, rule)] = net
            _save_trained(task, net, arch, rule, rows[first_row:], history)
        rows.extend(_cka_rows(config, arch, reps))
    if task.attacked:
        rows += _robustness(config, data, nets, coords)
    return pd.DataFrame(rows).assign(study=task.study, dataset=dataset, encoding=enc, replicate=rep)


def _cka_rows(config: Config, arch: str, reps: dict[str, list[np.ndarray]]) -> list[dict[str, Any]]:
    """Linear CKA between the top-layer test spike counts ``reps[rule][epoch]`` of every pair of the config's rules
    trained in one architecture, and of each rule against its untrained net (epoch 0), at every epoch."""
    trained = [r for r in config.rules if r in reps]
    rows: list[dict[str, Any]] = []
    for epoch in range(config.epochs + 1):
        for i, ra in enumerate(trained):
            for rb in trained[i + 1:]:
                rows.append({"kind": "cka", "architecture": arch, "rule": ra, "rule_b": rb, "epoch": epoch,
                             "cka": linear_cka(reps[ra][epoch], reps[rb][epoch])})
            rows.append({"kind": "cka", "architecture": arch, "rule": ra, "rule_b": "untrained", "epoch": epoch,
                         "cka": linear_cka(reps[ra][epoch], reps[ra][0])})
    return rows


def _trained_path(arch: str, rule: str) -> Path | None:
    folder = sweep.task_dir()
    return None if folder is None else folder / f"trained-{arch}-{rule}.npz"


def _identity(task: Task, arch: str, rule: str) -> dict[str, str]:
    """Whose training a kept file is, as ``wrec.dynamics.run`` records a checkpoint's run: the fingerprints
    (``wrec.checkpoint.fingerprint``) of the task (every grid field, the study and the replicate) and of the
    network trained in it (architecture, rule)."""
    return {"task": checkpoint.fingerprint(task), "network": checkpoint.fingerprint(arch, rule)}


def _save_trained(task: Task, net: RSNN, arch: str, rule: str, rows: list[dict[str, Any]],
                  history: list[np.ndarray]) -> None:
    """Keep one finished training of a sweep task durably in its folder (weights, its rows, its per-epoch spike
    counts, and whose it is), so an interrupted task resumes after its last finished (architecture, rule)
    instead of from scratch."""
    path = _trained_path(arch, rule)
    if path is None:
        return
    arrays = {f"state.{k}": v.detach().cpu().numpy() for k, v in net.state_dict().items()}
    arrays |= {f"history.{i}": np.asarray(h) for i, h in enumerate(history)}
    checkpoint.save(path, arrays, {"rows": rows, "epochs": len(history), "identity": _identity(task, arch, rule)})


def _load_trained(task: Task, net: RSNN, arch: str,
                  rule: str) -> tuple[list[dict[str, Any]], list[np.ndarray]] | None:
    """The rows and spike counts of a training saved by ``_save_trained`` for this very task and network, its
    weights loaded into ``net``; None when there is none, or the file is another task's or another config's (or
    records no owner): that network is trained again and the file overwritten."""
    import torch

    saved = checkpoint.load(_trained_path(arch, rule))
    if saved is None or saved[1].get("identity") != _identity(task, arch, rule):
        return None
    arrays, meta = saved
    net.load_state_dict({k.removeprefix("state."): torch.from_numpy(v) for k, v in arrays.items()
                         if k.startswith("state.")})
    return meta["rows"], [arrays[f"history.{i}"] for i in range(meta["epochs"])]


def _robustness(config: Config, data: _Data, nets: dict, coords: tuple) -> list[dict]:
    n = min(config.attack_points, len(data.y_test))
    images, labels = data.x_test[:n].reshape(n, 1, 8, 8), data.y_test[:n]
    models = _pixel_classifiers(config, nets, coords, images[0].numel())
    crafted: dict[tuple[str, float], Tensor] = {}

    def seed_of(*c) -> int:
        return int(sweep.task_rng(config.seed, "attack", *coords, *c).integers(2**31))

    def transferred(src_arch: str, eps: float) -> Tensor:
        """PGD images crafted on the independent BPTT net of ``src_arch``, once per (source, ε): every target
        network is attacked with the same ones."""
        if (src_arch, eps) not in crafted:
            crafted[(src_arch, eps)] = _attack("pgd", models[(src_arch, SOURCE_RULE)], eps, images, labels,
                                               seed_of(src_arch, "transfer", eps), 1)
        return crafted[(src_arch, eps)]

    rows = []
    for (arch, rule), model in models.items():
        if rule == SOURCE_RULE:
            continue
        clean = _accuracy(model, images, labels)
        for eps in config.eps:
            for attack in config.attacks:
                if eps == 0:
                    acc = clean
                else:
                    adv = _attack(attack, model, eps, images, labels, seed_of(arch, rule, attack, eps),
                                  config.square_queries)
                    acc = _accuracy(model, adv, labels)
                rows.append({"kind": "attack", "architecture": arch, "rule": rule, "attack": attack,
                             "source": "white-box", "eps": eps, "accuracy": acc})
            for label, src_arch in _transfer_sources(config, models, arch):
                acc = clean if eps == 0 else _accuracy(model, transferred(src_arch, eps), labels)
                rows.append({"kind": "attack", "architecture": arch, "rule": rule, "attack": "pgd", "source": label,
                             "eps": eps, "accuracy": acc})
    return rows


def _pixel_classifiers(config: Config, nets: dict[tuple[str, str], RSNN], coords: tuple,
                       pixels: int) -> dict[tuple[str, str], nn.Module]:
    """Every trained net as a classifier of analog intensities (eval mode), with the task's frozen noise field
    under rate coding: one draw, the same for every example and query."""
    import torch

    encoding = config.encodings[0]
    noise = None
    if encoding == "rate":
        noise = torch.rand(config.steps, 1, pixels,
                           generator=torch_generator(sweep.task_rng(config.seed, "attack-noise", *coords)))
    return {key: pixel_classifier(net, config.steps, encoding, noise).eval() for key, net in nets.items()}


_OTHER_ARCHITECTURE = {"feedforward": "recurrent", "recurrent": "feedforward", "feedforward-matched": "recurrent"}


def _transfer_sources(config: Config, models: dict[tuple[str, str], nn.Module], arch: str) -> list[tuple[str, str]]:
    """(source label, architecture) of the transfer attacks on a net of ``arch``: the independent BPTT net of the
    same architecture and of the other one, where trained; none without ``config.transfer``."""
    if not config.transfer:
        return []
    sources = (("transfer-same", arch), ("transfer-other", _OTHER_ARCHITECTURE[arch]))
    return [(label, src) for label, src in sources if (src, SOURCE_RULE) in models]


# ---------------------------------------------------------------------------------------------------------------
# Summaries.


def _final_clean(results: pd.DataFrame) -> pd.DataFrame:
    clean = results[results.kind == "clean"]
    last = clean.groupby(["study", "dataset", "encoding", "replicate", "architecture", "rule"]).epoch.transform("max")
    return clean[clean.epoch == last]


def auc_table(results: pd.DataFrame) -> pd.DataFrame:
    """Normalised AUC of robust accuracy over ε: one row per (replicate, architecture, rule, attack, source)."""
    keys = ["dataset", "encoding", "replicate", "architecture", "rule", "attack", "source"]
    if "attack" not in results or not (results.kind == "attack").any():  # e.g. only the locality study
        return pd.DataFrame(columns=[*keys, "auc"])
    att = results[results.kind == "attack"]
    rows = [(*point, normalised_auc(g.eps.to_numpy(), g.accuracy.to_numpy())) for point, g in att.groupby(keys)]
    return pd.DataFrame(rows, columns=[*keys, "auc"])


def delta_rec(results: pd.DataFrame, baseline: str = "feedforward") -> pd.DataFrame:
    """Δ_rec = AUC(recurrent) − AUC(``baseline``) per (encoding, rule, attack, source): mean over replicates
    (paired) and its 95 % bootstrap CI."""
    auc = auc_table(results)
    if auc.empty:
        return pd.DataFrame()
    keys = ["encoding", "rule", "attack", "source"]
    wide = auc.pivot_table(index=[*keys, "replicate"], columns="architecture", values="auc")
    if "recurrent" not in wide or baseline not in wide:
        return pd.DataFrame()
    diff = (wide["recurrent"] - wide[baseline]).rename("delta").dropna().reset_index()
    rows = []
    for (encoding, rule, attack, source), g in diff.groupby(keys):
        lo, hi = bootstrap_ci(g.delta.to_numpy())
        rows.append({"encoding": encoding, "rule": rule, "attack": attack, "source": source, "baseline": baseline,
                     "delta_rec": float(g.delta.mean()), "ci_low": lo, "ci_high": hi, "replicates": len(g)})
    return pd.DataFrame(rows)


def verdicts(results: pd.DataFrame, baseline: str = "feedforward") -> pd.DataFrame:
    """Per (encoding, rule), the gradient-masking test: a white-box gradient attack (FGSM or PGD) says
    "recurrent more robust" (Δ_rec's CI above 0); do PGD transferred from the independent nets (same and other
    architecture) and the gradient-free Square attack agree (their CIs above 0 too)? White-box yes and all of them
    yes: ``robust``; white-box yes but any of them no: ``gradient masking`` (robustness that only the surrogate's
    gradient sees); no white-box gain: ``no white-box gain``. ``more_robust_under`` / ``less_robust_under`` list
    the attacks whose CI lies above / below 0."""
    d = delta_rec(results, baseline)
    if d.empty:
        return pd.DataFrame()
    rows = []
    for (encoding, rule), g in d.groupby(["encoding", "rule"]):
        def sign(attack: str, source: str, g=g) -> int | None:
            m = g[(g.attack == attack) & (g.source == source)]
            if m.empty or not np.isfinite(m.ci_low.iloc[0]):
                return None
            return 1 if m.ci_low.iloc[0] > 0 else -1 if m.ci_high.iloc[0] < 0 else 0

        signs = {f"{a} white-box": sign(a, "white-box") for a in ATTACKS}
        signs |= {f"pgd {s}": sign("pgd", s) for s in ("transfer-same", "transfer-other")}
        white = [signs.get(f"{a} white-box") for a in ("fgsm", "pgd")]
        checks = [signs.get(k) for k in ("pgd transfer-same", "pgd transfer-other", "square white-box")]
        checks = [c for c in checks if c is not None]
        if all(w is None for w in white):
            verdict = "undetermined (fewer than 2 replicates)"
        elif 1 not in white:
            verdict = "no white-box gain"
        elif checks and all(c == 1 for c in checks):
            verdict = "robust"
        else:
            verdict = "gradient masking"
        rows.append({"encoding": encoding, "rule": rule, "baseline": baseline, "verdict": verdict,
                     "more_robust_under": ", ".join(k for k, v in signs.items() if v == 1),
                     "less_robust_under": ", ".join(k for k, v in signs.items() if v == -1)})
    return pd.DataFrame(rows)


def reports(results: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The tables beside ``table``: Δ_rec with CIs and the gradient-masking verdicts, against the plain and the
    parameter-matched feed-forward nets (``wrec run`` prints them and saves ``<name>.csv``)."""
    out = {}
    for name, fn in (("delta_rec", delta_rec), ("verdicts", verdicts)):
        parts = [fn(results, b) for b in ("feedforward", "feedforward-matched")]
        parts = [p for p in parts if not p.empty]
        if parts:
            out[name] = pd.concat(parts, ignore_index=True)
    return out


def table(results: pd.DataFrame) -> pd.DataFrame:
    """Mean (± sd) final clean accuracy per dataset, encoding, architecture and rule, with AUCs per attack."""
    final = _final_clean(results)
    out = (final.groupby(["study", "dataset", "encoding", "architecture", "rule"])
           .agg(accuracy=("accuracy", "mean"), accuracy_sd=("accuracy", "std"), replicates=("accuracy", "size"),
                params=("params", "first"), hidden=("hidden", "first")).reset_index())
    auc = auc_table(results)
    if not auc.empty:
        auc["column"] = "AUC " + auc.attack + " " + auc.source
        wide = auc.pivot_table(index=["dataset", "encoding", "architecture", "rule"], columns="column",
                               values="auc").reset_index().assign(study="recurrence")
        out = out.merge(wide, on=["study", "dataset", "encoding", "architecture", "rule"], how="left")
    return out


#: the orderings the rules' definitions predict (better, worse, slack): e-prop truncates BPTT's gradient, random B
#: replaces e-prop's symmetric feedback, local errors drop the error's path through the layers above
ORDERINGS = (("bptt", "eprop", 0.01), ("eprop", "eprop-random", 0.0), ("bptt", "local", 0.0))
#: reported beside them, not gated: neither rule is an approximation of the other
REPORTED_ORDERINGS = (("eprop-random", "local", 0.0),)


def targets(results: pd.DataFrame) -> pd.DataFrame:
    """The reproduction targets, per study (one layer: ``recurrence``; two: ``locality``): clean accuracy ≥ 0.93
    (BPTT, e-prop) and ≥ 0.85 (local) on digits (direct), per architecture; the orderings of ``ORDERINGS`` for the
    recurrent nets, mean accuracy over replicates, on digits and on the timing patterns (where counting spikes
    cannot solve the task), one row per pair — ``REPORTED_ORDERINGS`` reported beside them; CKA(BPTT, e-prop) >
    CKA(BPTT, untrained) at the last epoch. Δ_rec is reported by ``delta_rec``/``verdicts`` (no sign is gated)."""
    rows = []
    final = _final_clean(results)
    bounds = {"bptt": 0.93, "eprop": 0.93, "local": 0.85}
    for study, fs in final.groupby("study", sort=False):
        digits_direct = fs[(fs.dataset == "digits") & (fs.encoding == "direct")]
        for (arch, rule), g in digits_direct.groupby(["architecture", "rule"]):
            if rule in bounds:
                acc = float(g.accuracy.mean())
                rows.append(target_row(f"{study}: clean accuracy, digits direct, {arch}, {rule} (mean of {len(g)})",
                                       acc, f">= {bounds[rule]}", acc >= bounds[rule]))
        rows += _ordering_rows(str(study), fs)
        cka = results[(results.kind == "cka") & (results.rule == "bptt") & (results.study == study)]
        if not cka.empty:
            last = cka[cka.epoch == cka.epoch.max()]
            ep = last[last.rule_b == "eprop"].cka.mean()
            un = last[last.rule_b == "untrained"].cka.mean()
            if np.isfinite(ep) and np.isfinite(un):
                rows.append(target_row(f"{study}: CKA(BPTT, e-prop) > CKA(BPTT, untrained), last epoch",
                                       f"{ep:.3f} vs {un:.3f}", ">", ep > un))
    return pd.DataFrame(rows, columns=["target", "measured", "tolerance", "held"])


def _ordering_rows(study: str, final: pd.DataFrame) -> list[dict]:
    """One row per predicted pair (and per reported pair) and dataset: mean final accuracy of the recurrent nets
    (digits: every encoding's tasks)."""
    rows = []
    for dataset in DATASETS:
        sub = final[(final.dataset == dataset) & (final.architecture == "recurrent")]
        by_rule = sub.groupby("rule").accuracy.mean()
        for pairs, role in ((ORDERINGS, ""), (REPORTED_ORDERINGS, ", reported")):
            for better, worse, slack in pairs:
                if better in by_rule and worse in by_rule:
                    a, b = float(by_rule[better]), float(by_rule[worse])
                    rows.append(target_row(f"{study}: {better} >= {worse} on {dataset} (recurrent{role})",
                                           f"{a:.3f} vs {b:.3f}", f"within {slack:g}", a >= b - slack))
    return rows


_ARCH_STYLES = {"feedforward": "--", "recurrent": "-", "feedforward-matched": ":"}
_ARCH_COLORS = {"feedforward": "0.35", "recurrent": "#D55E00", "feedforward-matched": "#0072B2"}  # Okabe–Ito


def plot(results: pd.DataFrame, path: str | Path) -> list[Path]:
    """(a) robust accuracy vs ε per attack (white-box and transfer) and encoding, per architecture: mean over rules
    and replicates, the band spanning the rules' means; (b) Δ_rec with 95 % CIs per attack and rule; (c) CKA
    between rules vs epoch."""
    stem = Path(path).with_suffix("")
    out = []
    att = results[results.kind == "attack"]
    if not att.empty:
        out.append(_plot_robustness(att, Path(f"{stem}_robustness.png")))
        deltas = [(b, delta_rec(results, b)) for b in ("feedforward", "feedforward-matched")]
        deltas = [(b, d) for b, d in deltas if not d.empty]
        if deltas:
            out.append(_plot_delta_rec(deltas, Path(f"{stem}_delta_rec.png")))
    cka = results[(results.kind == "cka") & (results.rule == "bptt")]
    if not cka.empty:
        out.append(_plot_cka(cka, Path(f"{stem}_cka.png")))
    return out


def _plot_robustness(att: pd.DataFrame, p: Path) -> Path:
    """Robust accuracy vs ε, one panel per (encoding, attack and source), a line per architecture."""
    from wrec import plotting

    panels = [(a, "white-box") for a in ATTACKS if a in set(att.attack)] + [
        ("pgd", s) for s in ("transfer-same", "transfer-other") if s in set(att.source)]
    encodings = [e for e in ENCODINGS if e in set(att.encoding)]
    cells = [(e, a, s) for e in encodings for a, s in panels]
    cols = min(3, len(cells))
    rows = -(-len(cells) // cols)
    with plotting.figure(p, figsize=(plotting.PAGE, 1.9 * rows + 0.6)) as fig:
        axes = fig.subplots(rows, cols, sharey=True, squeeze=False)
        for ax in axes.flat[len(cells):]:
            ax.set_visible(False)
        for ax, (encoding, attack, source) in zip(axes.flat, cells, strict=False):
            sub = att[(att.attack == attack) & (att.source == source) & (att.encoding == encoding)]
            for arch, g in sub.groupby("architecture"):  # mean over rules and replicates, band: the rules
                per_rule = g.pivot_table(index="eps", columns="rule", values="accuracy")
                line, = ax.plot(per_rule.index, per_rule.mean(axis=1), _ARCH_STYLES.get(str(arch), "-"),
                                color=_ARCH_COLORS.get(str(arch)), lw=1.2, label=arch)
                ax.fill_between(per_rule.index, per_rule.min(axis=1), per_rule.max(axis=1),
                                color=line.get_color(), alpha=0.15, lw=0)
            ax.set_title(f"{attack}, {source}" + (f", {encoding}" if len(encodings) > 1 else ""))
            ax.set_xlabel("ε")
        for row in axes:
            row[0].set_ylabel("accuracy")
        if len(encodings) == 1:
            fig.suptitle(f"{encodings[0]} encoding: mean over rules (band: the rules' range)")
        plotting.legend_below(fig, ncols=4)
    return p


def _plot_delta_rec(deltas: list[tuple[str, pd.DataFrame]], p: Path) -> Path:
    """Δ_rec with its 95 % CI per (encoding, attack, source), a point per rule; one panel per baseline."""
    from wrec import plotting

    colors = dict(zip(RULES, plotting.OKABE_ITO, strict=False))
    with plotting.figure(p, figsize=(plotting.PAGE, 2.3 * len(deltas) + 0.4)) as fig:
        axes = fig.subplots(len(deltas), 1, squeeze=False)
        for ax, (baseline, d) in zip(axes[:, 0], deltas, strict=True):
            prefix = d.encoding.str.slice(0, 4) + "\n" if d.encoding.nunique() > 1 else ""
            d = d.assign(label=prefix + d.attack + "\n" + d.source.str.replace("transfer-", "tr-"))
            labels = list(dict.fromkeys(d.label))
            for j, (rule, g) in enumerate(d.groupby("rule")):
                x = np.array([labels.index(lab) for lab in g.label]) + 0.12 * (j - (len(RULES) - 1) / 2)
                err = np.vstack([g.delta_rec - g.ci_low, g.ci_high - g.delta_rec])
                ax.errorbar(x, g.delta_rec, yerr=np.nan_to_num(err), fmt="o", ms=3, color=colors.get(str(rule)),
                            label=rule)
            ax.axhline(0, color="k", lw=0.5)
            ax.set_xticks(range(len(labels)), labels)
            ax.set_ylabel(f"Δ_rec vs {baseline}\n(AUC, 95 % CI)")
        plotting.legend_below(fig, ncols=len(RULES))
    return p


def _plot_cka(cka: pd.DataFrame, p: Path) -> Path:
    """CKA between BPTT and each other rule (and the untrained net) vs epoch, one panel per study."""
    from matplotlib.lines import Line2D

    from wrec import plotting

    studies = [s for s in STUDIES if s in set(cka.study)]
    shades = dict(zip([*RULES, "untrained"], plotting.OKABE_ITO, strict=False))
    with plotting.figure(p, figsize=(plotting.PAGE if len(studies) > 1 else plotting.COLUMN, 2.9)) as fig:
        axes = fig.subplots(1, len(studies), squeeze=False)
        for ax, study in zip(axes[0], studies, strict=True):
            for (architecture, other), g in cka[cka.study == study].groupby(["architecture", "rule_b"]):
                m = g.groupby("epoch").cka.mean()
                ax.plot(m.index, m.values, _ARCH_STYLES.get(str(architecture), "-"), color=shades.get(str(other)),
                        lw=1)
            ax.set_title(f"{study} study")
            ax.set_xlabel("epoch")
        axes[0][0].set_ylabel("linear CKA (test spike counts)")
        # one entry per compared rule (colour) and per architecture (line style), not one per pair
        others = [r for r in shades if r in set(cka.rule_b)]
        archs = [a for a in _ARCH_STYLES if a in set(cka.architecture)]
        handles = [Line2D([], [], color=shades[r], lw=2) for r in others]
        handles += [Line2D([], [], color="0.3", ls=_ARCH_STYLES[a]) for a in archs]
        plotting.legend_below(fig, handles, [f"BPTT vs {r}" for r in others] + archs, ncols=4)
    return p
