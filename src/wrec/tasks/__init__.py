"""Data: input streams and tasks.

Every name loads from its submodule on first use: SciPy's signal and special functions with the streams that need
them, torch and scikit-learn (the ``[snn]`` extra) with the spike data, gymnasium with ``wrec.tasks.control``.
"""

from typing import TYPE_CHECKING

from wrec._lazy import attach

_EXPORTS = {
    "CONSTANT_PREDICTOR_MSE": "adding", "adding_problem": "adding",
    "gaussian_input": "inputs", "uniform_input": "inputs", "narma10": "narma",
    **dict.fromkeys(["MEMORIES", "apply_memory", "linear_functional", "memory_kernel"], "memory"),
    **dict.fromkeys(["leaky_integral", "linear_response", "smoothed_white_noise"], "signals"),
    **dict.fromkeys(["SpikePatterns", "Split", "digits", "encode", "pattern_templates", "spike_patterns"], "spikes"),
}

__all__ = [
    "CONSTANT_PREDICTOR_MSE",
    "MEMORIES",
    "SpikePatterns",
    "Split",
    "adding_problem",
    "apply_memory",
    "digits",
    "encode",
    "gaussian_input",
    "leaky_integral",
    "linear_functional",
    "linear_response",
    "memory_kernel",
    "narma10",
    "pattern_templates",
    "smoothed_white_noise",
    "spike_patterns",
    "uniform_input",
]

__getattr__, __dir__ = attach(globals(), _EXPORTS,
                              submodules=["adding", "control", "inputs", "memory", "narma", "signals", "spikes"])

if TYPE_CHECKING:
    from wrec.tasks.adding import CONSTANT_PREDICTOR_MSE, adding_problem
    from wrec.tasks.inputs import gaussian_input, uniform_input
    from wrec.tasks.memory import MEMORIES, apply_memory, linear_functional, memory_kernel
    from wrec.tasks.narma import narma10
    from wrec.tasks.signals import leaky_integral, linear_response, smoothed_white_noise
    from wrec.tasks.spikes import SpikePatterns, Split, digits, encode, pattern_templates, spike_patterns

del TYPE_CHECKING, attach
