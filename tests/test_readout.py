"""Nested readouts: one QR for every L equals a fresh SVD per L , full-rank or not."""

import numpy as np
import pytest

import wrec
from wrec.capacity import capacities, capacity_by_readout, ipc, memory_capacity, nested_decompose
from wrec.capacity.readout import readout_order


@pytest.fixture(scope="module")
def esn():
    W = wrec.weights.gaussian(60, 0.9, seed=0)
    u = wrec.tasks.uniform_input(6000, seed=1)
    X = wrec.reservoir.run(wrec.reservoir.ESN(W, input_scale=0.5, seed=0), u, washout=500)
    return X, u[500:]


def per_target(dec, Z):
    G = Z.T @ dec.augmented
    return dec.from_projections(G, (Z * Z).sum(axis=0))


def test_nested_qr_equals_per_readout_svd_per_target(esn):
    X, _ = esn
    Z = np.random.default_rng(2).standard_normal((X.shape[0], 40)) + X[:, :3] @ np.ones((3, 40))
    Ls = np.array([1, 2, 5, 17, 33, 60])
    nested = per_target(nested_decompose(X, Ls), Z)
    for i, L in enumerate(Ls):
        np.testing.assert_allclose(nested[:, i], capacities(X[:, :L], Z).values, rtol=0, atol=1e-12)


def test_rank_deficient_prefixes_fall_back_to_the_svd(esn):
    X, _ = esn
    Y = np.column_stack([X[:, :10], X[:, :3] @ np.ones(3), X[:, 10:20]])  # column 10 is dependent
    Z = np.random.default_rng(3).standard_normal((X.shape[0], 20)) + Y[:, :2] @ np.ones((2, 20))
    Ls = np.array([5, 10, 11, 12, 21])
    dec = nested_decompose(Y, Ls)
    assert dec.rank.tolist() == [5, 10, 10, 11, 20]
    got = per_target(dec, Z)
    for i, L in enumerate(Ls):
        np.testing.assert_allclose(got[:, i], capacities(Y[:, :L], Z).values, rtol=0, atol=1e-10)


def test_profile_matches_separate_ipc_calls_and_orders(esn):
    X, u = esn
    delays = {1: 30, 2: 5, 3: 5}
    prof = capacity_by_readout(X, u, [3, 20, 60], max_delay=delays, order="random", seed=4, threshold=None)
    idx = readout_order(60, "random", seed=4)
    for L in (3, 20, 60):
        want = ipc(X[:, idx[:L]], u, max_delay=delays, threshold=None).summary["raw"].to_numpy()
        got = prof.table[prof.table.L == L].sort_values("degree")["raw"].to_numpy()
        np.testing.assert_allclose(got, want, atol=1e-10)
    first = capacity_by_readout(X, u, [10, 60], max_degree=1, max_delay=30)
    assert first.memory_capacity[60] == pytest.approx(memory_capacity(X, u, max_delay=30).total, abs=1e-9)
    mc10 = memory_capacity(X[:, :10], u, max_delay=30, threshold=None).raw_total
    assert first.table.query("L == 10")["raw"].item() == pytest.approx(mc10, abs=1e-10)
    assert (first.memory_capacity.diff().dropna() >= 0).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"readouts": [0, 3]}, "readouts must lie in 1..N"), ({"readouts": [61]}, "readouts must be <="),
     ({"readouts": [2], "order": "sorted"}, "order must be"), ({"readouts": [2], "order": [1, 1, 2]}, "distinct")],
)
def test_bad_input(esn, kwargs, match):
    X, u = esn
    with pytest.raises(ValueError, match=match):
        capacity_by_readout(X, u, max_degree=1, max_delay=5, **kwargs)
