"""StableSSM modes: forward + backward of one block in the recurrent (step loop), conv (FFT) and scan (chunked
scan) modes, which compute the same map.

One StableSSM layer, H = 64 channels, d_state N = 64 (32 complex modes), batch B = 16, float32, CPU, at
L ∈ {100, 1000, 4000}; the loss is the sum of squared outputs. ``ratio = recurrent_time / mode_time``, all
measured in this one process (minimum over ``--repeats`` after a warm-up). Goals at L = 1000: conv ≥ 5× recurrent
and scan ≥ 1× recurrent. ``--e1`` also times one seed of the curse-of-memory experiment at its default size (goal:
< 5 min on 2 cores). The machine may be shared: the load average is printed.

    python benchmarks/stablessm_modes.py [--quick] [--repeats 3] [--threads N] [--e1]

``figures(B, L, H)`` returns one size's times and ratios as a dict (for a table of every benchmark).
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from _timing import best  # benchmarks/ is on sys.path when a script runs
from wrec.nn.stablessm import MODES, StableSSM

GOALS = {"recurrent_over_conv": 5.0, "recurrent_over_scan": 1.0}  # at L = 1000
GOAL_L = 1000


def fwd_bwd(model: StableSSM, x: torch.Tensor):
    def go():
        model.zero_grad(set_to_none=True)
        model(x)[0].square().sum().backward()

    return go


def figures(B: int = 16, L: int = 1000, H: int = 64, d_state: int | None = None, repeats: int = 3,
            modes: tuple[str, ...] = MODES) -> dict:
    """Forward + backward times (s) of one float32 block per mode, recurrent/mode ratios and the largest output
    difference from the recurrence, at batch B, length L, H channels, d_state (default H); times and ratios of
    modes not in ``modes`` are None."""
    N = H if d_state is None else d_state
    model = StableSSM(H, H, batch_first=True, d_state=N, reparam="best", seed=0)
    x = torch.randn(B, L, H, generator=torch.Generator().manual_seed(1))
    times: dict[str, float | None] = dict.fromkeys(MODES)
    outs = {}
    for mode in modes:
        model.mode = mode
        with torch.no_grad():
            outs[mode] = model(x)[0]
        times[mode] = best(fwd_bwd(model, x), repeats, warmup=fwd_bwd(model, x[:, :50]))
    rec = times["recurrent"]
    diffs = [float((outs[m] - outs["recurrent"]).abs().max()) for m in outs if m != "recurrent" and "recurrent" in outs]
    return {"B": B, "L": L, "H": H, "d_state": N, "dtype": "float32", "threads": torch.get_num_threads(),
            "load": os.getloadavg()[0], **{f"{m}_s": times[m] for m in MODES},
            **{f"recurrent_over_{m}": rec / t if rec and t else None for m, t in times.items() if m != "recurrent"},
            "max_abs_diff": max(diffs, default=None)}


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
    for L in lengths:
        f = figures(B, L, H, N, args.repeats)
        print(f"L = {L:5d}: " + "  ".join(f"{m} {f[f'{m}_s'] * 1e3:9.1f} ms" for m in MODES)
              + f"   ratio recurrent/conv {f['recurrent_over_conv']:7.1f}  recurrent/scan "
              f"{f['recurrent_over_scan']:6.2f}   max |mode - recurrent| {f['max_abs_diff']:.1e}   load "
              f"{f['load']:.1f}")
        if L == GOAL_L:
            print("    goals at L = 1000: " + ", ".join(
                f"{k.replace('_over_', '/')} {f[k]:.2f} (goal >= {g:g}: {'met' if f[k] >= g else 'NOT met'})"
                for k, g in GOALS.items()))
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
