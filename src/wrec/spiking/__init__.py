"""Spiking networks. Spike coding networks (NumPy): the model (scn), local learning rules (learning), measures
(metrics), and the convex-optimisation view (qp). Recurrent (A)LIF networks trained by rules of varying locality
(torch, the ``[snn]`` extra): the network (rsnn) and the rules (rules), imported on first use."""

import importlib

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
from wrec.spiking.qp import (
    ConvexLearning,
    ConvexTrace,
    convex_fit_update,
    fit_convex,
    is_feasible,
    rates_qp,
    readout_qp,
    spiking_readout,
)
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
    "ConvexLearning",
    "ConvexTrace",
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
    "convex_fit_update",
    "effective_dynamics",
    "fit_convex",
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
    "spiking_readout",
    "step",
]

_TORCH = {"RSNN": "rsnn", "LIFParameters": "rsnn", "LIFState": "rsnn", "lif_step": "rsnn", "rsnn_loss": "rsnn",
          "spike": "rsnn", "surrogate_derivative": "rsnn", "TriangleSpike": "rsnn", "FastSigmoidSpike": "rsnn",
          "ATanSpike": "rsnn", "FeedbackLinear": "rsnn", "BPTT": "rules", "EProp": "rules", "LocalErrors": "rules",
          "FeedbackAlignment": "rules", "DirectFeedbackAlignment": "rules", "make_rule": "rules"}
__all__ += [*_TORCH, "rsnn", "rules"]


def __getattr__(name: str) -> object:  # torch is optional: the recurrent spiking networks load on first use
    if name in _TORCH:
        return getattr(importlib.import_module(f"wrec.spiking.{_TORCH[name]}"), name)
    if name in ("rsnn", "rules"):
        return importlib.import_module(f"wrec.spiking.{name}")
    raise AttributeError(f"module 'wrec.spiking' has no attribute {name!r}")
