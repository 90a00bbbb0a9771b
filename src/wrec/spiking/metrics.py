"""Measures of spike coding networks, as used by Brendel et al. (PLoS CB 2020) to follow learning: decoding
error, weight alignment, rates, ISI variability and E/I balance.

Spike trains are given as index arrays, as ``wrec.spiking.simulate`` returns them: spike s happens at time
``times[s]`` (steps or seconds) in neuron ``neurons[s]`` (and trial ``trials[s]`` when there are several).
"""

from __future__ import annotations

import numpy as np

from wrec import _checks
from wrec.spiking.scn import SCNRun, SCNWeights

Array = np.ndarray


def mean_rate(counts: Array, duration: float) -> float:
    """Mean firing rate ⟨n_i⟩ / duration over neurons (and trials), in spikes per unit of ``duration``.

    Shape: counts (N,) or (B, N), spike counts per neuron (``SCNRun.spike_counts()``).
    """
    counts = _checks.array(counts, "counts", ndim=(1, 2))
    duration = _checks.real(duration, "duration", low=0.0, low_open=True)
    if counts.size == 0:
        raise ValueError("counts must not be empty")
    return float(counts.mean() / duration)


def _group_key(neurons: Array, trials: Array | None, name: str = "neurons") -> Array:
    neurons = _checks.array(neurons, name, ndim=1, dtype=np.int64)
    if trials is None:
        return neurons
    trials = _checks.array(trials, "trials", ndim=1, dtype=np.int64)
    if trials.shape != neurons.shape:
        raise ValueError(f"trials must have the shape of neurons {neurons.shape}, got {trials.shape}")
    n = int(neurons.max(initial=-1)) + 1
    return trials * max(n, 1) + neurons


def cv_isi(times: Array, neurons: Array, trials: Array | None = None, *, min_spikes: int = 3) -> float:
    """Coefficient of variation of the inter-spike intervals, CV = s.d.(ISI) / mean(ISI) (s.d. with ddof = 1),
    computed per neuron and trial, averaged over the trains with at least ``min_spikes`` spikes (NaN if none).

    Poisson trains give CV = 1, gamma(k) renewal trains 1/√k, regular trains 0.

    Shape: times, neurons, trials (S,).
    """
    times = _checks.array(times, "times", ndim=1)
    key = _group_key(neurons, trials)
    if key.shape != times.shape:
        raise ValueError(f"neurons must have the shape of times {times.shape}, got {key.shape}")
    min_spikes = _checks.integer(min_spikes, "min_spikes", low=3)
    order = np.lexsort((times, key))
    key, times = key[order], times[order]
    same = key[1:] == key[:-1]
    isi, ikey = np.diff(times)[same], key[1:][same]
    if isi.size == 0:
        return float("nan")
    _, inv = np.unique(ikey, return_inverse=True)
    m = np.bincount(inv)  # intervals per train
    mean = np.bincount(inv, isi) / m
    with np.errstate(invalid="ignore", divide="ignore"):
        var = np.bincount(inv, (isi - mean[inv]) ** 2) / (m - 1)
        cv = np.sqrt(var) / mean
    keep = m >= min_spikes - 1
    return float(np.mean(cv[keep])) if np.any(keep) else float("nan")


def fano_factor(counts: Array) -> float:
    """Fano factor Var(n_i) / ⟨n_i⟩ of spike counts across trials, averaged over neurons that fired.

    Poisson counts give 1, identical counts in every trial 0.

    Shape: counts (B, N), B ≥ 2 trials (``SCNRun.spike_counts()`` of a batched run).
    """
    counts = _checks.array(counts, "counts", ndim=2)
    if counts.shape[0] < 2:
        raise ValueError(f"counts needs at least 2 trials (rows), got shape {counts.shape}")
    mean = counts.mean(axis=0)
    fired = mean > 0
    if not np.any(fired):
        return float("nan")
    return float(np.mean(counts[:, fired].var(axis=0, ddof=1) / mean[fired]))


def alignment_error(fast: Array, F: Array) -> float:
    """err_Ω = ‖Ω − s Ω*‖²_F / ‖Ω‖²_F with Ω* = −F Fᵀ and the least-squares scale s = ⟨Ω, Ω*⟩ / ‖Ω*‖²_F.

    0 when Ω is a multiple of −F Fᵀ; ≈ 1 for Ω unrelated to F (Brendel et al. 2020, Fig. 2).

    Shape: fast (N, N); F (N, J).
    """
    fast = _checks.square(fast, "fast")
    F = _checks.array(F, "F", ndim=2)
    if F.shape[0] != fast.shape[0]:
        raise ValueError(f"F must have N = {fast.shape[0]} rows to match fast, got shape {F.shape}")
    target = -F @ F.T
    nt, nf = np.sum(target * target), np.sum(fast * fast)
    if nt == 0 or nf == 0:
        raise ValueError("fast and F F^T must both be non-zero")
    s = np.sum(fast * target) / nt
    resid = fast - s * target
    return float(np.sum(resid * resid) / nf)


def _trials_time(a: Array, name: str) -> Array:
    a = _checks.array(a, name, ndim=(2, 3))
    return a.reshape(-1, a.shape[-1])


