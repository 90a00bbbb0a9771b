"""One module per reproduced result, each following ``_protocol.Experiment``: ``Config`` (the grid; ``.quick()``,
``.tasks()``, a root ``seed``), ``evaluate(task)`` (one task's tidy rows), ``table(results)``, ``plot(results, path)
-> list of figure paths`` and ``targets(results)``, a table of the reproduction targets (the paper's claim or our
stated threshold; columns ``target``, ``measured``, ``tolerance``, ``held``) that the CLI prints and saves;
optionally ``reports(results)``, further named tables (saved as ``<name>.csv``). A task is a frozen dataclass:
``_protocol.Task`` (the grid narrowed to one point, and a replicate) where that is what a task is. The CLI finds the
modules here by name.

The modules load on first access, so a sweep worker that imports one experiment does not import the others;
``EXPERIMENTS`` (name -> module) imports all of them when first read.
"""

import importlib
from types import ModuleType

from wrec._lazy import attach

#: CLI name -> module name
_MODULES = {
    "readout-scaling": "readout_scaling",
    "ipc-profile": "ipc_profile",
    "spike-coding-autoencoder": "spike_coding_autoencoder",
    "spike-coding-lds": "spike_coding_lds",
    "spike-coding-convex": "spike_coding_convex",
    "cfc-closed-loop": "cfc_closed_loop",
    "snn-locality": "snn_locality",
    "stablessm-curse-of-memory": "stablessm_curse_of_memory",
    "stablessm-lr-sweep": "stablessm_lr_sweep",
    "sligru-gain-sweep": "sligru_gain_sweep",
    "sligru-adding": "sligru_adding",
    "capacity-atlas": "capacity_atlas",
}

__all__ = ["EXPERIMENTS", "capacity_atlas", "cfc_closed_loop", "ipc_profile", "readout_scaling", "sligru_adding",
           "sligru_gain_sweep", "snn_locality",
           "spike_coding_autoencoder",
           "spike_coding_convex", "spike_coding_lds", "stablessm_curse_of_memory", "stablessm_lr_sweep"]

_getattr, _dir = attach(globals(), submodules=_MODULES.values())

#: CLI name -> experiment module; declared here for type checkers, set by ``__getattr__`` on first access
EXPERIMENTS: dict[str, ModuleType]


def __getattr__(name: str) -> object:
    if name == "EXPERIMENTS":
        experiments: dict[str, ModuleType] = {
            key: importlib.import_module(f"{__name__}.{module}") for key, module in _MODULES.items()}
        globals()[name] = experiments
        return experiments
    return _getattr(name)


def __dir__() -> list[str]:
    return sorted({*_dir(), "EXPERIMENTS"})


del attach
