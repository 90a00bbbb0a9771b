"""States in row blocks (a .npy memmap, a dask array, a list of blocks, a function returning blocks) give the
capacities of the same states in memory, to 1e-10."""

import numpy as np
import pytest

import wrec
from wrec.capacity import ChiSquare, ipc, memory_capacity
from wrec.experiments.ipc_profile import kubota_input, kubota_reservoir
from wrec.reservoir import ESN, run


@pytest.fixture(scope="module")
def esn():
    W = wrec.weights.gaussian(40, spectral_radius=0.9, seed=0)
    u = wrec.tasks.uniform_input(9_000, seed=1)
    return run(ESN(W, input_scale=0.3, seed=2), u, washout=1000), u[1000:]


def split(X, size):
    return [X[i : i + size] for i in range(0, X.shape[0], size)]


def same(a, b):
    np.testing.assert_allclose(a.table.capacity, b.table.capacity, rtol=0, atol=1e-10)
    np.testing.assert_allclose(a.table.null, b.table.null, rtol=1e-8, atol=1e-13)
    assert a.rank == b.rank and a.n_samples == b.n_samples
    assert a.total == pytest.approx(b.total, abs=1e-8)


@pytest.mark.parametrize("size", [1000, 777, 13])  # divides T, does not, shorter than max_delay
def test_blocks_equal_memory_for_ipc_and_mc(esn, size):
    X, u = esn
    delays = {1: 40, 2: 8, 3: 8}
    ref = ipc(X, u, max_delay=delays, threshold=ChiSquare())
    same(ipc(split(X, size), u, max_delay=delays, threshold=ChiSquare()), ref)
    mc_ref = memory_capacity(X, u, max_delay=60)
    mc = memory_capacity(lambda: iter(split(X, size)), u, max_delay=60)
    np.testing.assert_allclose(mc.raw, mc_ref.raw, rtol=0, atol=1e-10)
    np.testing.assert_allclose(mc.per_delay, mc_ref.per_delay, rtol=0, atol=1e-8)


def test_memmap_and_dask_sources(esn, tmp_path):
    X, u = esn
    path = tmp_path / "states.npy"
    np.save(path, X)
    ref = ipc(X, u, max_delay={1: 30, 2: 5})
    same(ipc(str(path), u, max_delay={1: 30, 2: 5}), ref)
    same(ipc(np.load(path, mmap_mode="r"), u, max_delay={1: 30, 2: 5}), ref)
    da = pytest.importorskip("dask.array")
    same(ipc(da.from_array(X, chunks=(1500, -1)), u, max_delay={1: 30, 2: 5}), ref)


def test_float32_states_and_the_rank_deficient_kubota_esn(esn):
    X, u = esn
    X32 = X.astype(np.float32)
    same(ipc(split(X32, 500), u, max_delay={1: 30, 2: 5}), ipc(X32, u, max_delay={1: 30, 2: 5}))
    W, w_in = kubota_reservoir(50, seed=0)
    v = kubota_input(30_000, seed=0)
    K = run(ESN(W, w_in=w_in, input_scale=0.1, recurrent_scale=0.1), v, washout=10_000)
    ref = ipc(K, v[10_000:], max_delay={1: 40, 3: 10}, standardize=False)
    assert ref.rank == 16
    same(ipc(split(K, 3000), v[10_000:], max_delay={1: 40, 3: 10}, standardize=False), ref)


def test_capacities_of_blocks_equal_memory(esn):
    from wrec.capacity import capacities

    X, u = esn
    Z = np.column_stack([np.roll(u, k) for k in range(5)]) + 0.1 * np.random.default_rng(3).standard_normal((len(u), 5))
    ref, got = capacities(X, Z), capacities(split(X, 700), Z)
    np.testing.assert_allclose(got.values, ref.values, rtol=0, atol=1e-10)
    np.testing.assert_allclose(got.null, ref.null, rtol=1e-8)
    with pytest.raises(ValueError, match="targets has 10 rows but states has"):
        capacities(split(X, 700), Z[:10])


@pytest.mark.parametrize(
    ("make", "exc", "match"),
    [
        (lambda X: [X[:100], X[100:, :5]], ValueError, "blocks must all have 40 columns; the block at row 100"),
        (lambda X: [X[:100], np.vstack([X[100:200], np.full((1, 40), np.nan)])], ValueError, "non-finite.*row 200"),
        (lambda X: iter([X]), TypeError, "read more than once"),
        (lambda X: "states.csv", ValueError, r"must be a \.npy file"),
        (lambda X: [X[:-5]], ValueError, "rows but u has"),
    ],
)
def test_bad_blocks(esn, make, exc, match):
    X, u = esn
    with pytest.raises(exc, match=match):
        memory_capacity(make(X), u, max_delay=10)


