"""A low-rank × sparse CfC cloning a Pendulum swing-up controller, then driving it in closed loop.

``wrec.nn.CfC`` is a closed-form continuous-time cell (Hasani et al., Nature Machine Intelligence 2022) with
``torch.nn.GRU``'s contract; ``rank=r`` and ``sparsity=s`` make every recurrent block W = (P Qᵀ) ⊙ M, P and Q
trained, the 0/1 mask M fixed (Tumma, Wang & Hasani, ICLR 2024). The expert (``wrec.tasks.control.expert``:
energy shaping with an LQR catch) and the network see the observation (cos θ, sin θ, θ̇); with
``--positions-only`` the network sees (cos θ, sin θ) and must infer the velocity from the sequence, as in the
paper's setting and ``wrec run cfc-closed-loop`` (that needs thousands of training steps, not a few seconds).

    python examples/cfc_control.py [--small] [--positions-only] [--hidden H] [--rank R] [--sparsity S]

Prints the held-out R² of the cloned actions and the closed-loop return normalised so that 0 is zero torque and 1
the expert.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from wrec.nn import CfC, recurrent_matrices, spectral_summary
from wrec.tasks import control


class Policy(torch.nn.Module):
    """CfC over the observed positions, then a linear readout of the torque (in units of the torque limit 2)."""

    def __init__(self, inputs: int, hidden: int, rank: int, sparsity: float) -> None:
        super().__init__()
        self.rnn = CfC(inputs, hidden, rank=rank, sparsity=sparsity, generator=torch.Generator().manual_seed(0))
        self.readout = torch.nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        out, h = self.rnn(x, h)  # x (T, B, inputs) -> out (T, B, hidden)
        return self.readout(out).squeeze(-1), h


def observed(obs: np.ndarray, positions_only: bool) -> torch.Tensor:
    """What the network sees: (..., 3) observations, or their positions (..., 2)."""
    return torch.as_tensor(control.positions_only(obs, "Pendulum-v1") if positions_only else obs, dtype=torch.float32)


def demonstrations(episodes: int, steps: int, seed: int, positions_only: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The expert's rollouts: what the network sees (T, B, 3 or 2) and the expert's torques / 2 (T, B)."""
    rec = control.pendulum_rollout(control.expert("Pendulum-v1"), episodes=episodes, steps=steps, seed=seed,
                                   record=True)
    return observed(rec["obs"], positions_only), torch.as_tensor(rec["action"] / 2, dtype=torch.float32)


def closed_loop(policy: Policy, episodes: int, seed: int, positions_only: bool) -> np.ndarray:
    """Returns of the cloned policy on fresh Pendulums; its hidden state is carried from step to step."""
    h = None

    def act(obs: np.ndarray) -> np.ndarray:
        nonlocal h
        x = observed(obs, positions_only)[None]  # one step: (1, B, 3 or 2)
        with torch.no_grad():
            u, h = policy(x, h)
        return 2 * u[0].numpy()

    return control.pendulum_rollout(act, episodes=episodes, seed=seed)["return"]


def main(small: bool = False, hidden: int = 32, rank: int = 8, sparsity: float = 0.5,
         positions_only: bool = False) -> dict[str, float]:
    """Clone, evaluate and return the numbers it prints."""
    episodes, steps, epochs = (32, 60, 100) if small else (128, 200, 600)
    torch.manual_seed(0)
    x, y = demonstrations(episodes, steps, 1, positions_only)
    x_test, y_test = demonstrations(32, steps, 2, positions_only)
    policy = Policy(x.shape[-1], hidden, rank, sparsity)
    opt = torch.optim.Adam(policy.parameters(), lr=1e-2)
    for epoch in range(epochs):
        loss = torch.nn.functional.mse_loss(policy(x)[0], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if epoch % max(epochs // 5, 1) == 0:
            print(f"epoch {epoch:4d}: train MSE {loss.item():.4f}")
    with torch.no_grad():
        r2 = 1 - torch.nn.functional.mse_loss(policy(x_test)[0], y_test).item() / y_test.var().item()

    expert = control.pendulum_rollout(control.expert("Pendulum-v1"), episodes=16, seed=3)["return"].mean()
    zero = control.pendulum_rollout(control.zero_policy, episodes=16, seed=3)["return"].mean()
    cloned = closed_loop(policy, 16, 3, positions_only).mean()
    result = {"held-out R2": r2, "normalised return": float((cloned - zero) / (expert - zero))}
    rho = {k: round(v["rho"], 2) for k, v in
           ((k, spectral_summary(W)) for k, W in recurrent_matrices(policy.rnn).items())}
    print(f"CfC({x.shape[-1]}, {hidden}, rank={rank}, sparsity={sparsity}); trained spectral radii {rho}")
    for name, value in result.items():
        print(f"{name} = {value:.3f}")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="a few seconds: 32 demonstrations, 100 epochs")
    parser.add_argument("--positions-only", action="store_true", help="the network sees (cos θ, sin θ) only")
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--sparsity", type=float, default=0.5)
    args = parser.parse_args()
    main(args.small, args.hidden, args.rank, args.sparsity, args.positions_only)
