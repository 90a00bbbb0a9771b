"""IPC profile of an echo state network over its spectral radius (Kubota, Takahashi & Nakajima, PRR 2021).

The reservoir is Kubota's sample-1 ESN, drawn with NumPy's legacy generator exactly as in the published code:
N = 50, w_in = U[−1, 1] with density 0.1, W = U[−1, 1] with density 0.5 scaled to spectral radius 1, then
x_t = tanh(ρ W x_{t−1} + 0.1 w_in u_t), u_t ~ U[−1, 1], washout 10⁴. With ``seed=0`` these are the published
matrices and input, and the table shows the published totals (T = 10⁶) beside ours.

Kubota's state at t has seen only u_{t−1} (their delay 0 carries nothing); ours has seen u_t, so their
delays 1..D are our 0..D−1 and ``max_delay`` is D − 1: the same targets.

Their ranks are those of the states as they are (``standardize=False``, the default here): at ρ ≤ 0.5 the
neurons' amplitudes span three orders of magnitude and the rule σ_i > 10⁻⁷·σ_1 drops directions that scaled
neurons resolve (ρ = 0.1: rank 16 raw, 23 scaled, the total filling either). Our capacities are the bias-corrected
sums of the kept targets; Kubota's sum of their raw values is the ``thresholded`` column.

A table too large for one process (T = 10⁶, degrees up to 5: ~10⁵ targets) spreads over a Dask cluster with
``row_chunk``: the states become a dask array of ``row_chunk``-row chunks and the projection of the targets runs
as one dask task per chunk — on every worker of the cluster under ``wrec run ipc-profile --scheduler ADDRESS``
(``in_cluster``), on local threads otherwise. The numbers are those of the in-memory run (to 10⁻¹²).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wrec import _checks
from wrec.capacity import Surrogate, ipc
from wrec.experiments._stats import format_values, target_row
from wrec.reservoir import ESN
from wrec.reservoir import run as simulate

# Kubota et al. (2021), sample 1, T = 10⁶, degrees 1–5: ρ -> (C_1, C_3, C_tot, rank).
PUBLISHED = {
    0.1: (7.029, 8.978, 16.05, 16), 0.2: (9.98, 15.03, 25.06, 25), 0.3: (12.30, 19.71, 32.09, 32),
    0.4: (14.85, 26.16, 41.13, 41), 0.5: (16.79, 32.23, 49.15, 49), 0.6: (18.27, 31.76, 50.16, 50),
    0.7: (20.66, 29.37, 50.13, 50), 0.8: (24.00, 26.05, 50.11, 50), 0.9: (27.45, 22.67, 50.18, 50),
    1.0: (26.74, 5.34, 32.10, 50), 1.1: (12.07, 0.00, 12.07, 50), 1.2: (8.74, 0.00, 8.78, 50),
}


@dataclass(frozen=True)
class Config:
    """One IPC profile; each spectral radius is one task of the sweep."""

    spectral_radii: tuple[float, ...] = tuple(round(0.1 * k, 1) for k in range(1, 13))
    n: int = 50
    length: int = 100_000
    washout: int = 10_000
    input_scale: float = 0.1
    max_delay: tuple[tuple[int, int], ...] = ((1, 1999), (2, 299), (3, 49))
    surrogates: int = 200
    standardize: bool = False
    row_chunk: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.spectral_radii:
            raise ValueError("spectral_radii is empty")
        for rho in self.spectral_radii:
            _checks.real(rho, "spectral_radii", low=0.0, low_open=True)
        _checks.integer(self.n, "n", low=1)
        _checks.integer(self.length, "length", low=2)
        _checks.integer(self.washout, "washout", low=0)
        _checks.integer(self.surrogates, "surrogates", low=1)
        _checks.integer(self.row_chunk, "row_chunk", low=0)
        _checks.real(self.input_scale, "input_scale", low=0.0, low_open=True)
        if max(k for _, k in self.max_delay) >= self.length:
            raise ValueError(f"max_delay must be < length = {self.length}, got {dict(self.max_delay)}")

    @classmethod
    def quick(cls, **overrides) -> Config:
        """Shorter run (T = 2·10⁴, D = {1: 300, 2: 40, 3: 20}): under a minute on 2 cores."""
        return cls(**{"length": 20_000, "washout": 1_000, "max_delay": ((1, 299), (2, 39), (3, 19)), **overrides})

    def tasks(self) -> list[Config]:
        return [replace(self, spectral_radii=(rho,)) for rho in self.spectral_radii]


def kubota_reservoir(n: int = 50, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Kubota's sample-1 draw with ``numpy.random.RandomState(seed)``: (W with spectral radius 1, w_in)."""
    legacy = np.random.RandomState(seed)
    w_in = (2 * legacy.rand(n) - 1) * (legacy.rand(n) < 0.1)
    W = (2 * legacy.rand(n, n) - 1) * (legacy.rand(n, n) < 0.5)
    return W / np.max(np.abs(np.linalg.eigvals(W))), w_in


def kubota_input(length: int, seed: int = 0) -> np.ndarray:
    """u_t = 2·rand − 1 from a freshly seeded ``RandomState(seed)``, as in Kubota's code."""
    return 2 * np.random.RandomState(seed).rand(length) - 1


