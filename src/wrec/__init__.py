"""wrec: the recurrent weight — how recurrent connectivity shapes memory and computation.

The subpackages load on first attribute access (``wrec.capacity``, ``wrec.weights``, ...), so ``import wrec``
itself imports neither SciPy, pandas, torch nor matplotlib.
"""

from typing import TYPE_CHECKING

from wrec._lazy import attach

__all__ = ["capacity", "reservoir", "spiking", "state_matrix", "states", "tasks", "weights"]
__version__ = "0.1.0"

__getattr__, __dir__ = attach(globals(), {"state_matrix": "states"}, submodules=[
    "capacity", "reservoir", "spiking", "states", "tasks", "weights", "checkpoint", "cli", "experiments", "nn",
    "plotting", "store", "sweep"])

if TYPE_CHECKING:
    from wrec import capacity, reservoir, spiking, states, tasks, weights
    from wrec.states import state_matrix

del TYPE_CHECKING, attach
