"""Online e-prop against autograd BPTT on a recurrent LIF network: time and peak memory per gradient.

One gradient (forward + backward or forward with traces) of ``RSNN(64, (100,), 10)`` on a batch of B = 64 digits
(direct coding, float32) for T ∈ {25, 100, 400}. BPTT stores the trajectory, so its memory
grows with T; online e-prop keeps (B, H, N) eligibility traces, independent of T, and does more arithmetic per step.
Also timed: e-prop's autograd form (the same gradient, tested to 1e-10; what ``wrec run snn-locality`` trains with),
whose memory grows with T like BPTT's.

- time: minimum over ``--repeats`` after a warm-up, both rules in this one process; ``ratio = BPTT / e-prop``.
- peak memory: each (rule, T) runs once in a fresh subprocess with glibc told to map every block of ≥ 4 KiB
  separately (so freed tensors leave the resident set); the peak resident set (VmHWM, reset through
  /proc/self/clear_refs just before the call) minus the resident set at that moment (Linux only). Also the exact
  bytes autograd saves for BPTT's backward (``saved_tensors_hooks``; a tensor saved twice counts twice) and the
  bytes of e-prop's traces, counted from their shapes.

    python benchmarks/eprop.py [--quick] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import torch

from _timing import best  # benchmarks/ is on sys.path when a script runs
from wrec.spiking.rsnn import RSNN
from wrec.spiking.rules import BPTT, EProp
from wrec.tasks.spikes import digits, encode

H, B, N = 100, 64, 64
# glibc: every block of a page or more gets its own mapping and is unmapped when freed, so the resident set
# follows the live tensors instead of the allocator's retained heap
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "4096", "MALLOC_TRIM_THRESHOLD_": "0", "MALLOC_TOP_PAD_": "0"}


def problem(T: int) -> tuple[RSNN, torch.Tensor, torch.Tensor]:
    d = digits(0)
    x = encode(torch.tensor(d.x_train[:B], dtype=torch.float32), "direct", T=T).contiguous()
    net = RSNN(N, (H,), 10, generator=torch.Generator().manual_seed(0))
    return net, x, torch.tensor(d.y_train[:B])


def gradient(rule, net: RSNN, x: torch.Tensor, y: torch.Tensor) -> None:
    net.zero_grad(set_to_none=True)
    rule.compute_grads(net, x, y)


def _status(field: str) -> int:
    """A /proc/self/status field in bytes (VmRSS, VmHWM)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure_memory(rule_name: str, T: int) -> dict:
    """Run in a fresh process: peak RSS growth of one gradient, plus the counted bytes."""
    net, x, y = problem(T)
    rule = BPTT() if rule_name == "bptt" else EProp()
    gradient(rule, net, x[:2], y)  # warm-up on 2 steps: torch's lazy initialisation is not counted
    counted = 0
    if rule_name == "bptt":
        def pack(t):
            nonlocal counted
            counted += t.numel() * t.element_size()
            return t
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            gradient(rule, net, x, y)
    else:
        # ē and the gradient accumulators for "in" (H×N) and "rec" (H×H), ε^v rows, the readout trace
        counted = 4 * (B * H * (N + H) + H * (N + H) + B * (N + H) + B * H)
    net.zero_grad(set_to_none=True)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak resident set to the current one
    base = _status("VmRSS")
    gradient(rule, net, x, y)
    return {"peak": _status("VmHWM") - base, "counted": counted}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="T ∈ {25, 100} and one repeat (CI smoke test)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1: steadier on a shared machine)")
    ap.add_argument("--memory", nargs=2, metavar=("RULE", "T"), help=argparse.SUPPRESS)  # the subprocess mode
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.memory:
        print(json.dumps(measure_memory(args.memory[0], int(args.memory[1]))))
        return
    lengths = (25, 100) if args.quick else (25, 100, 400)
    repeats = 1 if args.quick else args.repeats
    print(f"RSNN(64, (100,), 10) recurrent LIF, B = {B}, float32, one gradient per call; torch {torch.__version__}, "
          f"{args.threads} thread(s), {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(f"{'T':>5} {'BPTT s':>9} {'e-prop s':>9} {'autograd e-prop s':>18} {'time BPTT/e-prop':>17} "
          f"{'BPTT peak MB':>13} "
          f"{'e-prop peak MB':>15} {'mem BPTT/e-prop':>16} {'BPTT saved MB':>14} {'traces MB':>10}")
    for T in lengths:
        net, x, y = problem(T)
        times = {}
        for name, rule in (("bptt", BPTT()), ("eprop", EProp()), ("autograd", EProp(online=False))):
            times[name] = best(lambda r=rule, n=net, x=x, y=y: gradient(r, n, x, y), repeats,
                               warmup=lambda r=rule, n=net, x=x, y=y: gradient(r, n, x[:5], y))
        mem = {}
        for name in ("bptt", "eprop"):
            out = subprocess.run([sys.executable, __file__, "--memory", name, str(T), "--threads", str(args.threads)],
                                 check=True, capture_output=True, text=True, env={**os.environ, **MALLOC_ENV})
            mem[name] = json.loads(out.stdout)
        mb = 1 / 2 ** 20
        print(f"{T:>5} {times['bptt']:>9.3f} {times['eprop']:>9.3f} {times['autograd']:>18.3f} "
              f"{times['bptt'] / times['eprop']:>17.2f} "
              f"{mem['bptt']['peak'] * mb:>13.1f} {mem['eprop']['peak'] * mb:>15.1f} "
              f"{mem['bptt']['peak'] / max(mem['eprop']['peak'], 1):>16.2f} {mem['bptt']['counted'] * mb:>14.1f} "
              f"{mem['eprop']['counted'] * mb:>10.1f}")
    print("ratio = BPTT / e-prop (time < 1: e-prop is slower; memory > 1: BPTT needs more). Peak = resident-set "
          "growth during one call, in a fresh process.")


if __name__ == "__main__":
    main()
