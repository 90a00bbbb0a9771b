"""IPC on CPU: wrec against ipc-module 1.0.1 (K. Inoue, "GPGPU-accelerated information processing capacity module").

One N = 100 tanh ESN (ρ = 0.9, input scale 0.5) driven by u ~ U[−1, 1], T = 10⁵ rows after a 500-step washout;
IPC of degrees 1..3 with Legendre targets z_t = Π_i P_{d_i}(u_{t−k_i}) (distinct delays), delays k = 0..50 at
degree 1, 0..20 at degree 2, 0..10 at degree 3 (568 targets), every target on the rows t ≥ 50. ipc-module needs
Python ≥ 3.12, so it runs in a subprocess under that interpreter (``--python312``, or $IPC_MODULE_PYTHON) on the same
states and input, saved as ``.npy``; its time excludes its imports and the loading of the arrays.

(1) Raw capacities (no threshold): ipc-module ``UnivariateProfiler(u[:, None], X, poly_name="Legendre",
    surrogate_num=0, offset=50, normalize=True)`` (its SVD) + ``calc([1, 2, 3], [51, 21, 11], zero_offset=True)``
    (delay_max is exclusive: delays 0..50, 0..20, 0..10), against wrec ``ipc(X, u, max_delay={1: 50, 2: 20, 3:
    10}, basis="legendre", threshold=None)``. Goal: ratio = ipc-module / wrec ≥ 3.
(2) Surrogate thresholds, S = ``--surrogates`` (default 1000, ipc-module's default) shuffles of u per target shape,
    threshold = the largest surrogate capacity (ipc-module's ``max_scale=1.0``): ipc-module ``surrogate_num=S``
    + ``calc`` and its ``total(method=d)`` per degree, against wrec ``threshold=Surrogate(count=S, scale=1.0,
    max_spurious=None)`` (its ``summary["thresholded"]``: raw Ĉ summed over the kept targets, Kubota et al.'s
    convention) and against wrec's default ``Surrogate()`` (200 shuffles, scale 1.2, a family-wise bound, kept
    targets counted bias-corrected).

Settings matched: the same states, input and rows (ipc-module's ``offset`` = wrec's largest delay: both use rows
t = 50..T−1 for every target; its target rows ``poly[offset − k : T − k]`` are wrec's u_{t−k}); the same targets
(its degree tuples and delay lists = wrec's partition shapes and distinct delays; matched one to one by their
(delay, degree) pairs); the same basis up to scale (its unnormalised Legendre recurrence, wrec's √(2n+1)·P_n: R² does
not depend on a target's scale); states centred over those rows in both (its ``debias=True``); state columns scaled
(its ``normalize=True``: unit variance; wrec's ``standardize=True``: unit norm; the same directions).

Not matched, reported rather than hidden:
* Target centring. ipc-module centres the states but not the targets: C = ‖U_rᵀz‖² / ‖z‖². wrec's C is the R² of
  the readout with an intercept, ‖U_rᵀ(z − z̄)‖² / ‖z − z̄‖². The numerators are equal (U_r ⟂ 1 on centred states),
  so C_ipc-module = C_wrec · (1 − T z̄² / ‖z‖²): lower by O(1/T). The convention-matched values ipc-module ·
  ‖z‖² / ‖z − z̄‖² are computed here (z from NumPy's Legendre, independent of both libraries) and compared too.
* Rank rule. ipc-module keeps σ_i > σ_1² · ε · max(T, N) (σ compared with σ_1², so it depends on the states' scale);
  wrec's "kubota" rule keeps σ_i² > σ_1² · N · ε on the standardised states. Both ranks are printed; when they are
  equal the projections are the same and the capacities differ only by the centring above.
* Thresholds. ipc-module keeps Ĉ > θ (θ = max surrogate Ĉ of the shape); wrec keeps Ĉ > θ · λ, λ = e(z)(T − 1)/r
  (each target's own null mean: ≈ 1, above 1 for targets whose variance follows the states). The shuffles differ
  (ipc-module: ``default_rng(0).spawn(S)``, delays 1..n; wrec: ``default_rng(0)``, delays 0..n−1), so each θ is a
  different draw of the same maximum. Kept targets near θ can differ; the count of disagreements is printed.

Timing: the raw runs are the minimum of ``--repeats`` calls after a warm-up call (``benchmarks/_timing.best``, the
same function in both processes); the thresholded runs (minutes each at S = 1000) are one call each, after the raw
calls warmed both up. Both use the machine's OpenBLAS threads (``OPENBLAS_NUM_THREADS``, inherited by the
subprocess; =1 gives steadier figures on a shared machine, and ipc-module's one matrix-vector product per target
gains nothing from threads); the machine may be shared: the load average is printed.

Setup of the 3.12 interpreter: ``python3.12 -m venv /tmp/py312 && /tmp/py312/bin/pip install ipc-module==1.0.1
polars joblib ipython matplotlib``.

    python benchmarks/capacity_ipc_module.py [--python312 /tmp/py312/bin/python] [--N 100] [--T 100000]
        [--surrogates 1000] [--repeats 3] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from numpy.polynomial import legendre

from _timing import best  # benchmarks/ is on sys.path when a script runs
from capacity_scale import states  # the same ESN (N neurons, rho = 0.9, washout 500) and input
from wrec.capacity import Surrogate, ipc

DELAYS = {1: 50, 2: 20, 3: 10}
QUICK_DELAYS = {1: 20, 2: 8, 3: 4}
DEFAULT_PYTHON = "/tmp/py312/bin/python"

# Run under Python >= 3.12 with ipc-module installed: only calls its public classes; prints one JSON line.
HELPER = '''
import json
import platform
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
from ipc_module import config
from ipc_module.profiler import UnivariateProfiler

folder, bench, delays = Path(sys.argv[1]), sys.argv[2], {int(d): k for d, k in json.loads(sys.argv[3]).items()}
surrogates, repeats = int(sys.argv[4]), int(sys.argv[5])
sys.path.insert(0, bench)
from _timing import best  # noqa: E402  (the benchmarks' timing rule)

config.set_progress_bar(False)
X, u = np.load(folder / "X.npy"), np.load(folder / "u.npy")
degrees = sorted(delays)
spans = [delays[d] + 1 for d in degrees]  # delay_max is exclusive with zero_offset=True: delays 0..K
held = {}


def profile(n):
    p = UnivariateProfiler(u[:, None], X, poly_name="Legendre", surrogate_num=n, offset=max(delays.values()),
                           debias=True, normalize=True)
    p.calc(degrees, spans, zero_offset=True)
    held["p"] = p


t_raw = best(lambda: profile(0), repeats, warmup=lambda: profile(0))
raw = [[list(key), [int(k) for k in delay], float(value)]
       for key, (delay_list, base, _) in held["p"].results.items() for delay, value in zip(delay_list, base[:, 0])]
rank = int(held["p"].rank)
t_surr = best(lambda: profile(surrogates), 1) if surrogates > 0 else None
p = held["p"]
out = dict(version=version("ipc-module"), python=platform.python_version(), numpy=np.__version__, t_raw=t_raw,
           t_surr=t_surr, rank=rank, raw=raw)
if surrogates > 0:
    out["theta"] = {",".join(map(str, key)): float(np.max(surr)) for key, (_, _, surr) in p.results.items()}
    out["totals"] = {d: float(p.total(method=d)) for d in degrees}
print(json.dumps(out))
'''


def find_python(given: str | None) -> str | None:
    for candidate in (given, os.environ.get("IPC_MODULE_PYTHON"), DEFAULT_PYTHON, "python3.12"):
        if candidate and (Path(candidate).is_file() or shutil.which(candidate)):
            return candidate
    return None


def run_ipc_module(python: str, X: np.ndarray, u: np.ndarray, delays: dict, surrogates: int, repeats: int) -> dict:
    """ipc-module's raw capacities, surrogate thresholds and times on (X, u), from a subprocess under ``python``."""
    with tempfile.TemporaryDirectory() as folder:
        np.save(Path(folder) / "X.npy", X)
        np.save(Path(folder) / "u.npy", u)
        script = Path(folder) / "ipc_module_helper.py"
        script.write_text(HELPER)
        args = [python, str(script), folder, str(Path(__file__).resolve().parent), json.dumps(delays),
                str(surrogates), str(repeats)]
        proc = subprocess.run(args, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"ipc-module helper failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def key(degrees: list | tuple, delays: list | tuple) -> tuple:
    """A target's identity, independent of how a library orders its factors: its sorted (delay, degree) pairs."""
    return tuple(sorted(zip(map(int, delays), map(int, degrees), strict=True)))


def centring(u: np.ndarray, keys: list[tuple], offset: int) -> np.ndarray:
    """‖z‖² / ‖z − z̄‖² of each target on the rows t ≥ offset (NumPy's Legendre P_n, independent of both libraries)."""
    top = max(d for k in keys for _, d in k)
    P = np.stack([legendre.legval(u, np.eye(top + 1)[n]) for n in range(top + 1)])
    T = u.size
    out = np.empty(len(keys))
    for j, k in enumerate(keys):
        z = np.ones(T - offset)
        for delay, degree in k:
            z *= P[degree, offset - delay : T - delay]
        ss = z @ z
        out[j] = ss / (ss - z.sum() ** 2 / z.size)
    return out


def time_wrec(X: np.ndarray, u: np.ndarray, delays: dict, surrogates: int, repeats: int) -> tuple[dict, dict]:
    """wrec's times and results: raw (best of repeats), matched surrogates and default thresholds (one call each)."""
    found, times = {}, {}

    def call(name: str, threshold: object) -> None:
        found[name] = ipc(X, u, max_delay=delays, basis="legendre", threshold=threshold)

    times["raw"] = best(lambda: call("raw", None), repeats, warmup=lambda: call("raw", None))
    if surrogates > 0:
        matched = Surrogate(count=surrogates, scale=1.0, max_spurious=None)
        times["matched"] = best(lambda: call("matched", matched), 1)
    times["default"] = best(lambda: call("default", Surrogate()), 1)
    return times, found


def print_times(mod: dict, times: dict, found: dict, surrogates: int) -> None:
    ratio = mod["t_raw"] / times["raw"]
    print("(1) raw capacities (no threshold), minimum of the repeats after a warm-up:")
    print(f"  ipc-module UnivariateProfiler(surrogate_num=0) + calc: {mod['t_raw']:8.2f} s   rank {mod['rank']}")
    print(f"  wrec ipc(..., threshold=None):                         {times['raw']:8.2f} s   rank {found['raw'].rank}")
    print(f"  ratio ipc-module / wrec = {ratio:.2f}   (goal >= 3)")
    print(f"(2) thresholds, one call each: ipc-module surrogate_num={surrogates} (max_scale 1.0) "
          f"{mod['t_surr'] or float('nan'):8.2f} s")
    if "matched" in times:
        print(f"  wrec Surrogate(count={surrogates}, scale=1.0, max_spurious=None): {times['matched']:8.2f} s   "
              f"ratio ipc-module / wrec = {mod['t_surr'] / times['matched']:.2f}")
        print(f"  wrec default Surrogate() (200 shuffles, scale 1.2, family bound): {times['default']:8.2f} s   "
              f"ratio ipc-module / wrec = {mod['t_surr'] / times['default']:.2f}")
    else:
        print(f"  wrec default Surrogate(): {times['default']:8.2f} s")


def print_degrees(mod: dict, found: dict, raw_mod: np.ndarray, centred: np.ndarray, degree: np.ndarray) -> None:
    print("(3) per-degree totals")
    header = f"  {'degree':>6} {'targets':>7} {'raw ipc-mod':>12} {'centred':>12} {'raw wrec':>12}"
    if "totals" in mod:
        header += f" {'thr ipc-mod':>12} {'thr wrec':>12}"
    print(header + f" {'wrec default':>12}")
    summary = found["raw"].summary
    for d in summary.index:
        row = (f"  {d:>6} {summary.loc[d, 'n_targets']:>7} {raw_mod[degree == d].sum():12.5f} "
               f"{centred[degree == d].sum():12.5f} {summary.loc[d, 'raw']:12.5f}")
        if "totals" in mod:
            row += f" {mod['totals'][str(d)]:12.5f} {found['matched'].summary.loc[d, 'thresholded']:12.5f}"
        print(row + f" {found['default'].by_degree[d]:12.5f}")
    print("  raw ipc-mod: ipc-module's raw C summed (uncentred targets); centred: the same × ‖z‖²/‖z − z̄‖² (wrec's "
          "convention, R² with an intercept);\n  thr: raw C summed over the targets each keeps at its surrogate "
          "threshold (ipc-module total(method=d); wrec summary['thresholded'] with the matched Surrogate);\n"
          "  wrec default: by_degree of ipc(...) with Surrogate() (bias-corrected kept targets, family-wise bound).")


def print_targets(mod: dict, found: dict, raw_mod: np.ndarray, centred: np.ndarray, keys: list) -> None:
    table = found["raw"].table
    wrec_raw = table["capacity"].to_numpy()
    diff, diff_c = np.abs(raw_mod - wrec_raw), np.abs(centred - wrec_raw)
    j = int(np.argmax(diff_c))
    print(f"(4) per target ({len(keys)} matched by degrees and delays): max |ipc-module − wrec| = {diff.max():.2e} "
          f"(mean {diff.mean():.1e}); after the centring convention {diff_c.max():.2e} "
          f"(at degrees {table['degrees'][j]}, delays {table['delays'][j]})")
    if "theta" not in mod:
        return
    matched = found["matched"].table
    theta_mod = np.array([mod["theta"][p] for p in matched["parts"]])
    kept_mod, kept_wrec = raw_mod > theta_mod, matched["kept"].to_numpy()
    print(f"  kept at the surrogate thresholds: ipc-module {kept_mod.sum()}, wrec (matched) {kept_wrec.sum()}, "
          f"different decisions {(kept_mod != kept_wrec).sum()} of {len(keys)}")
    for parts, theta in matched.groupby("parts", sort=False)["threshold"].first().items():
        print(f"  shape ({parts}): threshold ipc-module {mod['theta'][parts]:.3e}, wrec {theta:.3e} (× λ per target)")


def compare(args: argparse.Namespace, python: str, delays: dict) -> None:
    X, u = states(args.N, args.T)
    offset = max(delays.values())
    mod = run_ipc_module(python, X, u, delays, args.surrogates, args.repeats)
    times, found = time_wrec(X, u, delays, args.surrogates, args.repeats)
    table = found["raw"].table
    keys = [key(d.split(","), k.split(",")) for d, k in zip(table["degrees"], table["delays"], strict=True)]
    by_key = {key(degrees, delay): value for degrees, delay, value in mod["raw"]}
    if set(by_key) != set(keys):
        raise SystemExit(f"target sets differ: {len(by_key)} ipc-module targets, {len(keys)} wrec targets")
    raw_mod = np.array([by_key[k] for k in keys])
    centred = raw_mod * centring(u, keys, offset)
    print(f"ipc-module {mod['version']} (Python {mod['python']}, NumPy {mod['numpy']}) against wrec (NumPy "
          f"{np.__version__}): N = {args.N}, T = {args.T} (rows used {args.T - offset}), delays {delays}, "
          f"{len(keys)} targets, Legendre basis, u ~ U[-1, 1]")
    print_times(mod, times, found, args.surrogates)
    print_degrees(mod, found, raw_mod, centred, table["degree"].to_numpy())
    print_targets(mod, found, raw_mod, centred, keys)
    print("notes: ipc-module centres the states but not the targets (C = ‖U_rᵀz‖²/‖z‖²), wrec fits with an intercept "
          "(C = ‖U_rᵀ(z − z̄)‖²/‖z − z̄‖²): equal numerators, so\n  the centred column is the convention-matched one. "
          "Rank rules: ipc-module σ_i > σ_1²·ε·max(T, N), wrec σ_i² > σ_1²·N·ε (standardised); equal ranks give "
          "equal projections.\n  Thresholds: ipc-module keeps C > θ, wrec keeps C > θ·λ (λ = each target's null "
          "mean over r/(T − 1)); the shuffles are different draws.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python312", default=None, help="a Python >= 3.12 with ipc-module installed")
    parser.add_argument("--N", type=int, default=100)
    parser.add_argument("--T", type=int, default=100_000)
    parser.add_argument("--surrogates", type=int, default=1000, help="shuffles per target shape (0: raw only)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="N = 50, T = 5000, delays {1: 20, 2: 8, 3: 4}, S = 100")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}")
    python = find_python(args.python312)
    if python is None:
        print("no Python >= 3.12 with ipc-module found (--python312 or $IPC_MODULE_PYTHON): comparison skipped")
        return
    delays = DELAYS
    if args.quick:
        args.N, args.T, args.surrogates, delays = 50, 5_000, min(args.surrogates, 100), QUICK_DELAYS
    compare(args, python, delays)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
