"""Spike coding networks: the model (scn), measures (metrics), and the convex-optimisation view (qp)."""

from wrec.spiking import metrics, qp
from wrec.spiking.qp import is_feasible, rates_qp, readout_qp
from wrec.spiking.scn import (
    SCNParams,
    SCNRun,
    SCNState,
    SCNWeights,
    coding_loss,
    initial_state,
    input_current,
    optimal_weights,
    simulate,
    step,
)

__all__ = [
    "SCNParams",
    "SCNRun",
    "SCNState",
    "SCNWeights",
    "coding_loss",
    "initial_state",
    "input_current",
    "is_feasible",
    "metrics",
    "optimal_weights",
    "qp",
    "rates_qp",
    "readout_qp",
    "simulate",
    "step",
]
