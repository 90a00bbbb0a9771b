"""Data: input streams and tasks."""

from wrec.tasks.inputs import gaussian_input, uniform_input
from wrec.tasks.signals import leaky_integral, linear_response, smoothed_white_noise

__all__ = ["gaussian_input", "leaky_integral", "linear_response", "smoothed_white_noise", "uniform_input"]
