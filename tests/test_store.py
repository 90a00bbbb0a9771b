"""The result store: stable keys, atomic writes, nothing half-written is ever read."""

import dataclasses
import os

import pandas as pd
import pytest

from wrec.store import Store, config_key


@dataclasses.dataclass(frozen=True)
class Point:
    a: int = 1
    b: tuple[int, ...] = (1, 2)


def test_keys_are_stable_and_distinguish_configs():
    assert config_key(Point()) == config_key(Point())
    assert config_key(Point()) != config_key(Point(a=2))
    assert len(config_key(Point())) == 16
    with pytest.raises(TypeError, match="dataclass instance"):
        config_key({"a": 1})


def test_save_load_roundtrip_and_table(tmp_path):
    store = Store(tmp_path / "results")
    frame = pd.DataFrame({"x": [1.0, 2.0], "y": ["a", "b"]})
    store.save("k1", frame)
    store.save("k2", frame.assign(x=[3.0, 4.0]))
    assert "k1" in store and "k3" not in store
    assert store.keys() == ["k1", "k2"]
    pd.testing.assert_frame_equal(store.load("k1"), frame)
    assert store.table()["x"].tolist() == [1.0, 2.0, 3.0, 4.0]


def test_a_failed_write_leaves_no_file_and_no_temporary(tmp_path, monkeypatch):
    store = Store(tmp_path)

    def broken(self, fh, **kwargs):
        fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", broken)
    with pytest.raises(OSError, match="disk full"):
        store.save("k", pd.DataFrame({"x": [1]}))
    assert "k" not in store
    assert os.listdir(tmp_path) == []


def test_temporary_files_are_not_results(tmp_path):
    store = Store(tmp_path)
    (tmp_path / ".k.123.tmp").write_bytes(b"half")  # what a write killed before its rename leaves
    assert "k" not in store
    assert store.table().empty and store.keys() == []
    store.save("j", pd.DataFrame({"x": [1.0]}))
    assert store.keys() == ["j"]
    assert store.table()["x"].tolist() == [1.0]
