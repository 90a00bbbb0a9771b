"""SLi-GRU training step on CPU: the fused backend (hand-written backward through time) against the loop backend
(autograd over the pure step), and both against ``torch.nn.GRU`` (a native C++ kernel) of the same size.

One layer, ``SLiGRU(H, H)`` with the default BatchNorm feed-forward normaliser, float32, input (T, B, H), loss
``output.square().mean()``, at (B, T, H) = (16, 200, 256), (8, 500, 128), (32, 100, 512). Forward is
timed with autograd on (the training forward), backward alone after an untimed forward, total = one forward +
backward. Each time is the minimum of ``--repeats`` runs after 2 warm-ups, all in this one process;
``ratio = loop_time / fused_time``. ``--compile`` adds the loop with a ``torch.compile``d step (slow to
compile). On a shared machine ``--threads 1`` gives far steadier figures (two threads stall when another process
holds a core).
Goal: total ratio ≥ 1.5 at (16, 200, 256). The machine may be shared: the load average is printed.

    python benchmarks/sligru.py [--quick] [--repeats 5] [--compile]
"""

from __future__ import annotations

import argparse
import os

import torch

from _timing import best  # benchmarks/ is on sys.path when a script runs
from wrec.nn import sligru
from wrec.nn.sligru import SLiGRU

SIZES = [(16, 200, 256), (8, 500, 128), (32, 100, 512)]


def timings(model: torch.nn.Module, x: torch.Tensor, repeats: int) -> dict[str, float]:
    """Forward, backward and total times (s) of one training step of ``model`` on ``x``."""

    def forward():
        return model(x)[0].square().mean()

    def total():
        model.zero_grad(set_to_none=True)
        forward().backward()

    for _ in range(2):
        total()
    t_fwd = best(forward, repeats)
    t_tot = best(total, repeats)
    back = []
    for _ in range(repeats):
        loss = forward()
        back.append(best(loss.backward, 1))
    return {"forward": t_fwd, "backward": min(back), "total": t_tot}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--compile", action="store_true", help="also time the loop with a torch.compile'd step")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = [(4, 20, 32)] if args.quick else SIZES
    print(f"CPU, float32, torch {torch.__version__}, {torch.get_num_threads()} torch threads, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    for B, T, H in sizes:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(T, B, H, generator=g)
        res = {}
        for backend in ("loop", "fused"):
            model = SLiGRU(H, H, backend=backend)
            res[backend] = timings(model, x, args.repeats)
        res["nn.GRU"] = timings(torch.nn.GRU(H, H), x, args.repeats)
        if args.compile:
            step = sligru.ligru_step
            sligru.ligru_step = torch.compile(step, dynamic=False)
            try:
                res["loop+compile"] = timings(SLiGRU(H, H, backend="loop"), x, args.repeats)
            finally:
                sligru.ligru_step = step
        print(f"(B, T, H) = ({B}, {T}, {H})")
        for name, r in res.items():
            print(f"  {name:<13} forward {r['forward'] * 1e3:8.1f} ms  backward {r['backward'] * 1e3:8.1f} ms  "
                  f"total {r['total'] * 1e3:8.1f} ms")
        ratio = {k: res["loop"][k] / res["fused"][k] for k in res["loop"]}
        print(f"  ratio = loop / fused:   forward {ratio['forward']:.2f}  backward {ratio['backward']:.2f}  "
              f"total {ratio['total']:.2f}" + ("   (goal total >= 1.5)" if (B, T, H) == SIZES[0] else ""))
        if "loop+compile" in res:
            print(f"  ratio = loop / compile: total {res['loop']['total'] / res['loop+compile']['total']:.2f}")
        print(f"  time relative to nn.GRU (total): fused {res['fused']['total'] / res['nn.GRU']['total']:.2f}x, "
              f"loop {res['loop']['total'] / res['nn.GRU']['total']:.2f}x")


if __name__ == "__main__":
    main()