def test_a_memmap_of_the_wrong_dtype_is_a_type_error(esn, tmp_path):
    X, u = esn
    for dtype in (np.complex128, np.bool_):
        np.save(tmp_path / "x.npy", X.astype(dtype))
        with pytest.raises(TypeError, match="must hold real numbers"):
            memory_capacity(tmp_path / "x.npy", u, max_delay=10)


def test_growing_states_in_blocks_are_an_error():
    W = wrec.weights.gaussian(30, spectral_radius=1.02, seed=0)
    u = wrec.tasks.uniform_input(5000, seed=1)
    X = run(wrec.reservoir.Linear(W, seed=2), u, washout=1000)
    with pytest.raises(ValueError, match="grow without bound"):
        memory_capacity(split(X, 300), u[1000:], max_delay=20)


def test_readout_profile_and_readout_subsets_of_blocks_equal_memory(esn):
    from wrec.capacity import capacity_by_readout

    X, u = esn
    for order in ("first", "random"):
        ref = capacity_by_readout(X, u, [5, 20, 40], max_delay={1: 30, 2: 5}, order=order, seed=4)
        got = capacity_by_readout(split(X, 900), u, [5, 20, 40], max_delay={1: 30, 2: 5}, order=order, seed=4)
        np.testing.assert_array_equal(got.order, ref.order)
        np.testing.assert_allclose(got.table.capacity, ref.table.capacity, rtol=0, atol=1e-10)
        np.testing.assert_allclose(got.table.raw, ref.table.raw, rtol=0, atol=1e-10)
        assert got.table["rank"].tolist() == ref.table["rank"].tolist()
    ref, got = memory_capacity(X, u, 30, readout=[3, 1, 7]), memory_capacity(split(X, 900), u, 30, readout=[3, 1, 7])
    np.testing.assert_allclose(got.raw, ref.raw, rtol=0, atol=1e-10)


def test_readout_profile_of_rank_deficient_blocks_uses_the_same_fallback():
    from wrec.capacity import capacity_by_readout

    W, w_in = kubota_reservoir(50, seed=0)
    v = kubota_input(20_000, seed=0)
    K = run(ESN(W, w_in=w_in, input_scale=0.1, recurrent_scale=0.1), v, washout=10_000)
    kw = dict(max_delay={1: 30, 2: 5}, standardize=False, threshold=ChiSquare())
    ref = capacity_by_readout(K, v[10_000:], [10, 30, 50], **kw)
    got = capacity_by_readout(split(K, 2500), v[10_000:], [10, 30, 50], **kw)
    assert ref.table["rank"].max() == 16 and got.table["rank"].tolist() == ref.table["rank"].tolist()
    np.testing.assert_allclose(got.table.capacity, ref.table.capacity, rtol=0, atol=1e-10)


def test_torch_states_give_numpys_numbers(esn):
    torch = pytest.importorskip("torch")
    X, u = esn
    delays = {1: 30, 2: 5, 3: 3}
    same(ipc(torch.from_numpy(X), u, max_delay=delays), ipc(X, u, max_delay=delays))
    X32 = X.astype(np.float32)
    same(ipc(torch.from_numpy(X32), u, max_delay=delays, threshold=ChiSquare()),
         ipc(X32, u, max_delay=delays, threshold=ChiSquare()))
    ref = memory_capacity(X, u, 40, readout=5)
    np.testing.assert_allclose(memory_capacity(torch.from_numpy(X), u, 40, readout=5).raw, ref.raw, rtol=0, atol=1e-10)
    with pytest.raises(TypeError, match="real numbers"):
        memory_capacity(torch.zeros(100, 3, dtype=torch.complex64), u[:100], 5)


def test_cuda_tensors_and_cupy_arrays_give_numpys_numbers(esn):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    X, u = esn
    delays = {1: 30, 2: 5, 3: 3}
    ref = ipc(X, u, max_delay=delays)
    same(ipc(torch.from_numpy(X).cuda(), u, max_delay=delays), ref)
    X32 = X.astype(np.float32)
    same(ipc(torch.from_numpy(X32).cuda(), u, max_delay=delays, threshold=ChiSquare()),
         ipc(X32, u, max_delay=delays, threshold=ChiSquare()))
    curve = memory_capacity(torch.from_numpy(X).cuda(), u, 40, readout=5).raw
    np.testing.assert_allclose(curve, memory_capacity(X, u, 40, readout=5).raw, rtol=0, atol=1e-10)
    cupy = pytest.importorskip("cupy")
    same(ipc(cupy.asarray(X), u, max_delay=delays), ref)  # through DLPack, without a copy


