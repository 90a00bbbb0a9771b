"""Exact properties of the offline spike data (digits encodings and synthetic spike patterns)."""

import numpy as np
import pytest
import torch

from wrec.tasks.spikes import digits, encode, pattern_templates, spike_patterns


def test_digits_split_is_stratified_70_30_and_scaled():
    d = digits(0)
    assert d.x_train.shape == (1257, 64) and d.x_test.shape == (540, 64)
    assert d.x_train.min() == 0.0 and d.x_train.max() == 1.0 and d.x_train.dtype == np.float64
    counts_tr, counts_te = np.bincount(d.y_train, minlength=10), np.bincount(d.y_test, minlength=10)
    # stratified: each class's test share is 0.3 to within one image
    total = counts_tr + counts_te
    assert np.all(np.abs(counts_te - 0.3 * total) <= 1)
    # every image of load_digits lands exactly once (same multiset of rows), scaled by 1/16
    from sklearn.datasets import load_digits

    both = np.concatenate([d.x_train, d.x_test]) * 16
    np.testing.assert_array_equal(np.unique(both, axis=0, return_counts=True)[1],
                                  np.unique(load_digits().data, axis=0, return_counts=True)[1])
    np.testing.assert_array_equal(np.unique(both, axis=0), np.unique(load_digits().data, axis=0))
    again, other = digits(0), digits(1)
    np.testing.assert_array_equal(again.x_test, d.x_test)
    assert not np.array_equal(other.y_test, d.y_test)


def test_direct_encoding_is_gain_times_x_and_differentiable():
    x = torch.tensor([[0.0, 0.25, 1.0]], dtype=torch.float64, requires_grad=True)
    out = encode(x, "direct", T=4)
    assert out.shape == (4, 1, 3)
    np.testing.assert_array_equal(out.detach().numpy(), np.broadcast_to([[0.0, 0.5, 2.0]], (4, 1, 3)))
    (g,) = torch.autograd.grad(out.sum(), x)
    np.testing.assert_array_equal(g.numpy(), [[8.0, 8.0, 8.0]])  # T·gain


def test_rate_encoding_is_bernoulli_with_p_max_x():
    x = torch.tensor([[0.0, 0.2, 0.5, 1.0]]).repeat(50, 1)
    g = torch.Generator().manual_seed(0)
    out = encode(x, "rate", T=400, generator=g, p_max=0.8)
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    rate = out.mean(dim=(0, 1)).numpy()  # 20000 draws per column
    p = 0.8 * np.array([0.0, 0.2, 0.5, 1.0])
    se = np.sqrt(p * (1 - p) / 20000)
    assert rate[0] == 0.0 and rate[3] == pytest.approx(0.8, abs=6 * se[3])
    np.testing.assert_allclose(rate, p, atol=float(6 * se.max()))
    same = encode(x, "rate", T=400, generator=torch.Generator().manual_seed(0), p_max=0.8)
    assert torch.equal(out, same)