def evaluate(config: Config) -> pd.DataFrame:
    """Tidy results: one row per (spectral radius, degree)."""
    W, w_in = kubota_reservoir(config.n, config.seed)
    u = kubota_input(config.washout + config.length, config.seed)
    rows = []
    for rho in config.spectral_radii:
        start = time.perf_counter()
        model = ESN(W, w_in=w_in, input_scale=config.input_scale, recurrent_scale=rho)
        X = simulate(model, u, washout=config.washout)
        with in_cluster():
            result = ipc(chunked(X, config.row_chunk), u[config.washout:], max_delay=dict(config.max_delay),
                         threshold=Surrogate(count=config.surrogates), standardize=config.standardize)
        seconds = time.perf_counter() - start
        for degree, s in result.summary.iterrows():
            rows.append({"spectral_radius": rho, "degree": int(np.asarray(degree)), "capacity": s["capacity"],
                         "thresholded": s["thresholded"], "raw": s["raw"], "adjusted": s["adjusted"],
                         "floor": s["floor"], "spurious": s["spurious"], "n_targets": int(s["n_targets"]),
                         "rank": result.rank, "warnings": "; ".join(result.warnings), "seconds": seconds})
    return pd.DataFrame(rows)


def chunked(X: np.ndarray, row_chunk: int) -> Any:
    """``X`` itself (``row_chunk`` 0), or a dask array of ``row_chunk``-row chunks: the capacity engine then projects
    the targets one dask task per chunk (``wrec.capacity`` on blocks)."""
    if not row_chunk:
        return X
    import dask.array as da

    return da.from_array(X, chunks=(row_chunk, -1))


@contextmanager
def in_cluster() -> Iterator[None]:
    """Inside a task running on a Dask cluster (``wrec run --scheduler``): dask computations of the body run on the
    whole cluster through this worker's client, the task's thread seceded while it waits, so tasks waiting on
    their chunks never hold every worker (``distributed.worker_client``). Anywhere else: nothing changes."""
    try:
        from distributed import get_worker, worker_client

        get_worker()
    except (ImportError, ValueError):  # not on a Dask worker
        yield
        return
    import dask

    with worker_client() as client, dask.config.set(scheduler=client):
        yield


def table(results: pd.DataFrame) -> pd.DataFrame:
    """One row per spectral radius: capacity by degree, total, rank, total/rank, Kubota's raw thresholded sum
    (and the published totals), and ``check``: what the result's invariant checks found, if anything."""
    wide = results.pivot_table(index="spectral_radius", columns="degree", values="capacity", aggfunc="first")
    wide.columns = [f"C{d}" for d in wide.columns]
    first = results.groupby("spectral_radius").first()
    wide["total"] = wide.sum(axis=1)
    wide["rank"] = first["rank"].astype(int)
    wide["total/rank"] = wide["total"] / wide["rank"]
    wide["thresholded"] = results.groupby("spectral_radius")["thresholded"].sum()
    if _is_kubota(results):
        wide["published total"] = [PUBLISHED.get(round(rho, 6), (np.nan,) * 4)[2] for rho in wide.index]
    wide["check"] = first["warnings"].fillna("").str.slice(0, 60) if "warnings" in first else ""
    return wide.reset_index()


def targets(results: pd.DataFrame) -> pd.DataFrame:
    """Kubota et al.'s invariant and profile: total ≤ rank at every ρ (within the sum's sampling error),
    total/rank ∈ [0.98, 1.03] for ρ ≤ 0.9 (published 0.997–1.003 at T = 10⁶) and < 0.3 for ρ ≥ 1.1 (published
    0.24 at 1.1, 0.18 at 1.2); on Kubota's reservoir with their rank convention, the published ranks."""
    wide = table(results).set_index("spectral_radius")
    rows = [target_row("total ≤ rank at every ρ (no invariant warning)", wide["total"] - wide["rank"],
                       "≤ 0.1 + 3 s.e. (total − rank)", wide["check"] == "")]
    fading = wide[wide.index <= 0.9 + 1e-9]
    if len(fading):
        rows.append(target_row("total/rank for ρ ≤ 0.9", fading["total/rank"], "in [0.98, 1.03]",
                               fading["total/rank"].between(0.98, 1.03)))
    chaotic = wide[wide.index >= 1.1 - 1e-9]
    if len(chaotic):
        rows.append(target_row("total/rank for ρ ≥ 1.1", chaotic["total/rank"], "< 0.3", chaotic["total/rank"] < 0.3))
    standardized = "standardize" in results and bool(results["standardize"].any())
    if _is_kubota(results) and not standardized:
        published = [rho for rho in wide.index if round(rho, 6) in PUBLISHED]
        want = np.array([PUBLISHED[round(rho, 6)][3] for rho in published])
        got = wide.loc[published, "rank"].to_numpy()
        rows.append(target_row("ranks = Kubota et al.'s published ranks", got, f"= {format_values(want)}",
                               got == want))
    return pd.DataFrame(rows)


def _is_kubota(results: pd.DataFrame) -> bool:
    cols = {"n": 50, "seed": 0, "input_scale": 0.1}
    return all(c in results and (results[c] == v).all() for c, v in cols.items())


def plot(results: pd.DataFrame, path: str | Path) -> list[Path]:
    """Stacked bars of capacity by degree versus ρ, with the rank as a line."""
    from wrec.plotting import capacity_profile

    wide = results.pivot_table(index="spectral_radius", columns="degree", values="capacity", aggfunc="first")
    rank = results.groupby("spectral_radius")["rank"].first()
    reference = None
    if _is_kubota(results):
        reference = pd.Series({rho: PUBLISHED[round(rho, 6)][2] for rho in wide.index if round(rho, 6) in PUBLISHED},
                              name="Kubota et al. 2021,\ntotal at T = 10⁶")
    return [capacity_profile(wide, rank, path, xlabel="spectral radius ρ",
                             title="IPC of a 50-node ESN (Kubota's sample 1)", reference=reference)]
