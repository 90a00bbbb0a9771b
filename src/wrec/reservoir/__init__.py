"""Rate networks without trained recurrence: parameter records, pure steps, and the batched runner."""

from wrec.reservoir.models import (
    ESN,
    LeakyESN,
    Linear,
    Rate,
    esn_step,
    leaky_esn_step,
    linear_step,
    rate_step,
)
from wrec.reservoir.run import run

__all__ = [
    "ESN",
    "LeakyESN",
    "Linear",
    "Rate",
    "esn_step",
    "leaky_esn_step",
    "linear_step",
    "rate_step",
    "run",
]
