"""Trainable recurrent cells as ``torch.nn.Module``s that follow ``torch.nn.GRU``'s contract (needs the
``[torch]`` extra)."""

from wrec.nn.sligru import LiGRU, SLiGRU, eta_bound, ligru_step
from wrec.nn.stablessm import (
    DiagonalSSMKernel,
    LinearDiagonalSSM,
    StableSSM,
    gradient_scale,
    memory_function,
    reparam_fn,
    reparam_inverse,
)

__all__: list[str] = [
    "DiagonalSSMKernel", "LiGRU", "LinearDiagonalSSM", "SLiGRU", "StableSSM", "eta_bound", "gradient_scale",
    "ligru_step", "memory_function", "reparam_fn", "reparam_inverse",
]
