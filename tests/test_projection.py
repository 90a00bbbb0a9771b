"""Targets built in place and projected by one GEMM per block: against the products formed directly."""

import importlib.util
import threading
from pathlib import Path

import numpy as np
import pytest

from wrec import _threads
from wrec.capacity import projection, targets


def direct(basis, degrees, delays, offset):
    """Z (T − offset, m) with z_j,t = Π_f basis[degrees[j, f], t − delays[j, f]], formed column by column."""
    t = np.arange(offset, basis.shape[1])
    return np.stack([np.prod([basis[d, t - k] for d, k in zip(dj, kj, strict=True)], axis=0)
                     for dj, kj in zip(degrees, delays, strict=True)], axis=1)


def ipc_groups(max_delay):
    return [(ts.degrees, ts.delays) for d in (1, 2, 3, 4) for ts in targets.delay_sets(d, max_delay)]


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_mixed_shapes_equal_the_direct_products(monkeypatch, workers):
    # small chunks and blocks: runs cross block edges, the last chunk is short, workers share the chunks
    monkeypatch.setattr(projection, "CHUNK_ROWS", 64)
    monkeypatch.setattr(projection, "BLOCK_ELEMENTS", 64 * 7)
    rng = np.random.default_rng(0)
    offset, T = 5, 301
    basis = rng.standard_normal((5, T))
    groups = ipc_groups(offset)
    A = rng.standard_normal((T - offset, 4))
    B = rng.uniform(0, 1, (T - offset, 2))
    flat = np.ascontiguousarray(basis).reshape(-1)
    offsets = [d * T + (offset - k) for d, k in groups]
    G, S = projection.project_offsets(flat, offsets, T - offset, A, B, workers=workers)
    Z = np.hstack([direct(basis, d, k, offset) for d, k in groups])
    np.testing.assert_allclose(G, Z.T @ A, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(S, (Z * Z).T @ B, rtol=1e-12, atol=1e-12)


def test_any_target_order_and_repeated_targets():
    # targets in a random order, some repeated, steps of either sign and in the degree too (surrogate layout)
    rng = np.random.default_rng(1)
    offset, T = 6, 200
    basis = rng.standard_normal((8, T))
    degrees = rng.integers(0, 8, (60, 3))
    delays = rng.integers(0, offset + 1, (60, 3))
    degrees[10:20], delays[10:20] = degrees[3], delays[3]
    A = rng.standard_normal((T - offset, 3))
    B = np.ones((T - offset, 1))
    G, S = targets.project(basis, degrees, delays, offset, A, B)
    Z = direct(basis, degrees, delays, offset)
    np.testing.assert_allclose(G, Z.T @ A, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(S, (Z * Z).T @ B, rtol=1e-12)


def test_runs_cover_every_target_once_and_share_prefixes():
    (ts,) = [s for s in targets.delay_sets(3, 20) if s.parts == (1, 1, 1)]
    T = 1000
    F = ts.degrees * T + (20 - ts.delays)
    p = projection.plan([F], block=10**9)
    ((_, _, runs),) = p.blocks
    covered = np.concatenate([np.arange(r.position, r.position + r.length) for r in runs])
    np.testing.assert_array_equal(covered, np.arange(len(ts)))
    np.testing.assert_array_equal(np.sort(p.order), np.arange(len(ts)))
    # at most one run per pair of first delays (k1 < k2 < 20): one factor varies, two are shared
    assert len(runs) <= 20 * 19 // 2
    assert all(len(r.shared) == 2 and len(r.varying) == 1 for r in runs if r.length > 1)


def test_delays_beyond_the_offset_are_refused():
    basis = np.ones((3, 50))
    A, B = np.ones((45, 2)), np.ones((45, 1))
    with pytest.raises(ValueError, match=r"delays in 0\.\.5"):
        targets.project(basis, np.array([[1]]), np.array([[6]]), 5, A, B)
    with pytest.raises(ValueError, match=r"degrees in 0\.\.2"):
        targets.project(basis, np.array([[3]]), np.array([[0]]), 5, A, B)


def test_one_blas_thread_restores_the_limit_after_concurrent_callers():
    before = _threads.blas_threads()
    barrier = threading.Barrier(4)
    seen = []

    def call():
        with _threads.one_blas_thread():
            barrier.wait()
            seen.append(_threads.blas_threads())
            barrier.wait()

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [1, 1, 1, 1]
    assert _threads.blas_threads() == before


def test_benchmark_reports_its_figures_as_a_dict(monkeypatch):
    """benchmarks/projection.py's ``measure`` (for a one-table runner): shape, both times, fraction, goal."""
    bench = Path(__file__).resolve().parents[1] / "benchmarks"
    monkeypatch.syspath_prepend(str(bench))
    spec = importlib.util.spec_from_file_location("bench_projection", bench / "projection.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    f = module.measure(3, N=10, T=2_000, repeats=1)
    assert {"T", "r", "targets", "surrogate_columns", "projection_s", "gemm_s", "fraction", "fraction_all",
            "goal", "load"} <= set(f)
    assert f["T"] == 1_997 and f["r"] == 10 and f["targets"] == 4 + 10 + 20 and f["surrogate_columns"] == 1200
    assert f["fraction"] == f["gemm_s"] / f["projection_s"] and f["goal"] == 0.5


def test_a_projection_in_another_thread_leaves_the_blas_threads_settable():
    """Called from a Dask task (row-chunked states), the projection runs on that thread and does not set OpenBLAS's
    thread count from it: set from worker threads, the count could not be raised again afterwards (2 stayed 1)."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from wrec.experiments import ipc_profile

    tiny = {"spectral_radii": (0.5,), "length": 4000, "washout": 500, "max_delay": ((1, 40), (2, 6), (3, 6)),
            "surrogates": 20, "row_chunk": 700}
    ipc_profile.evaluate(ipc_profile.Config(**tiny))
    with threadpool_limits(limits=2, user_api="blas"):
        assert {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"} == {2}
