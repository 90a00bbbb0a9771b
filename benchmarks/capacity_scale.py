"""Capacities of states that do not fit in memory, and on other array backends.

(1) Blockwise against in-memory: one N = 100 ESN, T = 10⁵ rows, IPC to degree 2 (delays ≤ 30 at degree 1 and
    ≤ 10 at degree 2) with ChiSquare thresholds, and the memory curve to delay 200. The same states are passed as
    an in-memory array (baseline) and as a ``.npy`` file (``run(..., out=path)``; read in row blocks, three
    passes over the file). ``ratio = blockwise / in-memory`` (goal ≤ 1.3) and the largest difference of any
    capacity (goal ≤ 1e-10). Peak Python-heap memory (tracemalloc, which sees NumPy's buffers) of each.
(2) Projection throughput: the blockwise pass 2 (target generation and Zᵀ[X − x̄, 1, h], after the
    decomposition) in GFLOP/s of its GEMM work 2·T·(N + 2)·targets, against a bare float64 GEMM of the same
    block shape timed in the same run.
(3) ``--device cuda`` (or ``cpu``): the same states as a torch tensor (float64 and float32) on that device;
    the projections run there. Time and largest difference from the in-memory NumPy result.
(4) ``--large``: T = 10⁷, N = 200 states written to a float32 ``.npy`` (8 GB on disk, never in memory), the
    memory curve to delay 1000 and IPC degree 2 (delays ≤ 30), ChiSquare: wall time, peak heap, peak RSS.

Every time is the minimum of ``--repeats`` calls after a warm-up (``benchmarks/_timing.best``) except (4), one
call. The machine may be shared: the load average is printed.

    python benchmarks/capacity_scale.py [--T 100000] [--N 100] [--device cuda] [--large] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from _timing import best  # benchmarks/ is on sys.path when a script runs
from wrec.capacity import ChiSquare, ipc, memory_capacity
from wrec.capacity.blocks import RowBlocks, decompose_blocks
from wrec.reservoir import ESN, run
from wrec.weights import gaussian

WASHOUT = 500
IPC_DELAYS = {1: 30, 2: 10}
MC_DELAY = 200


def states(N: int, T: int, *, out: Path | None = None, dtype: type = np.float64) -> tuple[np.ndarray, np.ndarray]:
    """An N-neuron tanh ESN (ρ = 0.9) driven by u ~ U[−1, 1]: (states, input) aligned, T rows."""
    u = np.random.default_rng(0).uniform(-1.0, 1.0, T + WASHOUT)
    model = ESN(gaussian(N, spectral_radius=0.9, seed=1), input_scale=0.5, seed=2)
    X = run(model, u, washout=WASHOUT, dtype=dtype, out=out)
    return X, u[WASHOUT:]


def capacities(X: object, u: np.ndarray, *, mc_delay: int = MC_DELAY, ipc_delays: dict = IPC_DELAYS) -> np.ndarray:
    """Every raw (in-sample) capacity the benchmark computes, as one vector: the IPC table, then the memory curve."""
    table = ipc(X, u, max_delay=ipc_delays, threshold=ChiSquare()).table["capacity"].to_numpy()
    curve = memory_capacity(X, u, mc_delay, threshold=ChiSquare()).raw
    return np.concatenate([table, curve])


def peak_heap(fn) -> tuple[object, float]:
    """fn() and the peak of traced Python-heap memory during it, in MB."""
    tracemalloc.start()
    try:
        out = fn()
        return out, tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def bench_blockwise(X: np.ndarray, u: np.ndarray, path: Path, repeats: int) -> np.ndarray:
    T, N = X.shape
    print(f"(1) blockwise (.npy file) against in-memory: N = {N}, T = {T}, IPC delays {IPC_DELAYS}, "
          f"MC to delay {MC_DELAY}, ChiSquare")
    t_mem = best(lambda: capacities(X, u), repeats, warmup=lambda: capacities(X, u))
    t_blk = best(lambda: capacities(str(path), u), repeats, warmup=lambda: capacities(str(path), u))
    ref, heap_mem = peak_heap(lambda: capacities(X, u))
    got, heap_blk = peak_heap(lambda: capacities(str(path), u))
    diff = float(np.abs(np.asarray(got) - np.asarray(ref)).max())
    print(f"  in-memory {t_mem:7.2f} s  (peak heap {heap_mem:7.1f} MB, states {X.nbytes / 1e6:.0f} MB)")
    print(f"  blockwise {t_blk:7.2f} s  (peak heap {heap_blk:7.1f} MB)   ratio blockwise/in-memory = "
          f"{t_blk / t_mem:.2f} (goal <= 1.3)   max |diff| = {diff:.1e} (goal <= 1e-10)")
    return np.asarray(ref)


def bench_throughput(path: Path, u: np.ndarray, repeats: int) -> None:
    blocks = RowBlocks(str(path), skip=IPC_DELAYS[1])
    T, N = len(u) - IPC_DELAYS[1], blocks.n_columns
    rows, n_targets = 1 << 13, 2048
    t_dec = best(lambda: decompose_blocks(blocks), repeats)
    t_all = best(lambda: ipc(str(path), u, max_delay={1: 30, 2: 62}, threshold=None), repeats)
    targets = 31 + 63 * 64 // 2
    flops = 2.0 * T * (N + 2) * targets
    A, Z = np.random.default_rng(0).standard_normal((rows, N + 2)), np.random.default_rng(1).standard_normal(
        (rows, n_targets))
    t_gemm = best(lambda: Z.T @ A, repeats, warmup=lambda: Z.T @ A)
    gemm = 2.0 * rows * (N + 2) * n_targets / t_gemm / 1e9
    pass2 = flops / max(t_all - t_dec, 1e-9) / 1e9
    print(f"(2) projection throughput, degree <= 2 (delays 30/62, {targets} targets, no threshold): "
          f"decomposition {t_dec:.2f} s, whole ipc {t_all:.2f} s")
    print(f"  pass 2 {pass2:6.1f} GFLOP/s   bare GEMM ({rows}x{n_targets})^T({rows}x{N + 2}) {gemm:6.1f} GFLOP/s   "
          f"ratio {pass2 / gemm:.2f}")


def bench_device(X: np.ndarray, u: np.ndarray, ref: np.ndarray, device: str, repeats: int) -> None:
    import torch

    print(f"(3) states as a torch tensor on {device} ({torch.cuda.get_device_name() if device == 'cuda' else 'cpu'})")
    for dtype in (torch.float64, torch.float32):
        tensor = torch.as_tensor(X, device=device).to(dtype)
        got = capacities(tensor, u)  # also the warm-up
        t = best(lambda tensor=tensor: capacities(tensor, u), repeats)
        base = ref if dtype == torch.float64 else capacities(tensor.cpu().numpy(), u)
        diff = float(np.abs(got - base).max())
        print(f"  {dtype!s:14s} {t:7.2f} s   max |diff| from NumPy on the same values = {diff:.1e}")


def bench_large(folder: Path) -> None:
    T, N = 10_000_000, 200
    path = folder / "large.npy"
    start = time.perf_counter()
    u = states(N, T, out=path, dtype=np.float32)[1]  # the written memmap is let go: its pages leave our RSS
    t_run = time.perf_counter() - start
    print(f"(4) large: N = {N}, T = {T:.0e}, float32 .npy {path.stat().st_size / 1e9:.1f} GB "
          f"(simulated in {t_run:.0f} s)")
    reset_peak_rss()
    start = time.perf_counter()
    (mc, table), heap = peak_heap(lambda: (
        memory_capacity(str(path), u, 1000, threshold=ChiSquare()),
        ipc(str(path), u, max_delay={2: 30}, threshold=ChiSquare())))
    wall = time.perf_counter() - start
    print(f"  MC(1000) = {mc.total:.2f}, IPC degree 2 = {table.total:.3f} (a tanh ESN without bias is odd: no even "
          f"capacity): {wall:.0f} s, peak heap {heap:.0f} MB, peak RSS {peak_rss_mb():.0f} MB")


def reset_peak_rss() -> None:
    """Reset the process's peak resident size to its current size (Linux; elsewhere the lifetime peak is kept)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_rss_mb() -> float:
    """Peak resident size since the last ``reset_peak_rss`` (Linux), else since the process started."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) / 1e3 for line in f if line.startswith("VmHWM"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--T", type=int, default=100_000)
    parser.add_argument("--N", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None)
    parser.add_argument("--large", action="store_true")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "states.npy"
        X, u = states(args.N, args.T, out=path)
        X = np.array(X)  # the in-memory baseline: an ordinary array, not the memmap
        ref = bench_blockwise(X, u, path, args.repeats)
        bench_throughput(path, u, args.repeats)
        if args.device:
            bench_device(X, u, ref, args.device, args.repeats)
        if args.large:
            bench_large(Path(folder))


if __name__ == "__main__":
    main()