def test_rate_encoding_with_frozen_noise_and_straight_through_gradient():
    """Given uniform noise u, z = 1[u < p_max·x] (deterministic); straight-through keeps those spikes and gives
    ∂Σ_t z_t/∂x = T·p_max."""
    x = torch.tensor([[0.0, 0.3, 0.9, 1.0]], dtype=torch.float64, requires_grad=True)
    u = torch.rand(50, 1, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    z = encode(x, "rate", T=50, p_max=0.8, noise=u, straight_through=True)
    torch.testing.assert_close(z.detach(), (u < 0.8 * x.detach()).double(), rtol=0, atol=0)
    torch.testing.assert_close(z.detach(), encode(x.detach(), "rate", T=50, p_max=0.8, noise=u), rtol=0, atol=0)
    (g,) = torch.autograd.grad(z.sum(), x)
    torch.testing.assert_close(g, torch.full_like(x, 50 * 0.8))
    assert not encode(x, "rate", T=50, noise=u).requires_grad  # no gradient unless asked
    with pytest.raises(ValueError, match="does not broadcast"):
        encode(x, "rate", T=50, noise=u[:, :, :3])
    with pytest.raises(TypeError, match=r"noise must be a torch\.Tensor"):
        encode(x, "rate", T=50, noise=0.5)


def test_latency_straight_through_gradient_is_that_of_the_interpolated_spike_time():
    """Spikes unchanged; Σ_t t·soft_t is the real-valued spike time (1 − x)(T − 1) between two steps, so
    ∂(Σ_t t·z_t)/∂x = −(T − 1) for pixels above the threshold and 0 below it."""
    T = 25
    x = torch.tensor([[0.02, 0.31, 0.47, 0.93]], dtype=torch.float64, requires_grad=True)
    z = encode(x, "latency", T=T, straight_through=True)
    torch.testing.assert_close(z.detach(), encode(x.detach(), "latency", T=T), rtol=0, atol=0)
    t = torch.arange(T, dtype=torch.float64).reshape(T, 1, 1)
    (g,) = torch.autograd.grad((t * z).sum(), x)
    torch.testing.assert_close(g, torch.tensor([[0.0, -(T - 1), -(T - 1), -(T - 1)]], dtype=torch.float64))


def test_latency_encoding_spikes_once_at_the_rounded_time():
    x = torch.tensor([[0.0, 0.05, 0.06, 0.5, 0.9, 1.0]])
    T = 25
    out = encode(x, "latency", T=T)
    counts = out.sum(0)[0].numpy()
    np.testing.assert_array_equal(counts, [0, 0, 1, 1, 1, 1])  # only x > 0.05 spikes, exactly once
    times = out[:, 0].argmax(0).numpy()
    for i in range(2, 6):
        assert times[i] == round((1 - float(x[0, i])) * (T - 1))
    assert times[5] == 0 and times[2] == round(0.94 * 24)


@pytest.mark.parametrize(("x", "kwargs", "error", "match"), [
    (torch.zeros(2, 3), {"scheme": "phase"}, ValueError, "scheme must be one of"),
    (torch.zeros(2, 3), {"T": 0}, ValueError, "T must be >= 1"),
    (torch.full((2, 3), 1.5), {}, ValueError, r"\[0, 1\]"),
    (torch.full((2, 3), float("nan")), {}, ValueError, "non-finite"),
    (torch.zeros(2, 3, 4), {}, ValueError, "2-D"),
    (np.zeros((2, 3)), {}, TypeError, "torch.Tensor"),
    (torch.zeros(2, 3, dtype=torch.int64), {}, TypeError, "floating-point"),
])
def test_encode_bad_input(x, kwargs, error, match):
    with pytest.raises(error, match=match):
        encode(x, **kwargs)


def test_templates_are_frozen_poisson():
    tpl = pattern_templates(classes=10, channels=64, T=50, rate=0.05, seed=0)
    assert tpl.shape == (10, 50, 64) and tpl.dtype == bool
    n = tpl.size  # 32000 bins: the rate within 5 standard errors
    assert tpl.mean() == pytest.approx(0.05, abs=5 * np.sqrt(0.05 * 0.95 / n))
    np.testing.assert_array_equal(tpl, pattern_templates(seed=0))
    assert not np.array_equal(tpl, pattern_templates(seed=1))


def test_spike_patterns_without_noise_are_the_templates():
    data = spike_patterns(30, seed=3, jitter=0, deletion=0.0, insertion=0.0)
    assert data.x.shape == (50, 30, 64) and data.y.shape == (30,)
    np.testing.assert_array_equal(np.bincount(data.y.numpy()), [3] * 10)  # balanced
    for i in range(30):
        torch.testing.assert_close(data.x[:, i], data.templates[data.y[i]], rtol=0, atol=0)


def test_spike_pattern_noise_has_the_stated_laws():
    # jitter only: every sample spike lies within ±2 steps of a template spike of its channel
    data = spike_patterns(20, seed=1, deletion=0.0, insertion=0.0)
    tpl = data.templates.numpy().astype(bool)
    for i in range(20):
        sample = data.x[:, i].numpy().astype(bool)
        near = np.zeros_like(sample)
        for shift in range(-2, 3):
            near |= np.roll(tpl[data.y[i]], shift, axis=0) & _valid(shift, 50)[:, None]
        assert np.all(near[sample])
    # deletion only: surviving fraction ≈ 0.9 (a subset of the template, within 5 standard errors)
    kept = spike_patterns(200, seed=2, jitter=0, deletion=0.1, insertion=0.0)
    total = kept.templates[kept.y].permute(1, 0, 2)
    assert torch.all(kept.x <= total)
    frac = float(kept.x.sum() / total.sum())
    assert frac == pytest.approx(0.9, abs=5 * np.sqrt(0.09 / float(total.sum())))
    # insertion only, on an empty template: Bernoulli(0.01) in every bin
    noise = spike_patterns(200, seed=4, rate=0.0, insertion=0.01)
    n = noise.x.numel()
    assert float(noise.x.mean()) == pytest.approx(0.01, abs=5 * np.sqrt(0.0099 / n))
    # train and test share templates, differ in samples
    a, b = spike_patterns(10, seed=0), spike_patterns(10, seed=1)
    assert torch.equal(a.templates, b.templates) and not torch.equal(a.x, b.x)


def _valid(shift: int, T: int) -> np.ndarray:
    """Rows of np.roll(…, shift) that did not wrap around."""
    t = np.arange(T)
    return (t - shift >= 0) & (t - shift < T)


def test_timing_templates_carry_the_class_in_spike_times_only():
    """``kind="timing"``: one spike per channel per template, so every class has the same count in every channel
    (a count readout is at chance); the times differ between classes."""
    tpl = pattern_templates(classes=10, channels=64, T=50, seed=0, kind="timing")
    assert tpl.shape == (10, 50, 64) and (tpl.sum(axis=1) == 1).all()
    times = tpl.argmax(axis=1)  # (K, C)
    assert len({tuple(t) for t in times}) == 10
    clean = spike_patterns(20, seed=1, jitter=0, deletion=0.0, insertion=0.0, templates="timing")
    assert (clean.x.sum(0) == 1).all()  # every sample: one spike in every channel
    with pytest.raises(ValueError, match="kind must be one of"):
        pattern_templates(kind="burst")
