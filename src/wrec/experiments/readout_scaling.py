"""Readout scaling: MC grows sublinearly with the number L of readout neurons, and IPC moves to higher degrees
(Takasu & Aoyagi, PRR 2025).

Takasu & Aoyagi, "Neuronal correlations shape the scaling behavior of memory capacity and nonlinear
computational capability of reservoir recurrent neural networks", Phys. Rev. Research (2025). For several
reservoir types, MC(L) and the capacity by degree C_d(L) are measured for L = 1..N on a log grid (nested
readouts of a random neuron order, all L from one QR), over seeds, beside wrec's correlation theory of MC(L)
(``wrec.capacity.theory``: an empirical-spectrum theory, not the paper's cavity-method formula) and the
correlation-free baseline L × (mean single-neuron MC).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from wrec import _checks, weights
from wrec.capacity import Surrogate, profile
from wrec.capacity.profile import readout_grid
from wrec.experiments._protocol import Task, replicate_tasks
from wrec.experiments._stats import target_row
from wrec.reservoir import ESN, LeakyESN, Linear, Rate
from wrec.reservoir import run as simulate

KINDS = ("esn", "leaky_esn", "linear", "rate", "sign_esn")


@dataclass(frozen=True)
class Config:
    """A grid of reservoirs (kind × N × gain × input scale × replicate); each point is one task.

    ``kinds``: "esn" (tanh), "leaky_esn" (leak 0.3), "linear", "rate" (Euler Δ = 0.2, rates tanh(h)) and
    "sign_esn" (binary ±1 units, a spiking-like nonlinearity the theory does not cover). Gaussian W with gain g
    (spectral radius → g), w_in ~ N(0, 1), u ~ U[−1, 1]. Delays as ``max_delay`` {degree: max delay}.
    Readout sizes: ``readouts`` if given (each ≤ every N), else ``n_readouts`` log-spaced sizes from 1 to N.
    """

    kinds: tuple[str, ...] = KINDS
    sizes: tuple[int, ...] = (200, 400)
    gains: tuple[float, ...] = (0.9, 1.0)
    input_scales: tuple[float, ...] = (0.1, 0.5)
    replicates: int = 3
    length: int = 50_000
    washout: int = 5000
    max_delay: tuple[tuple[int, int], ...] = ((1, 199), (2, 19), (3, 11), (4, 7), (5, 5))
    n_readouts: int = 24
    readouts: tuple[int, ...] = ()
    surrogates: int = 200
    leak: float = 0.3
    dt: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        for field in ("kinds", "sizes", "gains", "input_scales"):
            if not getattr(self, field):
                raise ValueError(f"{field} is empty: give at least one value")
        unknown = set(self.kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"kinds has unknown reservoir types {sorted(unknown)}; choose from {KINDS}")
        for n in self.sizes:
            _checks.integer(n, "sizes", low=2)
        for g in self.gains:
            _checks.real(g, "gains", low=0.0, low_open=True)
        for s in self.input_scales:
            _checks.real(s, "input_scales", low=0.0, low_open=True)
        _checks.integer(self.replicates, "replicates", low=1)
        _checks.integer(self.length, "length", low=2)
        _checks.integer(self.washout, "washout", low=0)
        _checks.integer(self.n_readouts, "n_readouts", low=1)
        for L in self.readouts:
            _checks.integer(L, "readouts", low=1, high=min(self.sizes))
        _checks.real(self.leak, "leak", low=0.0, high=1.0, low_open=True)
        _checks.real(self.dt, "dt", low=0.0, low_open=True)
        if max(k for _, k in self.max_delay) >= self.length // 2:
            raise ValueError(f"max_delay must be < length / 2 = {self.length // 2}, got {dict(self.max_delay)}")

    @classmethod
    def quick(cls, **overrides) -> Config:
        """The README's main job: N = 200, g = 0.9, σ = 0.5, T = 2·10⁴, degrees 1–3 (under a minute)."""
        return cls(**{"sizes": (200,), "gains": (0.9,), "input_scales": (0.5,), "replicates": 2,
                      "length": 20_000, "washout": 1000, "max_delay": ((1, 99), (2, 11), (3, 11)), **overrides})

    def tasks(self) -> list[Task[Config]]:
        """One task per (kind, N, g, σ, replicate)."""
        return replicate_tasks(self, self.replicates, kinds=self.kinds, sizes=self.sizes, gains=self.gains,
                               input_scales=self.input_scales)