def optimal_decoder(r: Array, x: Array) -> Array:
    """The least-squares linear decoder Dec = argmin Σ_t ‖x_t − Dec r_t‖² (no intercept).

    Shape: r (T, N) or (B, T, N); x (T, J) or (B, T, J) → Dec (J, N).
    """
    R, X = _trials_time(r, "r"), _trials_time(x, "x")
    if R.shape[0] != X.shape[0] or np.ndim(r) != np.ndim(x):
        raise ValueError(f"r and x must share their leading (trial, time) axes, got {np.shape(r)} and {np.shape(x)}")
    dec, *_ = np.linalg.lstsq(R, X, rcond=None)
    return dec.T


def decoding_error(x: Array, r: Array, decoder: Array) -> float:
    """Σ_j Var(x_j − (Dec r)_j) / Σ_j Var(x_j), variances over time (per trial, then averaged over trials).

    Shape: x (T, J) or (B, T, J); r (T, N) or (B, T, N); decoder (J, N).
    """
    x = _checks.array(x, "x", ndim=(2, 3))
    r = _checks.array(r, "r", ndim=(2, 3))
    decoder = _checks.array(decoder, "decoder", ndim=2)
    if r.shape[:-1] != x.shape[:-1] or decoder.shape != (x.shape[-1], r.shape[-1]):
        raise ValueError(f"need x (…, T, J), r (…, T, N), decoder (J, N) with matching T, J, N; got "
                         f"{x.shape}, {r.shape}, {decoder.shape}")
    e = x - r @ decoder.T
    num = e.var(axis=-2).sum(-1)
    den = x.var(axis=-2).sum(-1)
    if np.any(den == 0):
        raise ValueError("x is constant in time: its variance is 0")
    return float(np.mean(num / den))


def ei_currents(weights: SCNWeights, c: Array, run: SCNRun, tau: float = 5e-3) -> tuple[Array, Array]:
    """Excitatory and inhibitory input of each neuron, E ≥ 0 and I ≤ 0, each filtered with exp(−t/τ).

    Every synaptic contribution per step is sorted by sign: feedforward dt·F_ij c_j, slow dt·W_ik r_k and fast
    Ω_ik o_k for k ≠ i (the autapse Ω_ii is the reset, not an input). E sums the positive ones, I the
    negative ones; then y_t = e^{−dt/τ} y_{t−1} + u_t.

    Shape: c (T, J) of one trial, the run of that trial → E, I (T, N).
    """
    if not isinstance(run, SCNRun) or run.batch is not None or run.neurons is None:
        raise ValueError("run must be an unbatched SCNRun with spikes recorded")
    c = _checks.array(c, "c", ndim=2)
    if c.shape != (run.n_steps, weights.j):
        raise ValueError(f"c must have shape (T, J) = ({run.n_steps}, {weights.j}), got {c.shape}")
    tau = _checks.real(tau, "tau", low=0.0, low_open=True)
    dt = run.dt
    pos, neg = (lambda a: np.maximum(a, 0.0)), (lambda a: np.minimum(a, 0.0))
    F = weights.F
    exc = dt * (pos(c) @ pos(F).T + neg(c) @ neg(F).T)  # F_ij c_j > 0 when the signs agree
    inh = dt * (neg(c) @ pos(F).T + pos(c) @ neg(F).T)
    o = np.zeros((run.n_steps, weights.n))
    np.add.at(o, (run.recorded("steps"), run.recorded("neurons")), 1.0)
    fast = weights.fast - np.diag(np.diag(weights.fast))
    exc += o @ pos(fast).T
    inh += o @ neg(fast).T
    if weights.slow is not None:
        if run.r is None:
            raise ValueError("run must have r recorded when weights.slow is set")
        r_prev = np.vstack([np.zeros((1, weights.n)), run.r[:-1]])  # the step uses r from the previous step
        exc += dt * (r_prev @ pos(weights.slow).T)
        inh += dt * (r_prev @ neg(weights.slow).T)
    from scipy.signal import lfilter  # here, not at import: scipy.signal alone takes ~0.5 s to load

    a = np.exp(-dt / tau)
    return lfilter([1.0], [1.0, -a], exc, axis=0), lfilter([1.0], [1.0, -a], inh, axis=0)


def ei_correlation(weights: SCNWeights, c: Array, run: SCNRun, tau: float = 5e-3) -> Array:
    """corr(E_i, −I_i) over time for each neuron (``ei_currents``); NaN for a neuron with a constant E or I.

    Tight balance gives values near 1 (Brendel et al. 2020: 0.88 after learning, −0.40 before).

    Shape: → (N,).
    """
    exc, inh = ei_currents(weights, c, run, tau)
    exc = exc - exc.mean(axis=0)
    inh = -inh + inh.mean(axis=0)
    den = np.sqrt(np.sum(exc * exc, axis=0) * np.sum(inh * inh, axis=0))
    out = np.full(exc.shape[1], np.nan)
    ok = den > 0
    out[ok] = np.sum(exc * inh, axis=0)[ok] / den[ok]
    return out
