"""Offline spiking data: sklearn's digits with three spike encodings, and a synthetic temporal spike-pattern task.

- ``digits``: the 1797 8×8 images shipped with scikit-learn, x/16 ∈ [0, 1], split 70/30 stratified by class.
- ``encode``: intensities ``(B, N)`` in [0, 1] -> an input train ``(T, B, N)``: ``"direct"`` (gain·x every step,
  deterministic and differentiable in x), ``"rate"`` (Bernoulli(p_max·x) per step), ``"latency"`` (one spike at step
  round((1 − x)(T − 1)) where x > 0.05).
- ``spike_patterns``: K frozen Poisson templates (``channels`` × T, rate per step) and noisy samples of them
  (each spike jittered by a uniform integer in [−jitter, jitter], deleted with probability ``deletion``, plus
  Bernoulli(``insertion``) spikes in every bin): a task where timing within the trial carries the class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from wrec import _checks

ENCODINGS = ("direct", "rate", "latency")


@dataclass(frozen=True)
class Split:
    """A train/test split. Shape: x ``(n, N)`` float64, y ``(n,)`` int64."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def digits(seed: int = 0, test_size: float = 0.3) -> Split:
    """sklearn ``load_digits`` scaled to [0, 1] (x/16), split ``1 − test_size`` / ``test_size`` stratified by class.

    ``seed`` fixes the split (``train_test_split(random_state=seed)``). Shape: x ``(n, 64)``.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    _checks.integer(seed, "seed", low=0)
    _checks.real(test_size, "test_size", low=0.0, high=1.0, low_open=True, high_open=True)
    data = load_digits()
    x = data.data.astype(np.float64) / 16.0
    y = data.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_size, stratify=y, random_state=seed)
    return Split(x_tr, y_tr, x_te, y_te)


def encode(
    x: Tensor,
    scheme: str = "direct",
    T: int = 25,
    *,
    generator: torch.Generator | None = None,
    gain: float = 2.0,
    p_max: float = 1.0,
    latency_threshold: float = 0.05,
    noise: Tensor | None = None,
    straight_through: bool = False,
) -> Tensor:
    """Intensities -> input train. Shape: x ``(B, N)`` in [0, 1] -> ``(T, B, N)`` of x's dtype.

    ``"direct"``: gain·x_i at every step. ``"rate"``: z_{t,i} ~ Bernoulli(p_max·x_i), drawn from ``generator``, or
    z_{t,i} = 1[u_{t,i} < p_max·x_i] for given uniform ``noise`` u (broadcastable to ``(T, B, N)``: frozen noise
    makes the encoding a deterministic function of x). ``"latency"``: one spike at t = round((1 − x_i)(T − 1))
    (round half to even) if x_i > ``latency_threshold``.
    Only ``"direct"`` is differentiable in x. ``straight_through`` keeps the spikes and passes a surrogate
    gradient to x (what gradient attacks on the intensities need): rate ∂z_t/∂x = p_max (the derivative of
    E[z_t]); latency the derivative of max(0, 1 − |t − (1 − x)(T − 1)|), the spike spread linearly over the two
    steps around its real-valued time.
    """
    if scheme not in ENCODINGS:
        raise ValueError(f"scheme must be one of {ENCODINGS}, got {scheme!r}")
    xd = _intensities(x)
    _checks.integer(T, "T", low=1)
    if scheme == "direct":
        _checks.real(gain, "gain")
        return (gain * x).unsqueeze(0).expand(T, *x.shape)
    if scheme == "rate":
        return _rate(x, xd, T, p_max, generator, noise, straight_through)
    return _latency(x, xd, T, latency_threshold, straight_through)


def _intensities(x: Tensor) -> Tensor:
    """``x`` checked (a finite floating-point (B, N) tensor in [0, 1]) and detached."""
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError(f"x must be a floating-point torch.Tensor, got {type(x).__name__}"
                        + (f" of dtype {x.dtype}" if isinstance(x, Tensor) else ""))
    if x.dim() != 2:
        raise ValueError(f"x must be 2-D (B, N), got shape {tuple(x.shape)}")
    xd = x.detach()
    if not bool(torch.isfinite(xd).all()):
        raise ValueError("x has non-finite values (NaN or inf)")
    if xd.numel() and (float(xd.min()) < 0 or float(xd.max()) > 1):
        raise ValueError(f"x must lie in [0, 1], got range [{float(xd.min()):.3g}, {float(xd.max()):.3g}]")
    return xd


def _rate(x: Tensor, xd: Tensor, T: int, p_max: float, generator: torch.Generator | None, noise: Tensor | None,
          straight_through: bool) -> Tensor:
    """Bernoulli(p_max·x) spikes, drawn or thresholded from frozen uniform ``noise``; see ``encode``."""
    _checks.real(p_max, "p_max", low=0.0, high=1.0)
    probs = (p_max * xd).unsqueeze(0).expand(T, *x.shape)
    if noise is None:
        z = torch.bernoulli(probs.contiguous(), generator=generator)
    else:
        if not isinstance(noise, Tensor):
            raise TypeError(f"noise must be a torch.Tensor of uniform draws, got {type(noise).__name__}")
        try:
            z = (noise < probs).to(x.dtype)
        except RuntimeError:
            raise ValueError(f"noise of shape {tuple(noise.shape)} does not broadcast to "
                             f"{(T, *x.shape)}") from None
    return z + (p_max * (x - xd)).unsqueeze(0) if straight_through else z


def _latency(x: Tensor, xd: Tensor, T: int, latency_threshold: float, straight_through: bool) -> Tensor:
    """One spike at round((1 − x)(T − 1)) where x > ``latency_threshold``; see ``encode``."""
    _checks.real(latency_threshold, "latency_threshold", low=0.0, high=1.0)
    t_spike = torch.round((1 - xd) * (T - 1)).long()  # (B, N)
    out = torch.zeros(T, *x.shape, dtype=x.dtype, device=x.device)
    on = xd > latency_threshold
    out.scatter_(0, t_spike.unsqueeze(0), on.to(x.dtype).unsqueeze(0))
    if not straight_through:
        return out
    steps = torch.arange(T, dtype=x.dtype, device=x.device).reshape(T, 1, 1)
    soft = torch.relu(1 - (steps - (1 - x) * (T - 1)).abs()) * on
    return out + soft - soft.detach()


@dataclass(frozen=True)
class SpikePatterns:
    """Samples of the spike-pattern task. Shape: x ``(T, n, C)`` float32 in {0, 1}, y ``(n,)`` int64, templates
    ``(K, T, C)``."""

    x: Tensor
    y: Tensor
    templates: Tensor


TEMPLATES = ("poisson", "timing")


def pattern_templates(classes: int = 10, channels: int = 64, T: int = 50, rate: float = 0.05,
                      seed: int = 0, kind: str = "poisson") -> np.ndarray:
    """K frozen templates. ``"poisson"``: each bin spikes with probability ``rate``. ``"timing"``: each channel
    spikes exactly once, at a uniform random step (``rate`` unused): every class has the same spike count in every
    channel, so only the timing carries the class. Shape: ``(K, T, C)`` bool."""
    _checks.integer(classes, "classes", low=2)
    _checks.integer(channels, "channels", low=1)
    _checks.integer(T, "T", low=1)
    _checks.real(rate, "rate", low=0.0, high=1.0)
    if kind not in TEMPLATES:
        raise ValueError(f"kind must be one of {TEMPLATES}, got {kind!r}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5A11]))
    if kind == "poisson":
        return rng.random((classes, T, channels)) < rate
    out = np.zeros((classes, T, channels), dtype=bool)
    k, c = np.meshgrid(np.arange(classes), np.arange(channels), indexing="ij")
    out[k, rng.integers(0, T, (classes, channels)), c] = True
    return out


def spike_patterns(
    n: int,
    seed: int,
    *,
    classes: int = 10,
    channels: int = 64,
    T: int = 50,
    rate: float = 0.05,
    jitter: int = 2,
    deletion: float = 0.1,
    insertion: float = 0.01,
    template_seed: int = 0,
    templates: str = "poisson",
) -> SpikePatterns:
    """``n`` noisy samples (classes balanced: sample i has class i mod K, then shuffled) of the frozen templates.

    Each template spike moves by a uniform integer in [−jitter, jitter] (dropped if it leaves [0, T)), is deleted
    with probability ``deletion``; then every bin gets a spike with probability ``insertion``; coinciding spikes
    merge (binary output). Train and test sets share ``template_seed`` and differ in ``seed``. ``templates``:
    ``"poisson"`` or ``"timing"`` (one spike per channel: a task that counts cannot solve), see
    ``pattern_templates``.
    """
    _checks.integer(n, "n", low=1)
    _checks.integer(jitter, "jitter", low=0)
    _checks.real(deletion, "deletion", low=0.0, high=1.0)
    _checks.real(insertion, "insertion", low=0.0, high=1.0)
    frozen = pattern_templates(classes, channels, T, rate, template_seed, templates)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xD47A]))
    y = rng.permutation(np.arange(n) % classes)
    x = np.zeros((n, T, channels), dtype=bool)
    for i, label in enumerate(y):
        t, c = np.nonzero(frozen[label])
        keep = rng.random(t.size) >= deletion
        t = t + rng.integers(-jitter, jitter + 1, t.size)
        keep &= (t >= 0) & (t < T)
        x[i, t[keep], c[keep]] = True
    x |= rng.random(x.shape) < insertion
    return SpikePatterns(torch.from_numpy(x.transpose(1, 0, 2).astype(np.float32)), torch.from_numpy(y),
                         torch.from_numpy(frozen.astype(np.float32)))