def streams(seed: int, n: int, replicate: int) -> list[np.random.Generator]:
    """(network, input, readout order) generators from the task's coordinates: independent of scheduling."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence([seed, n, replicate]).spawn(3)]


def reservoir(kind: str, W: np.ndarray, w_in: np.ndarray, sigma: float, *, leak: float, dt: float):
    """The parameter record of one reservoir type (W already has the gain; ``leak`` and ``dt`` are the leaky
    ESN's and the rate network's)."""
    if kind == "esn":
        return ESN(W, w_in=w_in, input_scale=sigma)
    if kind == "sign_esn":
        return ESN(W, w_in=w_in, input_scale=sigma, activation=np.sign)
    if kind == "leaky_esn":
        return LeakyESN(W, w_in=w_in, input_scale=sigma, leak=leak)
    if kind == "linear":
        return Linear(W, w_in=w_in, input_scale=sigma)
    return Rate(W, w_in=w_in, input_scale=sigma, dt=dt)


def echo_state(model, u: np.ndarray, washout: int, rng: np.random.Generator) -> bool:
    """Two initial states, one input: does their distance fall below 10⁻⁸ after the washout?"""
    x0 = rng.uniform(-1, 1, (2, model.n))
    try:
        X = simulate(model, np.broadcast_to(u[: washout + 1], (2, washout + 1)), x0=x0)
    except ValueError:  # blew up
        return False
    return bool(np.max(np.abs(X[0, -1] - X[1, -1])) < 1e-8)


def evaluate(task: Task[Config]) -> pd.DataFrame:
    """Tidy results of one task: one row per (L, degree) with the measured capacity and the theory's prediction."""
    config = task.config
    (kind,), (n,), (g,), (sigma,) = config.kinds, config.sizes, config.gains, config.input_scales
    return _one(config, kind, n, g, sigma, task.replicate, dict(config.max_delay))


def _one(config: Config, kind: str, n: int, g: float, sigma: float, rep: int, delays: dict[int, int]):
    start = time.perf_counter()
    net, inp, order_rng = streams(config.seed, n, rep)
    W = weights.gaussian(n, g, seed=net)
    w_in = weights.input_weights(n, seed=net)
    u = inp.uniform(-1.0, 1.0, config.washout + config.length)
    model = reservoir(kind, W, w_in, sigma, leak=config.leak, dt=config.dt)
    esp = echo_state(model, u, config.washout, order_rng)
    task = {"kind": kind, "n": n, "gain": g, "input_scale": sigma, "replicate": rep, "echo_state": esp}
    Ls = np.array(config.readouts) if config.readouts else readout_grid(n, config.n_readouts)
    try:
        return _measure(config, task, model, u, Ls, delays, order_rng, start)
    except ValueError as exc:  # a blown-up or degenerate reservoir is a result too: recorded, never dropped
        return pd.DataFrame([{**task, "note": str(exc), "seconds": time.perf_counter() - start}])


def _measure(config, task, model, u, Ls, delays, order_rng, start) -> pd.DataFrame:
    X = simulate(model, u, washout=config.washout)
    result = profile(X, u[config.washout:], Ls, max_delay=delays, order="random", seed=order_rng,
                     threshold=Surrogate(config.surrogates))
    summary = {**task, "mean_r2": result.mean_r2, "participation_ratio": result.participation_ratio,
               "L_half": result.L_half, "note": "", "warnings": "; ".join(result.warnings),
               "seconds": time.perf_counter() - start}
    return result.table.assign(**summary)


def _curves(results: pd.DataFrame) -> pd.DataFrame:
    """Mean and spread over replicates of MC(L) (simulation, theory, independent) for each reservoir."""
    ok = results[results["note"].fillna("") == ""]
    mc = ok[ok.degree == 1]
    keys = ["kind", "n", "gain", "input_scale", "L"]
    return mc.groupby(keys).agg(mean=("raw", "mean"), lo=("raw", "min"), hi=("raw", "max"),
                                theory=("theory", "mean"), independent=("independent", "mean")).reset_index()


