"""The one loop (wrec.dynamics.run) against closed forms: a scalar linear recursion, logging, streams, and exact
resume from a checkpoint written mid-run."""

from typing import NamedTuple

import numpy as np
import pytest

from wrec import dynamics


class Acc(NamedTuple):
    x: np.ndarray
    total: float


def decay_step(a, state, u, *, rng=None):  # x_t = a x_{t−1} + u_t + noise
    x = a * state.x + u + (0.0 if rng is None else rng.standard_normal(state.x.shape))
    return Acc(x, state.total + float(x.sum())), x


class Noise:
    """A chunked stream of U(−1, 1) values whose generator state is captured for resume."""

    def __init__(self, seed, size=7):
        self.rng, self.size = np.random.default_rng(seed), size

    def draw(self, limit):
        return self.rng.uniform(-1, 1, (min(self.size, limit), 2))

    def get_state(self):
        from wrec.checkpoint import rng_state
        return {"rng": rng_state(self.rng)}, {}

    def set_state(self, meta, arrays):
        from wrec.checkpoint import set_rng_state
        set_rng_state(self.rng, meta["rng"])


def test_array_input_is_the_closed_form_and_every_step_is_seen():
    u = np.random.default_rng(0).uniform(-1, 1, (50, 2))
    seen = []
    out = dynamics.run(decay_step, 0.5, Acc(np.ones(2), 0.0), u, 50, on_step=lambda t, s, y: seen.append(y))
    want = np.ones(2)
    for t in range(50):
        want = 0.5 * want + u[t]
        np.testing.assert_allclose(seen[t], want, rtol=0, atol=1e-15)
    np.testing.assert_allclose(out.state.total, np.sum(seen), rtol=1e-13)
    # a callable of the step index and an iterator give the same run
    again = dynamics.run(decay_step, 0.5, Acc(np.ones(2), 0.0), u.__getitem__, 50)
    once = dynamics.run(decay_step, 0.5, Acc(np.ones(2), 0.0), iter(u), 50)
    np.testing.assert_array_equal(again.state.x, out.state.x)
    np.testing.assert_array_equal(once.state.x, out.state.x)


def log(t, s):
    return {"x": s.x.copy(), "total": s.total}, s._replace(total=0.0)


# chunks of 5 steps end exactly at the logged steps 10 and 20: the resumed run draws the next chunk, not the
# used-up one again; chunks of 7 end elsewhere
@pytest.mark.parametrize(("chunk", "crash_at"), [(7, 3), (7, 18), (7, 29), (5, 12), (5, 25)])
def test_resume_from_a_checkpoint_equals_the_uninterrupted_run(tmp_path, chunk, crash_at):
    kw = {"log": log, "log_at": [0, 10, 20, 30], "identity": {"seed": 1}}
    whole = dynamics.run(decay_step, 0.9, Acc(np.zeros(2), 0.0), Noise(1, size=chunk), 30, rng=np.random.default_rng(2),
                         **kw)

    def dying(a, state, u, *, rng=None, calls=[0]):  # noqa: B006 (a counter)
        calls[0] += 1
        if calls[0] > crash_at:
            raise KeyboardInterrupt
        return decay_step(a, state, u, rng=rng)

    path = tmp_path / "ck.npz"
    with pytest.raises(KeyboardInterrupt):
        dynamics.run(dying, 0.9, Acc(np.zeros(2), 0.0), Noise(1, size=chunk), 30, rng=np.random.default_rng(2),
                     checkpoint=path, **kw)
    resumed = dynamics.run(decay_step, 0.9, Acc(np.zeros(2), 0.0), Noise(1, size=chunk), 30,
                           rng=np.random.default_rng(2), checkpoint=path, **kw)
    np.testing.assert_array_equal(resumed.steps, [0, 10, 20, 30])
    np.testing.assert_array_equal(resumed.log["x"], whole.log["x"])
    np.testing.assert_array_equal(resumed.log["total"], whole.log["total"])
    np.testing.assert_array_equal(resumed.state.x, whole.state.x)
    assert resumed.resumed_from == (crash_at // 10) * 10
    with pytest.raises(ValueError, match=r"different run \(seed differ\)"):
        dynamics.run(decay_step, 0.9, Acc(np.zeros(2), 0.0), Noise(1, size=chunk), 30, checkpoint=path,
                     **{**kw, "identity": {"seed": 2}})
    cut = dynamics.run(decay_step, 0.9, Acc(np.zeros(2), 0.0), Noise(1, size=chunk), 15, checkpoint=path,
                       **kw | {"log_at": [0, 10]})
    assert cut.state is None
    np.testing.assert_array_equal(cut.steps, [0, 10])


def test_bad_arguments():
    with pytest.raises(ValueError, match="fewer than n_steps"):
        dynamics.run(decay_step, 0.5, Acc(np.zeros(2), 0.0), np.zeros((3, 2)), 5)
    with pytest.raises(ValueError, match="log_at must lie in"):
        dynamics.run(decay_step, 0.5, Acc(np.zeros(2), 0.0), np.zeros((3, 2)), 3, log=log, log_at=[4])
    with pytest.raises(TypeError, match="inputs must be"):
        dynamics.run(decay_step, 0.5, Acc(np.zeros(2), 0.0), 3.0, 3)


def test_an_error_in_a_step_names_the_run_and_the_step():
    def failing(a, state, u, *, rng=None):
        if u[0] > 2:
            raise RuntimeError("diverged")
        return decay_step(a, state, u, rng=rng)

    with pytest.raises(RuntimeError, match="diverged") as info:
        dynamics.run(failing, 0.5, Acc(np.zeros(2), 0.0), np.arange(10.0)[:, None] * np.ones(2), 10,
                     what="test run", unit="epoch")
    assert info.value.__notes__ == ["(in test run, epoch 3 of 10)"]
