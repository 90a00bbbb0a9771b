"""StableSSM modes: forward + backward of one block in the recurrent (step loop), conv (FFT) and scan (parallel
prefix) modes, which compute the same map.

One StableSSM layer, H = 64 channels, d_state N = 64 (32 complex modes), batch B = 16, float32, CPU, at
L ∈ {100, 1000, 4000}; the loss is the sum of squared outputs. ``ratio = recurrent_time / mode_time``, all
measured in this one process (minimum over ``--repeats`` after a warm-up). Goal: conv ≥ 5× recurrent at
L = 1000. ``--e1`` also times one seed of the curse-of-memory experiment at its default size (goal: < 5 min on
2 cores). The machine may be shared: the load average is printed.

    python benchmarks/stablessm_modes.py [--quick] [--repeats 3] [--threads N] [--e1]
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from _timing import best  # benchmarks/ is on sys.path when a script runs
from wrec.nn.stablessm import MODES, StableSSM


def fwd_bwd(model: StableSSM, x: torch.Tensor):
    def go():
        model.zero_grad(set_to_none=True)
        model(x)[0].square().sum().backward()

    return go


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="L ∈ {100, 1000} only (CI smoke test)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--e1", action="store_true", help="also time one seed of the default curse-of-memory run")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch intra-op threads (on a shared machine 1 is far steadier: a 2-thread parallel region "
                         "stalls whenever another process holds one of the cores)")
    args = ap.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    H, N, B = 64, 64, 16
    lengths = (100, 1000) if args.quick else (100, 1000, 4000)
    print(f"H = {H}, d_state = {N}, B = {B}, float32, forward + backward; {os.cpu_count()} CPUs, torch threads "
          f"{torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}")
    model = StableSSM(H, H, batch_first=True, d_state=N, reparam="best", seed=0)
    g = torch.Generator().manual_seed(1)
    for L in lengths:
        x = torch.randn(B, L, H, generator=g)
        times, outs = {}, {}
        for mode in MODES:
            model.mode = mode
            with torch.no_grad():
                outs[mode] = model(x)[0]
            times[mode] = best(fwd_bwd(model, x), args.repeats, warmup=fwd_bwd(model, x[:, :50]))
        diff = max(float((outs[m] - outs["recurrent"]).abs().max()) for m in ("conv", "scan"))
        print(f"L = {L:5d}: " + "  ".join(f"{m} {times[m] * 1e3:9.1f} ms" for m in MODES)
              + f"   ratio recurrent/conv {times['recurrent'] / times['conv']:7.1f}"
              f"  recurrent/scan {times['recurrent'] / times['scan']:6.2f}   max |mode - recurrent| {diff:.1e}"
              + ("   (goal conv >= 5x recurrent)" if L == 1000 else ""))
    if args.e1:
        from wrec.experiments import stablessm_curse_of_memory as e1

        config = e1.Config(replicates=1)
        start = time.perf_counter()
        for task in config.tasks():
            e1.evaluate(task)
        print(f"Curse of memory at default size, one seed ({len(config.tasks())} tasks, widths {config.widths}, "
              f"{config.steps} steps), in this process: {time.perf_counter() - start:.0f} s (goal < 300 s)")


if __name__ == "__main__":
    main()
