"""wrec: the recurrent weight — how recurrent connectivity shapes memory and computation."""

from wrec import capacity, reservoir, spiking, tasks, weights

__all__ = ["capacity", "reservoir", "spiking", "tasks", "weights"]
__version__ = "0.1.0"
