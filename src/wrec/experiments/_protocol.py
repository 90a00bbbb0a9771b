"""What every experiment module provides (``Experiment``), and the task type shared by the experiments whose
sweep tasks are (a point of the grid, a replicate).

An experiment is a pure function of one task: ``Config`` is the grid (``Config()`` the full run,
``Config.quick()`` the small one, ``seed`` the root seed), ``Config.tasks()`` its tasks (frozen dataclasses,
each stored under ``store.config_key``), ``evaluate(task)`` one task's tidy rows; ``table``, ``plot``, ``targets``
and the optional ``reports`` summarise the rows of all tasks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, runtime_checkable

import pandas as pd

from wrec.store import legacy_key

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

C = TypeVar("C", bound="DataclassInstance")  # a Config: a (frozen) dataclass


@runtime_checkable
class ExperimentConfig(Protocol):
    """The grid of an experiment: a frozen dataclass with a root ``seed``."""

    seed: int

    @classmethod
    def quick(cls, **overrides: Any) -> ExperimentConfig:
        """The small run (``wrec run --quick``)."""

    def tasks(self) -> Sequence[object]:
        """The sweep's tasks: frozen dataclasses, each ``evaluate``'s argument."""


@runtime_checkable
class Experiment(Protocol):
    """An experiment module (``wrec.experiments.EXPERIMENTS``). ``reports(results) -> {name: table}`` is optional
    (further tables, saved as ``<name>.csv``)."""

    Config: type[ExperimentConfig]

    def evaluate(self, task: Any) -> pd.DataFrame:
        """One task's tidy rows."""

    def table(self, results: pd.DataFrame) -> pd.DataFrame:
        """The summary table of every task's rows."""

    def plot(self, results: pd.DataFrame, path: str | Path) -> list[Path]:
        """The figures, the first at ``path``; returns their paths."""

    def targets(self, results: pd.DataFrame) -> pd.DataFrame:
        """The reproduction targets: columns ``target``, ``measured``, ``tolerance``, ``held``."""


@dataclass(frozen=True)
class Task(Generic[C]):
    """One sweep task: ``config``, the grid narrowed to one point (each axis holds one value, ``replicates == 1``),
    and the ``replicate`` (its random streams come from ``(config.seed, ..., replicate)``)."""

    config: C
    replicate: int

    def __post_init__(self) -> None:
        if not (isinstance(self.replicate, int) and 0 <= self.replicate):
            raise ValueError(f"replicate must be an int >= 0, got {self.replicate!r}")

    def legacy_key(self) -> str:
        """The key this task's result had when the task was the narrowed ``Config`` itself, with a ``replicate``
        field (see ``store.legacy_config_key``): such results are re-keyed, not recomputed."""
        return legacy_key(type(self.config).__qualname__, {**dataclasses.asdict(self.config),
                                                           "replicate": self.replicate})


def replicate_tasks(config: C, replicates: int, **axes: Sequence[object]) -> list[Task[C]]:
    """``Task(replace(config, **point, replicates=1), r)`` for every point of the product of ``axes`` (name ->
    values; each point sets each axis to a 1-tuple of its value) and replicate r, in that nesting order (the
    first axis outermost, the replicate innermost)."""
    import itertools

    names = list(axes)
    return [Task(dataclasses.replace(config, **{n: (v,) for n, v in zip(names, point, strict=True)}, replicates=1), r)
            for point in itertools.product(*axes.values()) for r in range(replicates)]
