"""Oracles for the in-place ESN step (wrec.reservoir.fast) and the block iterator ``run_blocks``: the in-place step
against the model's own step (bit for bit), torch's tanh against ``np.tanh`` (in ulp), and concatenated blocks
against ``run``'s states, washout and readout subset included."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from wrec import weights
from wrec.reservoir import ESN, LeakyESN, Linear, Rate, fast, run, run_blocks
from wrec.reservoir.models import STEPS

N, B, T = 40, 4, 90
RNG = np.random.default_rng(7)
W0 = weights.gaussian(N, spectral_radius=0.9, seed=1)
WS = np.stack([weights.gaussian(N, spectral_radius=r, seed=10 + i) for i, r in enumerate([0.5, 0.8, 0.9, 0.7])])
U = RNG.uniform(-1, 1, T)
US = RNG.uniform(-1, 1, (B, T))

MODELS = {
    "shared W, grid of s": lambda dt: ESN(W0, recurrent_scale=np.linspace(0.2, 1.0, B), seed=2, dtype=dt),
    "scalar s, bias": lambda dt: ESN(W0, recurrent_scale=0.8, input_scale=0.5, bias=0.1, seed=2, dtype=dt),
    "batched W, w_in, bias": lambda dt: ESN(WS, w_in=RNG.standard_normal((B, N)), bias=RNG.standard_normal((B, N)),
                                            input_scale=np.linspace(0.1, 1.0, B), dtype=dt),
    "leaky, batched leak": lambda dt: LeakyESN(W0, leak=np.linspace(0.1, 1.0, B), seed=3, dtype=dt),
    "leaky, scalar leak": lambda dt: LeakyESN(WS, leak=0.3, seed=3, dtype=dt),
}


def own_step(model, u):
    """The states of the model's own (allocating) step, through run's custom-step route."""
    return run(model, u, step=STEPS[type(model)], x0=np.zeros(model.n), dtype=model.dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", MODELS)
def test_inplace_step_is_bit_for_bit_the_model_step(name, dtype):
    model = MODELS[name](dtype)
    got = run(model, US, backend="numpy")
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, own_step(model, US))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_torch_tanh_is_within_stated_ulp_of_numpy(dtype):
    pytest.importorskip("torch")
    a = np.concatenate([np.linspace(-20, 20, 200_001), np.geomspace(1e-30, 1e-1, 10_000),
                        -np.geomspace(1e-30, 1e-1, 10_000)]).astype(dtype)
    got = np.empty_like(a)
    fast.torch_tanh(a, got)
    want = np.tanh(a)
    ulp = np.abs(got - want) / np.spacing(np.abs(want).astype(dtype))
    assert ulp.max() <= fast.TANH_ULP


@pytest.mark.parametrize("name", MODELS)
def test_torch_backend_agrees_to_1e_12_in_float64(name):
    pytest.importorskip("torch")
    model = MODELS[name](np.float64)
    np.testing.assert_allclose(run(model, US, backend="torch"), run(model, US, backend="numpy"), rtol=0, atol=1e-12)


def test_torch_backend_leaves_torch_threads_as_they_were():
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    run(MODELS["shared W, grid of s"](np.float64), US, backend="torch")
    assert torch.get_num_threads() == before


def test_auto_backend_is_numpy_for_small_blocks_and_float32():
    assert fast.MIN_BLOCK > B * N
    model = MODELS["scalar s, bias"](np.float64)
    np.testing.assert_array_equal(run(model, US), own_step(model, US))


@pytest.mark.parametrize("threads", [2, 3, 8])
@pytest.mark.parametrize("name", MODELS)
def test_threads_step_shares_of_the_batch_like_one_loop(name, threads):
    """Each thread steps a contiguous share of the batch (threads = 3 on B = 4: shares of 1, 1 and 2 rows; 8 is cut
    to B); only a GEMM's row-count-dependent rounding may differ."""
    model = MODELS[name](np.float64)
    np.testing.assert_allclose(run(model, US, threads=threads, backend="numpy"), own_step(model, US),
                               rtol=0, atol=1e-13)


STEPPED = {  # models that run their own step (no in-place path): shares are records of their own (``rows``)
    "sparse W list": lambda: ESN([sp.random(N, N, density=0.2, random_state=i, format="csr") for i in range(B)],
                                 recurrent_scale=0.5, bias=RNG.standard_normal((B, N)), seed=4),
    "sin activation": lambda: ESN(W0, recurrent_scale=np.linspace(0.2, 1.0, B), activation=np.sin, seed=5),
    "linear, batched W": lambda: Linear(0.2 * WS, input_scale=np.linspace(0.1, 1.0, B), seed=6),
    "rate, shared W": lambda: Rate(W0, recurrent_scale=np.linspace(0.5, 1.5, B), seed=7),
}


