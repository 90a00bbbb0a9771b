"""One module per reproduced result, each with ``Config`` (``.quick()``, ``.tasks()``), ``evaluate(config)``,
``table(results)`` and ``plot(results, path)``. The CLI finds them here by name."""

from types import ModuleType

from wrec.experiments import ipc_profile

EXPERIMENTS: dict[str, ModuleType] = {
    "ipc-profile": ipc_profile,
}

__all__ = ["EXPERIMENTS", "ipc_profile"]
