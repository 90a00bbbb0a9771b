"""wrec: the recurrent weight — how recurrent connectivity shapes memory and computation.

The subpackages load on first attribute access (``wrec.capacity``, ``wrec.weights``, ...), so ``import wrec``
itself imports neither SciPy, pandas, torch nor matplotlib.
"""

from typing import TYPE_CHECKING

from wrec._lazy import attach

__all__ = ["capacity", "reservoir", "spiking", "tasks", "weights"]
__version__ = "0.1.0"

__getattr__, __dir__ = attach(globals(), submodules=[
    *__all__, "checkpoint", "cli", "experiments", "nn", "plotting", "store", "sweep"])

if TYPE_CHECKING:
    from wrec import capacity, reservoir, spiking, tasks, weights

del TYPE_CHECKING, attach