def test_reservoir_writes_states_to_a_npy_file_that_capacities_read_in_blocks(tmp_path):
    W = wrec.weights.gaussian(30, spectral_radius=0.9, seed=0)
    u = wrec.tasks.uniform_input(6_000, seed=1)
    model = ESN(W, input_scale=0.3, seed=2)
    X = run(model, u, washout=500)
    on_disk = run(model, u, washout=500, out=tmp_path / "states.npy", dtype=np.float32)
    assert isinstance(on_disk, np.memmap) and on_disk.shape == X.shape
    np.testing.assert_allclose(np.load(tmp_path / "states.npy"), X, rtol=1e-4, atol=1e-5)  # float32 run
    same(ipc(tmp_path / "states.npy", u[500:], max_delay={1: 20, 2: 4}), ipc(np.asarray(on_disk), u[500:],
                                                                               max_delay={1: 20, 2: 4}))
    batch = run(ESN(W, input_scale=np.array([0.3, 0.6]), seed=2), u, washout=500, out=tmp_path / "b.npy")
    assert batch.shape == (2, 5500, 30)
    np.testing.assert_allclose(batch[0], X, rtol=0, atol=1e-12)  # a batched product rounds differently
    with pytest.raises(ValueError, match=r"\.npy file"):
        run(model, u, out=tmp_path / "states.txt")
    with pytest.raises(ValueError, match="shape"):
        run(model, u, washout=500, out=np.empty((10, 30)))


@pytest.mark.slow
def test_dask_cluster_projects_row_blocks_on_workers_with_the_local_numbers(esn):
    distributed = pytest.importorskip("distributed")
    da = pytest.importorskip("dask.array")
    X, u = esn
    delays = {1: 30, 2: 6}
    local = ipc(X, u, max_delay=delays)
    cluster_options = dict(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    with distributed.LocalCluster(**cluster_options) as cluster, distributed.Client(cluster) as client:
        states = da.from_array(X, chunks=(1100, -1))
        got = ipc(states, u, max_delay=delays)
        np.testing.assert_allclose(got.table.capacity, local.table.capacity, rtol=0, atol=1e-12)
        assert got.total == pytest.approx(local.total, abs=1e-10)
        assert sum(client.run(lambda dask_worker: len(dask_worker.data) + dask_worker.state.executed_count)
                   .values()) > 0  # the projections ran on the workers
        # a worker lost while the table is computed: dask reruns its tasks elsewhere, the table is the same
        victim = next(iter(cluster.workers.values()))
        import threading
        threading.Timer(0.3, lambda: client.loop.add_callback(victim.kill)).start()
        again = ipc(states, u, max_delay={1: 30, 2: 6, 3: 6})
        np.testing.assert_allclose(again.table.capacity, ipc(X, u, max_delay={1: 30, 2: 6, 3: 6}).table.capacity,
                                   rtol=0, atol=1e-12)


def _npy_states(path, T, N=100):
    """Bounded states of T rows written block by block to a .npy file (never whole in memory)."""
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=(T, N))
    rng = np.random.default_rng(0)
    for t0 in range(0, T, 1 << 16):
        X[t0 : t0 + (1 << 16)] = np.tanh(rng.standard_normal((min(1 << 16, T - t0), N)))
    X.flush()
    return path, np.random.default_rng(1).uniform(-1.0, 1.0, T)


@pytest.mark.slow
def test_memory_of_blockwise_capacities_grows_by_a_few_floats_per_row_not_by_the_states(tmp_path):
    import tracemalloc

    def peak(fn):
        tracemalloc.start()
        try:
            fn()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    peaks = {}
    for T in (200_000, 1_000_000):
        path, u = _npy_states(tmp_path / f"x{T}.npy", T)
        peaks[T] = (peak(lambda path=path, u=u: ipc(path, u, max_delay={1: 10, 2: 3}, threshold=ChiSquare())),
                    peak(lambda path=path, u=u: memory_capacity(path, u, 50, threshold=ChiSquare())))
    rows, states_bytes = 800_000, 1_000_000 * 100 * 8
    # What grows with T: the input basis (one float per row and degree), the row leverages and the null weights
    # (a float per row each): at most (max_degree + 4) floats per row. The states (N = 100 floats per row) never.
    for which, max_degree in ((0, 2), (1, 1)):
        growth = peaks[1_000_000][which] - peaks[200_000][which]
        assert growth <= (max_degree + 4) * 8 * rows, (which, growth / rows)
        assert peaks[1_000_000][which] < 0.1 * states_bytes


def _peak_rss_mb_of(fn):
    """Growth of this process's peak resident memory (VmHWM) during fn(), MB; Linux only."""
    def hwm():
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) / 1e3 for line in f if line.startswith("VmHWM"))
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak to the current resident size
    except OSError:
        pytest.skip("needs Linux's /proc/self/clear_refs to reset the peak resident size")
    base = hwm()
    fn()
    return hwm() - base


@pytest.mark.slow
def test_a_npy_path_is_read_without_the_file_becoming_resident(tmp_path):
    path, u = _npy_states(tmp_path / "x.npy", 500_000)  # 400 MB
    by_path = _peak_rss_mb_of(lambda: memory_capacity(path, u, 20, threshold=ChiSquare()))
    assert by_path < 100, by_path  # row blocks and the O(T) vectors, not the file (a memmap shows ~400 MB)
