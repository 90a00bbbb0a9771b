"""CfC training step on CPU: low-rank sparse (r = H/4, s = 0.8) against dense recurrence, wrec against ncps, and
both against ``torch.nn.GRU`` (a native C++ kernel) of the same size.

``CfC(H, H)`` one layer, 'default' mode, float32, input (T, B, H) with (B, T, H) = (32, 200, 64), loss
``output.square().mean()``; one training step = forward + backward. ncps (when installed) is its ``CfCCell(H, H,
backbone_layers=0)`` run over the same sequence in a Python loop (ncps's ``CfC`` wrapper squeezes the timespans to (B,),
which broadcasts wrongly against (B, H) for B ≠ H). Every time is the minimum of ``--repeats`` runs after 2 warm-ups,
all in this one process; ``ratio = baseline_time / wrec_time``. The structured cell computes W = (P Qᵀ) ⊙ M once per
sequence, so its per-step cost is the dense one: the ratio measures that overhead, not a speed-up (a sparse kernel would
not pay at H = 64). On a shared machine ``--threads 1`` gives steadier figures; the load average is printed.

    python benchmarks/cfc.py [--quick] [--repeats 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import os

import torch

from _timing import best  # benchmarks/ is on sys.path when a script runs
from wrec.nn import CfC

try:
    from ncps.torch import CfCCell as NcpsCfCCell
except ImportError:  # optional cross-check library
    NcpsCfCCell = None


class NcpsLoop(torch.nn.Module):
    """ncps's cell over a (T, B, F) sequence, Δt = 1, h₀ = 0."""

    def __init__(self, n_in: int, hidden: int) -> None:
        super().__init__()
        self.cell = NcpsCfCCell(n_in, hidden, backbone_layers=0)
        self.hidden = hidden

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = x.new_zeros(x.size(1), self.hidden)
        ts = x.new_ones(x.size(1), 1)
        outs = []
        for t in range(x.size(0)):
            h, _ = self.cell(x[t], h, ts)
            outs.append(h)
        return torch.stack(outs), h


def step_time(model: torch.nn.Module, x: torch.Tensor, repeats: int) -> float:
    """Minimum wall time (s) of one forward + backward of ``model`` on ``x``."""

    def total():
        model.zero_grad(set_to_none=True)
        model(x)[0].square().mean().backward()

    return best(total, repeats, warmup=lambda: (total(), total()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    B, T, H = (4, 20, 16) if args.quick else (32, 200, 64)
    r, s = H // 4, 0.8
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(T, B, H, generator=gen)
    print(f"(B, T, H) = ({B}, {T}, {H}), r = {r}, s = {s}; forward + backward, float32; {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}, torch threads {torch.get_num_threads()}")
    models = {
        "wrec CfC dense": CfC(H, H, generator=gen),
        f"wrec CfC r={r} s={s}": CfC(H, H, rank=r, sparsity=s, generator=gen),
        "torch.nn.GRU": torch.nn.GRU(H, H),
    }
    if NcpsCfCCell is not None:
        models["ncps CfCCell loop"] = NcpsLoop(H, H)
    else:
        print("ncps is not installed: its comparison is skipped")
    times = {name: step_time(m, x, args.repeats) for name, m in models.items()}
    for name, t in times.items():
        print(f"  {name:<26} {1e3 * t:9.2f} ms")
    dense = times["wrec CfC dense"]
    print(f"ratio dense / low-rank sparse (wrec)  = {dense / times[f'wrec CfC r={r} s={s}']:.2f}")
    print(f"ratio nn.GRU / wrec dense CfC         = {times['torch.nn.GRU'] / dense:.2f}")
    if "ncps CfCCell loop" in times:
        print(f"ratio ncps / wrec (dense CfC)         = {times['ncps CfCCell loop'] / dense:.2f}")


if __name__ == "__main__":
    main()
