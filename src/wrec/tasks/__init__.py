"""Data: input streams and tasks."""

import importlib

from wrec.tasks.adding import CONSTANT_PREDICTOR_MSE, adding_problem
from wrec.tasks.inputs import gaussian_input, uniform_input
from wrec.tasks.memory import MEMORIES, apply_memory, linear_functional, memory_kernel
from wrec.tasks.signals import leaky_integral, linear_response, smoothed_white_noise

__all__ = ["CONSTANT_PREDICTOR_MSE", "MEMORIES", "adding_problem", "apply_memory", "gaussian_input", "leaky_integral",
           "linear_functional", "linear_response", "memory_kernel", "smoothed_white_noise", "uniform_input"]

_SPIKES = ("SpikePatterns", "Split", "digits", "encode", "pattern_templates", "spike_patterns")
__all__ += [*_SPIKES]


def __getattr__(name: str) -> object:  # spike data needs torch and scikit-learn (the [snn] extra): loaded on use
    if name in _SPIKES:
        return getattr(importlib.import_module("wrec.tasks.spikes"), name)
    raise AttributeError(f"module 'wrec.tasks' has no attribute {name!r}")
