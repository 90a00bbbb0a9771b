"""Config overrides from text and TOML, parsed against the fields' types; TOML out and back; the run record."""

from __future__ import annotations

import dataclasses
import datetime
import math
from typing import Literal

import pytest

from wrec import runconfig
from wrec.experiments import EXPERIMENTS, readout_scaling
from wrec.runconfig import tomllib  # (tomli before Python 3.11)


@dataclasses.dataclass(frozen=True)
class Config:
    n: int = 10
    rate: float = 0.5
    flag: bool = False
    name: str = "esn"
    sizes: tuple[int, ...] = (200, 400)
    pairs: tuple[tuple[int, int], ...] = ((1, 2),)
    span: tuple[float, float] = (0.0, 1.0)
    limit: float | None = None
    mode: Literal["a", "b"] = "a"

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")


@pytest.mark.parametrize(("field", "text", "expected"), [
    ("n", "7", 7), ("n", " 1_000 ", 1000), ("rate", "1e-3", 0.001), ("rate", "3", 3.0), ("flag", "true", True),
    ("flag", "No", False), ("flag", "1", True), ("name", "a=b, c", "a=b, c"), ("sizes", "100", (100,)),
    ("sizes", "100, 200,300", (100, 200, 300)), ("sizes", "", ()), ("sizes", "[5, 6]", (5, 6)),
    ("pairs", "[[1, 199], [2, 19]]", ((1, 199), (2, 19))), ("span", "0.1,2", (0.1, 2.0)), ("limit", "none", None),
    ("limit", "2.5", 2.5), ("mode", "b", "b"),
])
def test_text_values_are_parsed_by_the_field_type(field, text, expected):
    value = getattr(runconfig.override(Config(), {field: text}), field)
    assert value == expected and type(value) is type(expected)
    if isinstance(expected, tuple):
        assert all(type(v) is type(e) for v, e in zip(value, expected, strict=True))


@pytest.mark.parametrize(("values", "message"), [
    ({"n": "seven"}, r"^n \(int\): 'seven' is not an int$"),
    ({"n": "1.5"}, r"n \(int\): '1.5' is not an int"),
    ({"rate": "fast"}, r"rate \(float\): 'fast' is not a float"),
    ({"flag": "maybe"}, r"flag \(bool\): 'maybe' is not a bool"),
    ({"sizes": "1,x"}, r"sizes \(tuple\[int, \.\.\.\]\): 'x' is not an int"),
    ({"span": "1,2,3"}, r"span \(tuple\[float, float\]\): expected 2 items, got 3"),
    ({"pairs": "1,2"}, r"pairs .*TOML array"),
    ({"pairs": "[[1, 2], [3]]"}, r"pairs .*expected 2 items, got 1"),
    ({"pairs": "[[1,"}, r"pairs .*not a TOML array"),
    ({"mode": "c"}, r"mode .*'c' is not one of \['a', 'b'\]"),
    ({"nn": "1"}, r"has no field 'nn'; its fields: n \(int\), rate \(float\), .*limit \(float \| None\)"),
    ({"n": "0"}, r"invalid config \(n=0\): n must be >= 1, got 0"),
    ({"n": 1.0}, r"n \(int\): expected int, got 1.0"),
    ({"flag": 1}, r"flag \(bool\): expected bool, got 1"),
    ({"sizes": 5}, r"sizes .*expected an array, got 5"),
])
def test_bad_values_name_the_field_and_its_type(values, message):
    with pytest.raises(ValueError, match=message):
        runconfig.override(Config(), values)


def test_setting_splits_at_the_first_equals_sign():
    assert runconfig.parse_setting("name = a=b") == ("name", "a=b")
    for bad in ("n", "=3", ""):
        with pytest.raises(ValueError, match="expected FIELD=VALUE"):
            runconfig.parse_setting(bad)


def test_toml_round_trips_every_experiments_config(tmp_path):
    for name, module in EXPERIMENTS.items():
        for config in (module.Config(), module.Config.quick()):
            path = tmp_path / f"{name}.toml"
            path.write_text(runconfig.dumps(runconfig.config_fields(config), header=f"wrec config {name}"))
            assert runconfig.load(module.Config(), path) == config, name


def test_toml_writes_every_scalar_exactly():
    odd = Config(rate=-math.inf, name='quote " back\\slash\nnew\x7fdel é 😀', limit=1e-300, sizes=())
    text = runconfig.dumps(runconfig.config_fields(odd))
    assert runconfig.override(Config(), tomllib.loads(text)) == odd
    nan = tomllib.loads(runconfig.dumps({"x": math.nan, "y": None}))
    assert math.isnan(nan["x"]) and nan["y"] == "none"
    assert runconfig.dumps({"a b": 1, "t": {"c": [1, 2]}}) == '"a b" = 1\n\n[t]\nc = [1, 2]\n'
    with pytest.raises(TypeError, match="cannot write set"):
        runconfig.dumps({"s": {1}} | {"t": {"u": {2}}})


def test_a_partial_file_changes_only_its_fields_and_set_applies_after_it(tmp_path):
    path = tmp_path / "partial.toml"
    path.write_text("sizes = [100]\nreplicates = 1\n")
    config = runconfig.load(readout_scaling.Config.quick(), path)
    assert config == dataclasses.replace(readout_scaling.Config.quick(), sizes=(100,), replicates=1)
    assert runconfig.override(config, {"replicates": "2"}).replicates == 2


def test_bad_files_are_value_errors_naming_the_file(tmp_path):
    missing, broken, wrong = tmp_path / "missing.toml", tmp_path / "broken.toml", tmp_path / "wrong.toml"
    broken.write_text("sizes = [1,\n")
    wrong.write_text("sizes = ['a']\n")
    with pytest.raises(ValueError, match=r"cannot read config file .*missing\.toml"):
        runconfig.load(Config(), missing)
    with pytest.raises(ValueError, match=r"broken\.toml is not valid TOML"):
        runconfig.load(Config(), broken)
    with pytest.raises(ValueError, match=r"wrong.toml: sizes \(tuple\[int, \.\.\.\]\): expected int, got 'a'"):
        runconfig.load(Config(), wrong)


def test_a_run_record_is_a_config_file_of_its_experiment(tmp_path):
    config = Config(n=3, sizes=(1,))
    start = datetime.datetime(2026, 1, 2, 3, 4, 5, 600_000, tzinfo=datetime.timezone.utc)
    record = runconfig.run_record("toy", config, started=start, finished=start + datetime.timedelta(seconds=1.5),
                                  counts={"tasks": 2, "tasks_computed": 1, "tasks_reused": 1}, argv=["wrec", "run"])
    path = tmp_path / "run.toml"
    path.write_text(runconfig.dumps(record))
    read = tomllib.loads(path.read_text())
    assert read["started"] == "2026-01-02T03:04:05Z" and read["finished"] == "2026-01-02T03:04:07Z"
    assert read["seconds"] == 1.5 and read["command"] == ["wrec", "run"]
    assert (read["tasks"], read["tasks_computed"], read["tasks_reused"]) == (2, 1, 1)
    assert set(read["versions"]) >= {"wrec", "python", "numpy"}
    assert runconfig.load(Config(), path, experiment="toy") == config
    with pytest.raises(ValueError, match="records a run of 'toy', not 'other'"):
        runconfig.load(Config(), path, experiment="other")


def test_git_revision_is_none_outside_a_checkout(tmp_path):
    assert runconfig.git_revision(tmp_path) is None
    assert runconfig.git_revision(tmp_path / "no such folder") is None
