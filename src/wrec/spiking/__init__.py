"""Spike coding networks: the model (scn), local learning rules (learning), measures (metrics), and the
convex-optimisation view (qp)."""

from wrec.spiking import learning, metrics, qp
from wrec.spiking.learning import (
    AutoencoderLearning,
    LDSLearning,
    LDSTest,
    LDSTrace,
    LearningTrace,
    autonomous_error,
    autonomous_test,
    effective_dynamics,
    learn_autoencoder,
    learn_lds,
    slow_update,
)
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
    "LDSLearning",
    "LDSTest",
    "LDSTrace",
    "LearningTrace",
    "SCNParams",
    "SCNRun",
    "SCNState",
    "SCNWeights",
    "autonomous_error",
    "autonomous_test",
    "coding_loss",
    "effective_dynamics",
    "initial_state",
    "input_current",
    "is_feasible",
    "learn_autoencoder",
    "learn_lds",
    "learning",
    "metrics",
    "optimal_weights",
    "qp",
    "rates_qp",
    "readout_qp",
    "simulate",
    "slow_update",
    "step",
]
