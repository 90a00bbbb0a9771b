"""The result store: stable keys, atomic writes, nothing half-written is ever read, and a stored result that has
changed on disk is an error, never different numbers."""

import dataclasses
import os

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from wrec.cli import app
from wrec.store import DIGEST_KEY, CorruptResult, Store, config_key, legacy_config_key, legacy_key


@dataclasses.dataclass(frozen=True)
class Point:
    a: int = 1
    b: tuple[int, ...] = (1, 2)


def _result() -> pd.DataFrame:
    """A small results table of the usual kinds of column, with the floats that are easy to lose."""
    return pd.DataFrame({"stat": ["mean", "std", "max"] * 2, "value": [0.1, 1.2, np.nan, -0.0, np.inf, 3.5],
                         "i": [1, 2, 3, 4, 5, 6], "kind": ["tanh"] * 6, "flag": [True, False] * 3,
                         "key": ["0123456789abcdef"] * 6})


def test_keys_are_stable_and_distinguish_configs():
    assert config_key(Point()) == config_key(Point())
    assert config_key(Point()) != config_key(Point(a=2))
    assert len(config_key(Point())) == 16
    with pytest.raises(TypeError, match="dataclass instance"):
        config_key({"a": 1})


def _point_type(**extra):
    """A dataclass named Point with Point's fields plus ``extra`` (name -> default): the same config type after
    a field was added."""
    fields = [("a", int, dataclasses.field(default=1)), ("b", tuple[int, ...], dataclasses.field(default=(1, 2)))]
    fields += [(name, type(default), dataclasses.field(default=default)) for name, default in extra.items()]
    return dataclasses.make_dataclass("Point", fields, frozen=True)


def test_keys_leave_out_fields_at_their_default():
    Later = _point_type(c=0.5)
    assert config_key(Later()) == config_key(Point())  # a field added with a default keeps every key
    assert config_key(Later(a=2)) == config_key(Point(a=2))
    assert config_key(Later(c=0.25)) != config_key(Point())
    assert config_key(Point(a=1.0)) != config_key(Point())  # 1.0 is not the default 1: another config
    # the earlier formula hashed every field
    assert legacy_config_key(Point(a=2)) == legacy_key("Point", {"a": 2, "b": (1, 2)})
    assert legacy_config_key(Later()) != legacy_config_key(Point())


def test_nested_config_keys_leave_out_defaults_too():
    @dataclasses.dataclass(frozen=True)
    class Task:
        config: Point
        replicate: int

    Later = _point_type(c="x")
    assert config_key(Task(Point(a=3), 0)) == config_key(Task(Later(a=3), 0))
    assert config_key(Task(Point(a=3), 0)) != config_key(Task(Point(a=3), 1))


def test_rekey_moves_a_result_with_its_key_column_and_a_fresh_digest(tmp_path):
    store = Store(tmp_path)
    store.save("old0000000000000", _result().assign(key="old0000000000000"))
    moved = store.rekey("old0000000000000", "new0000000000000")
    assert store.keys() == ["new0000000000000"]
    assert (moved["key"] == "new0000000000000").all()
    pd.testing.assert_frame_equal(moved.drop(columns="key"), _result().drop(columns="key"))
    pd.testing.assert_frame_equal(store.load("new0000000000000"), moved)  # verifies


def test_save_load_roundtrip_and_table(tmp_path):
    store = Store(tmp_path / "results")
    frame = pd.DataFrame({"x": [1.0, 2.0], "y": ["a", "b"]})
    store.save("k1", frame)
    store.save("k2", frame.assign(x=[3.0, 4.0]))
    assert "k1" in store and "k3" not in store
    assert store.keys() == ["k1", "k2"]
    pd.testing.assert_frame_equal(store.load("k1"), frame)
    assert store.table()["x"].tolist() == [1.0, 2.0, 3.0, 4.0]
    store.save("k3", _result())
    pd.testing.assert_frame_equal(store.load("k3"), _result(), check_exact=True)
    assert np.signbit(store.load("k3")["value"][3])  # -0.0 stays -0.0


def test_stored_files_are_plain_parquet_with_page_checksums_and_a_digest(tmp_path):
    store = Store(tmp_path)
    path = store.save("k", _result())
    pd.testing.assert_frame_equal(pd.read_parquet(path), _result(), check_exact=True)  # any Parquet reader
    assert DIGEST_KEY in pq.read_schema(path).metadata
    pq.read_table(path, page_checksum_verification=True)


