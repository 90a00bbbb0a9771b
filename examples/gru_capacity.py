"""Memory capacity and IPC of a torch ``nn.GRU``, through ``wrec.state_matrix``.

``wrec.state_matrix(module, u, washout=...)`` runs any module with ``torch.nn.GRU``'s contract (``nn.RNN``, ``GRU``,
``LSTM``, ``wrec.nn.SLiGRU``, ``CfC``, ...) on the scalar input u from its zero state, on a float64 copy in eval
mode under ``no_grad``, and returns the last layer's hidden states (T − washout, hidden_size), aligned with
``u[washout:]``. The capacities are then those of any state matrix: the sum over every target cannot exceed the
rank of the states (Dambre et al., Sci. Rep. 2012).

    python examples/gru_capacity.py [--small] [--hidden H]
"""

from __future__ import annotations

import argparse

import torch

import wrec


def main(small: bool = False, hidden: int = 64) -> dict[str, float]:
    """Measure an untrained GRU's capacities and return the numbers it prints."""
    T, washout = (6_000, 500) if small else (20_000, 1_000)
    hidden = 32 if small else hidden
    # --8<-- [start:measure]
    torch.manual_seed(0)  # the GRU's initial weights (torch's default init)
    gru = torch.nn.GRU(input_size=1, hidden_size=hidden)
    u = wrec.tasks.uniform_input(T, seed=1)  # i.i.d. U[-1, 1]
    X = wrec.state_matrix(gru, u, washout=washout)  # (T - washout, hidden)
    u = u[washout:]

    mc = wrec.capacity.memory_capacity(X, u, max_delay=100)
    ipc = wrec.capacity.ipc(X, u, max_delay={1: 100, 2: 20, 3: 10})
    # --8<-- [end:measure]
    result = {"MC": mc.total, "IPC total": ipc.total, "rank": float(ipc.rank)}
    result.update({f"C_{int(d)}": float(c) for d, c in ipc.by_degree.items()})
    print(f"nn.GRU(1, {hidden}): states {X.shape}")
    for name, value in result.items():
        print(f"{name} = {value:.2f}")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="a few seconds: H = 32, T = 6000")
    parser.add_argument("--hidden", type=int, default=64)
    args = parser.parse_args()
    main(args.small, args.hidden)