def table(results: pd.DataFrame) -> pd.DataFrame:
    """One row per reservoir (mean over replicates): correlations, L_½, MC at a few L (simulation / theory)."""
    keys = ["kind", "n", "gain", "input_scale"]
    failed = results[results["note"].fillna("") != ""]
    ok = results[results["note"].fillna("") == ""]
    rows = []
    for key, group in ok.groupby(keys):
        first = group.drop_duplicates("replicate")
        mc = group[group.degree == 1].groupby("L")[["capacity", "raw", "theory"]].mean()
        n = int(np.asarray(key[1]))
        top = group[group.L == n].groupby("degree")["capacity"].mean()
        row = dict(zip(keys, key, strict=True))
        row.update({"echo_state": bool(first.echo_state.all()), "<r2>": first.mean_r2.mean(),
                    "PR": first.participation_ratio.mean(), "L_half": first.L_half.mean()})
        for label, target in (("8", 8), ("N/4", n // 4), ("N", n)):
            sizes = mc.index.to_numpy()
            L = sizes[min(int(np.searchsorted(sizes, target)), sizes.size - 1)]
            row[f"MC({label})"] = mc.loc[L, "capacity"]
            row[f"raw/theory({label})"] = mc.loc[L, "raw"] / mc.loc[L, "theory"]
        row["max|raw-theory|/raw"] = float(np.max(np.abs(mc.raw - mc.theory) / mc.raw))
        row["Ctot/r(N)"] = top.sum() / group[group.L == n]["rank"].mean()
        checks = first["warnings"].fillna("") if "warnings" in first else pd.Series([""])
        row["check"] = "; ".join(sorted({w for w in checks if w}))[:60]
        rows.append(row)
    out = pd.DataFrame(rows)
    for _, f in failed.drop_duplicates([*keys, "replicate"]).iterrows():
        out = pd.concat([out, pd.DataFrame([{**{k: f[k] for k in keys}, "echo_state": False,
                                             "note": f["note"][:60]}])], ignore_index=True)
    if "note" in out:
        out["note"] = out["note"].fillna("")
    return out


THEORY_KINDS = ("esn", "leaky_esn", "rate")  # random W, smooth units: the theory's premises
THEORY_TOLERANCE = 0.05


def targets(results: pd.DataFrame) -> pd.DataFrame:
    """No capacity total above the rank r(L) at any L (within the sum's sampling error; so MC(L) ≤ L, Jaeger's
    bound, too); wrec's correlation theory within 5 % of the raw simulated MC(L) at every L, mean over replicates,
    for the tanh, leaky and rate reservoirs that have the echo-state property."""
    ok = results[results["note"].fillna("") == ""]
    tasks = ok.drop_duplicates(["kind", "n", "gain", "input_scale", "replicate"])
    warned = tasks["warnings"].fillna("") != "" if "warnings" in tasks else pd.Series(False, index=tasks.index)
    rows = [target_row("capacity total ≤ rank at every L (no invariant warning)", int(warned.sum()),
                       "0 tasks warned", ~warned.to_numpy())]
    mc = ok[(ok.degree == 1) & ok.kind.isin(THEORY_KINDS) & ok.echo_state.astype(bool)]
    if len(mc):
        mean = mc.groupby(["kind", "n", "gain", "input_scale", "L"])[["raw", "theory"]].mean()
        err = np.abs(mean["raw"] - mean["theory"]) / mean["raw"]
        rows.append(target_row("theory vs raw MC(L), tanh/leaky/rate with echo state", float(err.max()),
                               f"≤ {THEORY_TOLERANCE:.0%} at every L", err <= THEORY_TOLERANCE))
    return pd.DataFrame(rows)


def plot(results: pd.DataFrame, path: str | Path) -> list[Path]:
    """(a) MC(L) against L with the bound, theory and baseline; (b) capacity by degree vs L, stacked, for the
    first reservoir; (c) sublinearity (L_½/N) against the mean squared correlation ⟨r²⟩."""
    from wrec import plotting

    path = Path(path)
    ok = results[results["note"].fillna("") == ""]
    first = ok.iloc[0]
    sel = ok[(ok.kind == first.kind) & (ok.n == first.n) & (ok.gain == first.gain)
             & (ok.input_scale == first.input_scale)]
    by_degree = sel.groupby(["L", "degree"])["capacity"].mean().unstack("degree")
    rank = sel.groupby("L")["rank"].mean()
    points = ok.drop_duplicates(["kind", "n", "gain", "input_scale", "replicate"])
    return [
        plotting.readout_scaling(_curves(results), path),
        plotting.capacity_profile(by_degree, rank, path.with_name(path.stem + "-degrees.png"),
                                  xlabel="readout neurons L", stacked="area", logx=True,
                                  title=f"{first.kind}, N = {first.n}, g = {first.gain}, σ = {first.input_scale}"),
        plotting.sublinearity(points, path.with_name(path.stem + "-correlations.png")),
    ]
