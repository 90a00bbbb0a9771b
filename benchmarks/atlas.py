"""``wrec.states.state_matrix`` against each family's own forward loop: states per second, one adapter at a time.

For every family the baseline is the plain run its own code offers for one input sequence: ``reservoir.run``;
``spiking.simulate`` on the precomputed current, recording r only; ``RSNN.hidden`` (the spike trains) on a float64
copy under ``torch.no_grad()``; one full-sequence ``forward`` of a float64 eval copy of each torch module under
``torch.no_grad()`` (its output: the last layer's hidden sequence; for StableSSM, in its default conv mode, the layer's
output, while the adapter returns the SSM state, d_state times wider — so a second row times its forward in scan mode,
which materialises that state too; for LinearDiagonalSSM its output C h); the bare
callable. Each row also prints the largest difference between what the two return, where they return the same
thing (after undoing the adapter's filtering of RSNN spikes, and its C h for LinearDiagonalSSM).
``ratio = baseline_time / adapter_time``; goal >= 0.91 (the adapter no slower than 1.1× the plain forward). The
callable's baseline takes microseconds, so its ratio only shows the adapter's fixed cost (checking u and X, ~0.1 ms).

Sizes: T = 10⁴ steps (``--quick``: 2000) of u ~ U[−1, 1]; ESN N = 200; SCN N = 40, J = 1; RSNN one layer of 100
LIF neurons (T/5 steps: its step loop is slow); nn.GRU / LSTM / wrec LiGRU / CfC with 64 units; StableSSM with
H = 16 channels and d_state = 32; LinearDiagonalSSM with 64 modes; the default chunks of 1024 steps. Every time is
the minimum of ``--repeats`` runs after a warm-up, all in this one process. The machine may be shared: the load
average is printed, and torch runs on one thread for steadier figures.

    python benchmarks/atlas.py [--quick] [--repeats 3]
"""

from __future__ import annotations

import argparse
import copy
import os
from collections.abc import Callable

import numpy as np
import torch

from _timing import best  # benchmarks/ is on sys.path when a script runs
from wrec import reservoir, weights
from wrec.nn import CfC, LiGRU, LinearDiagonalSSM, StableSSM
from wrec.spiking import RSNN, SCN, SCNParams, input_current, optimal_weights, simulate
from wrec.states import state_matrix


def float64_eval(module: torch.nn.Module) -> torch.nn.Module:
    return copy.deepcopy(module).to(torch.float64).eval()


def torch_forward(module: torch.nn.Module, u: np.ndarray) -> Callable[[], np.ndarray]:
    """One forward call of a float64 eval copy over the whole sequence (what a user would write); its output."""
    net = float64_eval(module)
    batch_first = getattr(net, "batch_first", False)
    x = torch.as_tensor(u, dtype=torch.float64)[:, None, None]
    x = x.transpose(0, 1) if batch_first else x

    def go() -> np.ndarray:
        with torch.no_grad():
            out = net(x)
        out = out[0] if isinstance(out, tuple) else out
        return (out[0] if batch_first else out[:, 0]).numpy()

    return go


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="T = 2000 (CI smoke test)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    T = 2000 if args.quick else 10_000
    u = np.random.default_rng(0).uniform(-1.0, 1.0, T)
    g = torch.Generator().manual_seed(0)
    print(f"T = {T} steps; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, torch threads 1")
    print(f"  {'family':<34} {'baseline':>9} {'adapter':>9}  {'states/s':>9}  {'same states':>11}  ratio = "
          "baseline / adapter (goal >= 0.91)")

    def row(name: str, baseline: Callable[[], object], adapter: Callable[[], np.ndarray], steps: int = T,
            same: Callable[[object, np.ndarray], float] | None = None) -> None:
        t_base = best(baseline, args.repeats, warmup=baseline)
        t_adapt = best(adapter, args.repeats, warmup=adapter)
        diff = "" if same is None else f"{same(baseline(), adapter()):.1e}"
        print(f"  {name:<34} {t_base:8.4f}s {t_adapt:8.4f}s  {steps / t_adapt:9.3g}  {diff:>11}  "
              f"{t_base / t_adapt:5.2f}")

    def equal(a: object, b: np.ndarray) -> float:
        return float(np.max(np.abs(np.asarray(a) - b)))

    esn = reservoir.ESN(weights.gaussian(200, spectral_radius=0.9, seed=1), input_scale=0.5, seed=2)
    row("reservoir ESN, N = 200", lambda: reservoir.run(esn, u), lambda: state_matrix(esn, u), same=equal)

    D = np.r_[np.full(20, 0.1), np.full(20, -0.1)][None]
    scn = SCN(optimal_weights(D, mu=1e-4), SCNParams(leak=10.0, dt=1e-3))
    c = input_current(np.r_[0.0, u][:, None], 10.0, 1e-3)
    row("spike coding network, N = 40", lambda: simulate(scn.weights, c, scn.constants, record=("r",)).r,
        lambda: state_matrix(scn, u), same=equal)

    steps = T // 5
    rsnn = RSNN(1, (100,), 2, generator=g)
    net = float64_eval(rsnn)
    x = torch.as_tensor(3 * u[:steps], dtype=torch.float64)[:, None, None]
    kappa = rsnn.params.kappa

    def rsnn_hidden() -> np.ndarray:
        with torch.no_grad():
            return net.hidden(x)[-1][:, 0].numpy()

    def unfiltered(z: object, r: np.ndarray) -> float:  # z_t = r_t − κ r_{t−1}
        return equal(z, r - kappa * np.vstack([np.zeros((1, r.shape[1])), r[:-1]]))

    row("RSNN (LIF), H = 100", rsnn_hidden, lambda: state_matrix(rsnn, 3 * u[:steps]), steps, same=unfiltered)

    for name, module in [("torch.nn.GRU, H = 64", torch.nn.GRU(1, 64)),
                         ("torch.nn.LSTM, H = 64", torch.nn.LSTM(1, 64, batch_first=True)),
                         ("wrec.nn.LiGRU, H = 64", LiGRU(1, 64, ff_normalization="layernorm")),
                         ("wrec.nn.CfC, H = 64", CfC(1, 64, generator=g))]:
        row(name, torch_forward(module, u), lambda module=module: state_matrix(module, u), same=equal)
    ssm = StableSSM(1, 16, d_state=32, seed=0)
    row("wrec.nn.StableSSM, H = 16, N = 32", torch_forward(ssm, u), lambda: state_matrix(ssm, u))
    scan = copy.deepcopy(ssm)
    scan.mode = "scan"  # the same map (the class docstring), its hidden state materialised as the adapter's is
    row("  its forward in mode='scan'", torch_forward(scan, u), lambda: state_matrix(ssm, u))

    lds = LinearDiagonalSSM(1, 64, 1, seed=0)
    lds64 = float64_eval(lds)
    xl = torch.as_tensor(u, dtype=torch.float64)[None, :, None]

    def lds_forward() -> np.ndarray:
        with torch.no_grad():
            return lds64(xl)[0].numpy()

    C = lds64.C.detach().numpy()
    row("LinearDiagonalSSM, m = 64", lds_forward, lambda: state_matrix(lds, u),
        same=lambda y, h: equal(y, h @ C.T))

    def delay(v: np.ndarray) -> np.ndarray:
        return np.stack([v, np.r_[0.0, v[:-1]]], 1)

    row("callable (a delay line)", lambda: delay(u), lambda: state_matrix(delay, u), same=equal)


if __name__ == "__main__":
    main()
