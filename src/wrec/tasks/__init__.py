"""Data: input streams and tasks."""

from wrec.tasks.inputs import gaussian_input, uniform_input

__all__ = ["gaussian_input", "uniform_input"]
