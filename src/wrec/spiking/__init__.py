"""Spike coding networks: the model (scn), measures (metrics), and the convex-optimisation view (qp)."""

from wrec.spiking import learning, metrics, qp
from wrec.spiking.learning import AutoencoderLearning, LearningTrace, learn_autoencoder
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
    "AutoencoderLearning",
    "LearningTrace",
    "SCNParams",
    "SCNRun",
    "SCNState",
    "SCNWeights",
    "coding_loss",
    "initial_state",
    "input_current",
    "is_feasible",
    "learn_autoencoder",
    "learning",
    "metrics",
    "optimal_weights",
    "qp",
    "rates_qp",
    "readout_qp",
    "simulate",
    "step",
]
