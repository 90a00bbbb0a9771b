"""The sweep runner: every task once, results stored as they finish, an interrupted sweep resumes."""

import dataclasses

import pandas as pd
import pytest

from wrec import sweep
from wrec.store import Store


@dataclasses.dataclass(frozen=True)
class Task:
    x: int
    scale: float = 2.0


def test_runs_each_config_labels_and_resumes(tmp_path):
    calls = []

    def fn(c):
        calls.append(c.x)
        return pd.DataFrame({"y": [c.x * c.scale]})

    configs = [Task(i) for i in range(4)]
    store = Store(tmp_path)
    first = sweep.run(fn, configs, store=store)
    assert first["y"].tolist() == [0.0, 2.0, 4.0, 6.0]
    assert first["x"].tolist() == [0, 1, 2, 3] and (first["scale"] == 2.0).all()
    again = sweep.run(fn, configs, store=store)
    assert calls == [0, 1, 2, 3]  # nothing recomputed
    pd.testing.assert_frame_equal(first, again)


def test_interrupted_sweep_keeps_finished_results(tmp_path):
    store = Store(tmp_path)

    def flaky(c):
        if c.x == 2:
            raise KeyboardInterrupt
        return pd.DataFrame({"y": [c.x]})

    with pytest.raises(KeyboardInterrupt):
        sweep.run(flaky, [Task(i) for i in range(4)], store=store)
    assert len(store.table()) == 2  # tasks 0 and 1 are on disk
    done = []
    result = sweep.run(lambda c: done.append(c.x) or pd.DataFrame({"y": [c.x]}), [Task(i) for i in range(4)],
                       store=store)
    assert done == [2, 3]
    assert result["y"].tolist() == [0, 1, 2, 3]


def test_empty_grid_is_rejected():
    with pytest.raises(ValueError, match="configs is empty"):
        sweep.run(lambda c: pd.DataFrame(), [])
