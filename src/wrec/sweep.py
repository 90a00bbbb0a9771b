"""A grid of configs -> one task each -> one durable record per finished task.

``run(fn, configs, store=...)`` evaluates ``fn(config) -> DataFrame`` for every config not already in the
store, writes each result the moment it finishes, and returns the results of exactly these configs in
order. An interrupted sweep resumes without recomputing or losing anything finished.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TypeVar

import pandas as pd
from tqdm.auto import tqdm

from wrec.store import Store, config_key

C = TypeVar("C")


def run(
    fn: Callable[[C], pd.DataFrame],
    configs: Sequence[C],
    *,
    store: Store | None = None,
    progress: bool = False,
    desc: str | None = None,
) -> pd.DataFrame:
    """Evaluate ``fn`` on each config (skipping those already stored) and return one tidy table.

    Each result gets the config's fields as columns (when ``fn`` did not add them) and its key in ``key``.
    """
    if not configs:
        raise ValueError("configs is empty: nothing to run")
    keys = [config_key(c) for c in configs]
    frames = []
    todo = sum(store is None or k not in store for k in keys)
    with tqdm(total=todo, desc=desc, disable=not progress or todo == 0, unit="task") as bar:
        for config, key in zip(configs, keys, strict=True):
            if store is not None and key in store:
                frames.append(store.load(key))
                continue
            frame = _label(fn(config), config, key)
            if store is not None:
                store.save(key, frame)
            frames.append(frame)
            bar.update()
    return pd.concat(frames, ignore_index=True)


def _label(frame: pd.DataFrame, config: object, key: str) -> pd.DataFrame:
    frame = frame.copy()
    for name, value in dataclasses.asdict(config).items():
        if name not in frame.columns and not isinstance(value, (list, tuple, dict)):
            frame[name] = value
    frame["key"] = key
    return frame
