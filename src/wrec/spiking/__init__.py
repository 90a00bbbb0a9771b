"""Spiking networks. Spike coding networks (NumPy): the model (scn), local learning rules (learning), measures
(metrics), and the convex-optimisation view (qp). Recurrent (A)LIF networks trained by rules of varying locality
(torch, the ``[snn]`` extra): the network (rsnn) and the rules (rules).

Every name loads from its submodule on first use, so importing this package imports neither SciPy's optimisation
and signal modules nor torch.
"""

from typing import TYPE_CHECKING

from wrec._lazy import attach

_EXPORTS = {
    **dict.fromkeys(["AutoencoderInput", "AutoencoderLearning", "LDSInput", "LDSLearning",
                     "LDSTest", "LDSTrace", "LearningTrace", "autonomous_error",
                     "autonomous_test", "effective_dynamics", "learn_autoencoder", "learn_lds", "slow_update"],
                    "learning"),
    **dict.fromkeys(["ConvexInput", "ConvexLearning", "ConvexTrace", "convex_fit_update", "fit_convex", "is_feasible",
                     "rates_qp", "readout_qp", "spiking_readout"], "qp"),
    **dict.fromkeys(["SCN", "Drive",
                     "SCNParams", "SCNRun", "SCNState", "SCNWeights", "coding_loss", "initial_state", "input_current",
                     "optimal_weights", "simulate", "step"], "scn"),
    # torch
    **dict.fromkeys(["RSNN", "LIFParameters", "LIFState", "lif_step", "rsnn_loss", "spike", "surrogate_derivative",
                     "TriangleSpike", "FastSigmoidSpike", "ATanSpike", "FeedbackLinear"], "rsnn"),
    **dict.fromkeys(["BPTT", "EProp", "LocalErrors", "FeedbackAlignment", "DirectFeedbackAlignment", "make_rule"],
                    "rules"),
}

__all__ = [
    "BPTT",
    "RSNN",
    "SCN",
    "ATanSpike",
    "AutoencoderInput",
    "AutoencoderLearning",
    "ConvexInput",
    "ConvexLearning",
    "ConvexTrace",
    "DirectFeedbackAlignment",
    "Drive",
    "EProp",
    "FastSigmoidSpike",
    "FeedbackAlignment",
    "FeedbackLinear",
    "LDSInput",
    "LDSLearning",
    "LDSTest",
    "LDSTrace",
    "LIFParameters",
    "LIFState",
    "LearningTrace",
    "LocalErrors",
    "SCNParams",
    "SCNRun",
    "SCNState",
    "SCNWeights",
    "TriangleSpike",
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
    "lif_step",
    "make_rule",
    "metrics",
    "optimal_weights",
    "qp",
    "rates_qp",
    "readout_qp",
    "rsnn",
    "rsnn_loss",
    "rules",
    "simulate",
    "slow_update",
    "spike",
    "spiking_readout",
    "step",
    "surrogate_derivative",
]

__getattr__, __dir__ = attach(globals(), _EXPORTS, submodules=["learning", "metrics", "qp", "rsnn", "rules", "scn"])

if TYPE_CHECKING:
    from wrec.spiking import learning, metrics, qp, rsnn, rules
    from wrec.spiking.learning import (
        AutoencoderInput,
        AutoencoderLearning,
        LDSInput,
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
        ConvexInput,
        ConvexLearning,
        ConvexTrace,
        convex_fit_update,
        fit_convex,
        is_feasible,
        rates_qp,
        readout_qp,
        spiking_readout,
    )
    from wrec.spiking.rsnn import (
        RSNN,
        ATanSpike,
        FastSigmoidSpike,
        FeedbackLinear,
        LIFParameters,
        LIFState,
        TriangleSpike,
        lif_step,
        rsnn_loss,
        spike,
        surrogate_derivative,
    )
    from wrec.spiking.rules import BPTT, DirectFeedbackAlignment, EProp, FeedbackAlignment, LocalErrors, make_rule
    from wrec.spiking.scn import (
        SCN,
        Drive,
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

del TYPE_CHECKING, attach