@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("name", STEPPED)
def test_threads_step_shares_of_any_built_in_model(name, threads):
    model = STEPPED[name]()
    assert model.rows(1, 3).batch_size == 2
    np.testing.assert_allclose(run(model, US, threads=threads), run(model, US, threads=1), rtol=0, atol=1e-13)


def test_threads_leave_blas_and_torch_threads_as_they_were():
    from wrec._threads import blas_threads

    torch = pytest.importorskip("torch")
    before = blas_threads(), torch.get_num_threads()
    run(MODELS["shared W, grid of s"](np.float64), US, threads=2, backend="torch")
    assert (blas_threads(), torch.get_num_threads()) == before


def test_threads_default_to_one_loop_for_small_batches_and_off_the_main_thread():
    from concurrent.futures import ThreadPoolExecutor

    from wrec._threads import spare_threads
    from wrec.reservoir.run import _simulation

    def shares(model):
        return len(_simulation(model, U, 0, None, None, None, None, "numpy", None).shares)

    assert B * N * 8 < 32 * 1024 and shares(MODELS["shared W, grid of s"](np.float64)) == 1
    big = ESN(weights.gaussian(512, seed=1), recurrent_scale=np.linspace(0.2, 1.0, 16), seed=2)  # 64 KiB of state
    assert shares(big) == min(spare_threads(), 2)
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(shares, big).result() == 1


CASES = [
    dict(block=1), dict(block=7), dict(block=T), dict(block=10 * T),
    dict(block=16, washout=25), dict(block=16, washout=25, readout=5),
    dict(block=9, washout=3, readout=np.array([3, 0, 17])), dict(block=16, washout=25, readout=5, threads=3),
]


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("kw", CASES)
def test_blocks_concatenate_to_run(kw, backend):
    if backend == "torch":
        pytest.importorskip("torch")
    model = MODELS["leaky, batched leak"](np.float32)
    kw = dict(kw)
    block = kw.pop("block")
    blocks = [X.copy() for X in run_blocks(model, US, block, backend=backend, **kw)]
    want = run(model, US, backend=backend, **kw)
    assert all(X.shape[1] == min(block, want.shape[1]) for X in blocks[:-1])
    np.testing.assert_array_equal(np.concatenate(blocks, axis=1), want)


def test_blocks_of_an_unbatched_run_and_another_model():
    model = Linear(0.5 * W0, seed=1)
    blocks = list(X.copy() for X in run_blocks(model, U, 8, washout=5, readout=3))
    assert blocks[0].shape == (8, 3)
    np.testing.assert_array_equal(np.concatenate(blocks), run(model, U, washout=5, readout=3))


def test_blocks_reuse_one_buffer():
    X1, X2 = (X for X, _ in zip(run_blocks(MODELS["scalar s, bias"](np.float64), US, 10), range(2), strict=False))
    assert np.shares_memory(X1, X2)


def test_blocks_report_a_blow_up():
    model = Linear(W0, recurrent_scale=50.0, seed=2)
    with pytest.raises(ValueError, match="blew up"):
        for _ in run_blocks(model, np.ones(600), 50):
            pass


@pytest.mark.parametrize("call, exc, match", [
    (lambda: run_blocks(ESN(W0, seed=1), U, 0), ValueError, "block must be >= 1"),
    (lambda: run_blocks(ESN(W0, seed=1), U, 2.5), TypeError, "block must be an int"),
    (lambda: run_blocks(ESN(W0, seed=1), U, 4, washout=T), ValueError, "washout"),
    (lambda: run(ESN(W0, seed=1), U, backend="cuda"), ValueError, "backend must be"),
    (lambda: run(ESN(W0, seed=1), U, threads=0), ValueError, "threads must be >= 1"),
    (lambda: run(Linear(W0, seed=1), U, threads=1.5), TypeError, "threads must be an int"),
    (lambda: run_blocks(ESN(W0, seed=1), U, 4, backend="jax"), ValueError, "backend must be"),
    (lambda: run(Linear(W0, seed=1), U, backend="torch"), ValueError, "backend='torch' needs an ESN"),
    (lambda: run(ESN(W0, seed=1, activation=np.sin), U, backend="torch"), ValueError, "activation np.tanh"),
])
def test_bad_arguments_raise_when_called(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
