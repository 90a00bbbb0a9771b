"""SLi-GRU in place of ``torch.nn.GRU`` in a training loop, on the adding problem.

``wrec.nn.SLiGRU`` (Moumen & Parcollet, ICASSP 2023) takes ``nn.GRU``'s arguments and returns ``(output, h_n)``
as it does, so swapping the cell is the only change: ``--cell gru`` trains the same model with ``nn.GRU``. The
adding problem (Hochreiter & Schmidhuber 1997) sums the two marked values of a sequence; predicting the constant
1 gives a mean squared error of 1/6, the baseline a recurrent network must beat.

    python examples/sligru_training.py [--small] [--cell sligru|gru] [--length T]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import wrec
from wrec.nn import SLiGRU


class Regressor(torch.nn.Module):
    """A recurrent layer and a linear readout of its last output."""

    def __init__(self, cell: str, hidden: int) -> None:
        super().__init__()
        if cell == "sligru":
            self.rnn = SLiGRU(2, hidden, batch_first=True)
        else:
            self.rnn = torch.nn.GRU(2, hidden, batch_first=True)
        self.readout = torch.nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)  # (B, T, hidden)
        return self.readout(out[:, -1]).squeeze(-1)


def main(small: bool = False, cell: str = "sligru", length: int = 50) -> dict[str, float]:
    """Train, then return the test MSE and the constant predictor's."""
    steps, length, hidden = (200, 10, 32) if small else (2_000, length, 64)
    torch.manual_seed(0)
    model = Regressor(cell, hidden)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    data = np.random.default_rng(1)  # one stream of training batches
    for step in range(steps):
        x, y = wrec.tasks.adding_problem(64, length, seed=data)  # a fresh batch each step
        loss = torch.nn.functional.mse_loss(model(torch.as_tensor(x, dtype=torch.float32)),
                                            torch.as_tensor(y, dtype=torch.float32))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % max(steps // 5, 1) == 0:
            print(f"step {step:5d}: train MSE {loss.item():.4f}")
    model.eval()
    x, y = wrec.tasks.adding_problem(1_000, length, seed=2)  # held-out sequences
    with torch.no_grad():
        mse = torch.nn.functional.mse_loss(model(torch.as_tensor(x, dtype=torch.float32)),
                                           torch.as_tensor(y, dtype=torch.float32)).item()
    result = {"test MSE": mse, "constant predictor MSE": wrec.tasks.CONSTANT_PREDICTOR_MSE}
    print(f"{cell}, T = {length}:")
    for name, value in result.items():
        print(f"{name} = {value:.4f}")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="a few seconds: T = 10, 200 steps")
    parser.add_argument("--cell", choices=["sligru", "gru"], default="sligru")
    parser.add_argument("--length", type=int, default=50)
    args = parser.parse_args()
    main(args.small, args.cell, args.length)