def test_a_failed_write_leaves_no_file_and_no_temporary(tmp_path, monkeypatch):
    store = Store(tmp_path)

    def broken(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken)
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


def _flips(store: Store, key: str, flips) -> tuple[list[str], int, int]:
    """Apply each (position, xor mask) alone to the stored file of ``key``: (the errors' reasons, the number of
    identical reads, the number of silently different reads by an unverified ``pd.read_parquet``)."""
    path, good, frame = store.path(key), store.path(key).read_bytes(), store.load(key)
    errors, identical, silent = [], 0, 0
    for position, mask in flips:
        bad = bytearray(good)
        bad[position] ^= mask
        path.write_bytes(bytes(bad))
        try:
            loaded = store.load(key)
        except CorruptResult as exc:
            assert exc.path == path and str(path) in str(exc) and exc.reason in str(exc)
            errors.append(exc.reason)
        else:
            pd.testing.assert_frame_equal(loaded, frame, check_exact=True)  # harmless: exactly what was stored
            identical += 1
        try:
            unverified = pd.read_parquet(path)
            pd.testing.assert_frame_equal(unverified, frame, check_exact=True)
        except AssertionError:
            silent += 1
        except Exception:  # an unverified reader that fails loudly is fine
            pass
    path.write_bytes(good)
    return errors, identical, silent


def test_a_flipped_byte_is_an_error_or_changes_nothing(tmp_path):
    """400 seeded single-byte flips anywhere in a stored result (data pages, page headers, footer, metadata): each
    is either a ``CorruptResult`` or reads back exactly the stored table. The same flips, read without
    verification, do give different numbers silently (so these flips reach the data)."""
    store = Store(tmp_path)
    store.save("k", _result())
    size = store.path("k").stat().st_size
    rng = np.random.default_rng(2024)
    flips = zip(rng.integers(0, size, 400).tolist(), rng.integers(1, 256, 400).tolist(), strict=True)
    errors, identical, silent = _flips(store, "k", flips)
    assert len(errors) + identical == 400 and len(errors) > 200
    assert any("CRC" in e for e in errors) and any("digest mismatch" in e for e in errors)  # both checks at work
    assert silent > 0


@pytest.mark.slow
def test_every_byte_flipped_is_an_error_or_changes_nothing(tmp_path):
    store = Store(tmp_path)
    store.save("k", _result())
    size = store.path("k").stat().st_size
    errors, identical, _ = _flips(store, "k", [(i, 0xFF) for i in range(size)])
    assert len(errors) + identical == size


def test_a_file_without_digest_or_torn_is_corrupt_and_can_be_set_aside(tmp_path):
    store = Store(tmp_path)
    _result().to_parquet(store.path("legacy"), index=False)  # written before results carried a digest
    with pytest.raises(CorruptResult, match=r"legacy\.parquet is corrupt: no checksum"):
        store.load("legacy")
    store.save("torn", _result())
    store.path("torn").write_bytes(store.path("torn").read_bytes()[:-100])
    with pytest.raises(CorruptResult, match=r"torn\.parquet is corrupt: unreadable Parquet"):
        store.load("torn")
    with pytest.raises(CorruptResult, match=r"legacy\.parquet"):  # a table never silently lacks a result
        store.table()
    torn = store.path("torn").read_bytes()
    aside = store.set_aside("torn")
    assert aside.parent == tmp_path and aside.name.startswith("_torn.parquet.corrupt-") and aside.read_bytes() == torn
    assert store.set_aside("legacy") != aside
    assert store.keys() == [] and "torn" not in store
    store.save("fine", _result())
    pd.testing.assert_frame_equal(store.table(), _result())
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path), _result())  # directory reads skip what was set aside
    assert sorted(p.name for p in tmp_path.glob("*.parquet")) == ["fine.parquet"]


def test_show_refuses_a_corrupt_result(tmp_path):
    store = Store(tmp_path / "results")
    store.save("good", _result())
    _result().to_parquet(store.path("old"), index=False)
    shown = CliRunner().invoke(app, ["show", str(tmp_path)])
    assert shown.exit_code == 1
    assert "old.parquet is corrupt: no checksum" in shown.output and "sets it aside" in shown.output
