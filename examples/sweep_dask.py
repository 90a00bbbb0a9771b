"""Your own function swept over a grid with ``wrec.sweep.run`` on a Dask ``LocalCluster``.

``wrec.sweep.run(fn, configs, store=..., executor=...)`` runs ``fn(config) -> DataFrame`` once per config on any
``concurrent.futures.Executor`` and writes each result, the moment it finishes, as one Parquet file keyed by a
hash of its config. A second call finds them all and computes nothing, so an interrupted sweep resumes. Here the
executor is a Dask cluster on this machine; for many machines it is ``distributed.Client(address).get_executor()``
with nothing else changed. Each task draws its random numbers from its own coordinates (``wrec.sweep.task_rng``),
so the numbers do not depend on where or in which order it ran.

    python examples/sweep_dask.py [--small] [--workers W] [--out DIR]

Needs the ``[dask]`` extra. Results go to DIR/sweep (default ``runs/examples``, or ``$WREC_EXAMPLES_OUT``).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

import wrec
from wrec.store import Store
from wrec.sweep import run, task_rng


@dataclass(frozen=True)
class Config:
    """One task: an ESN's spectral radius, its size and the replicate."""

    spectral_radius: float
    n: int = 50
    replicate: int = 0


def memory_of(config: Config) -> pd.DataFrame:
    """The task: the memory capacity of one ESN, its W and input drawn from the config's own stream."""
    rng = task_rng(2026, config.replicate, config.spectral_radius)
    W = wrec.weights.gaussian(config.n, spectral_radius=config.spectral_radius, seed=rng)
    u = wrec.tasks.uniform_input(6_000, seed=rng)
    X = wrec.reservoir.run(wrec.reservoir.ESN(W, input_scale=0.1, seed=rng), u, washout=500)
    mc = wrec.capacity.memory_capacity(X, u[500:], max_delay=2 * config.n)
    return pd.DataFrame({"MC": [mc.total], "rank": [mc.rank]})


def main(small: bool = False, workers: int = 2, out: Path | None = None) -> dict[str, float]:
    """Sweep twice (the second run reuses every stored result) and return the numbers it prints."""
    from distributed import Client, LocalCluster

    radii = [0.5, 0.9] if small else np.round(np.linspace(0.1, 1.0, 10), 2).tolist()
    configs = [Config(rho, n=20 if small else 50, replicate=r) for rho in radii for r in range(2 if small else 3)]
    store = Store(Path(out or os.environ.get("WREC_EXAMPLES_OUT", "runs/examples")) / "sweep")
    with LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        table = run(memory_of, configs, store=store, executor=client.get_executor())
        again = run(memory_of, configs, store=store, executor=client.get_executor())
    print(table.groupby("spectral_radius")[["MC"]].agg(["mean", "std"]).round(2).to_string())
    result = {"tasks": float(table.attrs["tasks"]), "computed on the second run": float(again.attrs["tasks_computed"]),
              "largest difference between the runs": float((table["MC"] - again["MC"]).abs().max())}
    for name, value in result.items():
        print(f"{name} = {value:g}")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="a few seconds: 4 tasks of N = 20")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="folder for the result store")
    args = parser.parse_args()
    main(args.small, args.workers, args.out)
