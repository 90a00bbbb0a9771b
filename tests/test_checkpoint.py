"""wrec.checkpoint: atomic npz checkpoints, exact generator states, run fingerprints."""

import numpy as np
import pytest

from wrec import checkpoint


@pytest.mark.parametrize("bit_generator", [np.random.PCG64, np.random.MT19937, np.random.Philox, np.random.SFC64])
def test_generator_state_round_trips_through_a_file(tmp_path, bit_generator):
    rng = np.random.Generator(bit_generator(3))
    rng.random(5)
    checkpoint.save(tmp_path / "ck.npz", {"a": np.arange(4.0)}, {"rng": checkpoint.rng_state(rng), "step": 7})
    ahead = rng.random(3)
    arrays, meta = checkpoint.load(tmp_path / "ck.npz")
    np.testing.assert_array_equal(arrays["a"], np.arange(4.0))
    assert meta["step"] == 7
    restored = checkpoint.set_rng_state(np.random.Generator(bit_generator(0)), meta["rng"])
    np.testing.assert_array_equal(restored.random(3), ahead)
    assert checkpoint.load(tmp_path / "missing.npz") is None and checkpoint.load(None) is None
    assert [p.name for p in tmp_path.iterdir()] == ["ck.npz"]  # no temporary file left behind


def test_fingerprint_tells_runs_apart():
    a = np.arange(6.0).reshape(2, 3)
    assert checkpoint.fingerprint("rule", 10, a) == checkpoint.fingerprint("rule", 10, a.copy())
    assert checkpoint.fingerprint("rule", 10, a) != checkpoint.fingerprint("rule", 10, a + 1e-12)
    assert checkpoint.fingerprint(a) != checkpoint.fingerprint(a.reshape(3, 2))  # the shape counts
    assert checkpoint.fingerprint(a) != checkpoint.fingerprint(a.astype(np.float32))  # and the dtype
    assert checkpoint.fingerprint(1) != checkpoint.fingerprint(1.0)
    assert len(checkpoint.fingerprint()) == 16


def test_reserved_name():
    with pytest.raises(ValueError, match="reserved"):
        checkpoint.save("unused.npz", {"__meta__": np.zeros(1)})
