"""The GEMM-bound route of ``decompose``/``nested_decompose`` (CholeskyQR2) against the LAPACK route (SVD of X,
Householder QR): the same singular values, ranks and capacities to 1e-10, and the fallback where it must run."""

import numpy as np
import pytest

import wrec
from wrec.capacity import capacity_by_readout, core, decompose, ipc, nested_decompose
from wrec.experiments.ipc_profile import kubota_input, kubota_reservoir
from wrec.reservoir import ESN, run


@pytest.fixture
def lapack_route(monkeypatch):
    """Run the old (LAPACK) route: no κ passes the bound."""
    monkeypatch.setattr(core, "CHOLESKY_MAX_CONDITION", 0.0)


def lapack(fn, *args, **kwargs):
    saved = core.CHOLESKY_MAX_CONDITION
    core.CHOLESKY_MAX_CONDITION = 0.0
    try:
        return fn(*args, **kwargs)
    finally:
        core.CHOLESKY_MAX_CONDITION = saved


@pytest.fixture(scope="module")
def esn():
    W = wrec.weights.gaussian(40, spectral_radius=0.9, seed=0)
    u = wrec.tasks.uniform_input(6_000, seed=1)
    return run(ESN(W, input_scale=0.3, seed=2), u, washout=1000), u[1000:]


@pytest.fixture(scope="module")
def kubota():
    W, w_in = kubota_reservoir(50, seed=0)
    v = kubota_input(30_000, seed=0)
    return {rho: run(ESN(W, w_in=w_in, input_scale=0.1, recurrent_scale=rho), v, washout=10_000)
            for rho in (0.1, 0.5)}, v[10_000:]


def targets(X, m=30, seed=0):
    rng = np.random.default_rng(seed)
    Z = np.column_stack([X @ rng.standard_normal((X.shape[1], m)) + rng.standard_normal((X.shape[0], m)),
                         np.tanh(X[:, :m]) ** 2, rng.standard_normal((X.shape[0], m))])
    return Z - Z.mean(axis=0)


def same_decomposition(new, old, X):
    assert (new.route, old.route) == ("cholesky-qr2", "svd")
    s0 = old.singular_values[0]
    np.testing.assert_allclose(new.singular_values, old.singular_values, rtol=0, atol=1e-10 * s0)
    assert new.rank == old.rank
    Z = targets(X)
    for a, b in zip(new.capacities(Z), old.capacities(Z), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10)
    B = new.basis
    np.testing.assert_allclose(B.T @ B, np.eye(new.rank), rtol=0, atol=1e-12)


@pytest.mark.parametrize("standardize", [True, False])
def test_well_conditioned_states_take_cholesky_qr2_with_the_svd_numbers(esn, standardize):
    X, _ = esn
    same_decomposition(decompose(X, standardize=standardize), lapack(decompose, X, standardize=standardize), X)


def test_rank_rule_dropping_a_direction_gives_the_same_rank(kubota):
    # ρ = 0.5 on the raw states: κ ≈ 1e7, just inside the bound, and the Kubota rule drops 1 of 50 directions
    K = kubota[0][0.5]
    new, old = decompose(K, standardize=False), lapack(decompose, K, standardize=False)
    assert old.rank == 49
    same_decomposition(new, old, K)
    for rule in ("numpy", 1e-3):  # the other rules on the same states
        same_decomposition(decompose(K, rank=rule), lapack(decompose, K, rank=rule), K)


def test_ill_conditioned_states_fall_back_to_the_svd(kubota):
    K = kubota[0][0.1]  # singular values spanning 10¹², rank 16 of 50 on the raw states
    dec = decompose(K, standardize=False)
    assert dec.route == "svd" and dec.rank == 16
    assert nested_decompose(K, [10, 50], standardize=False).route == "householder"


def test_rank_deficient_and_short_states_fall_back(esn):
    X, _ = esn
    duplicated = np.column_stack([X, X[:, 3]])
    dec = decompose(duplicated)
    assert dec.route == "svd" and dec.rank == X.shape[1]
    constant = np.column_stack([X, np.full(X.shape[0], 2.0)])
    assert decompose(constant).route == "svd" and decompose(constant).rank == X.shape[1]
    short = core.CHOLESKY_MIN_RATIO * X.shape[1]  # the rule's shape bound: T ≥ CHOLESKY_MIN_RATIO·L
    assert decompose(X[: short - 1]).route == "svd"
    assert decompose(X[:short]).route == "cholesky-qr2"


def test_float32_states(esn):
    X32 = esn[0].astype(np.float32)
    X = X32.astype(np.float64)
    same_decomposition(decompose(X32), lapack(decompose, X32), X)


@pytest.mark.parametrize("k", [2, 4, 6, 7, 8])
def test_agreement_up_to_and_beyond_the_condition_bound(monkeypatch, k):
    """The measured rule: with the bound lifted, CholeskyQR2 still gives the SVD's rank and capacities to 1e-10 at
    κ = 10⁸, ten times the bound (CHOLESKY_MAX_CONDITION = 10⁷); at 10⁹ its Cholesky fails."""
    rng = np.random.default_rng(k)
    T, L = 8000, 60
    U, _ = np.linalg.qr(rng.standard_normal((T, L)))
    V, _ = np.linalg.qr(rng.standard_normal((L, L)))
    X = (U * np.logspace(0, -k, L)) @ V.T + 3.0
    old = lapack(decompose, X, standardize=False)
    monkeypatch.setattr(core, "CHOLESKY_MAX_CONDITION", np.inf)
    same_decomposition(decompose(X, standardize=False), old, X)


def test_condition_bound_is_applied():
    rng = np.random.default_rng(9)
    T, L = 4000, 30
    U, _ = np.linalg.qr(rng.standard_normal((T, L)))
    V, _ = np.linalg.qr(rng.standard_normal((L, L)))
    for k, route in ((6, "cholesky-qr2"), (7.5, "svd"), (12, "svd")):
        X = (U * np.logspace(0, -k, L)) @ V.T
        assert decompose(X, standardize=False).route == route, k
    assert core.cholesky_route(T, L, 1e7) and not core.cholesky_route(T, L, 1.01e7)
    assert not core.cholesky_route(core.CHOLESKY_MIN_RATIO * L - 1, L, 1.0)


def test_nested_cholesky_qr2_equals_householder(esn, kubota):
    X, _ = esn
    readouts = [1, 5, 17, 40]
    new, old = nested_decompose(X, readouts), lapack(nested_decompose, X, readouts)
    assert (new.route, old.route) == ("cholesky-qr2", "householder")
    np.testing.assert_array_equal(new.rank, old.rank)
    Z = targets(X)
    G, S = Z.T @ new.augmented, (Z * Z).T @ new.squared
    G0, S0 = Z.T @ old.augmented, (Z * Z).T @ old.squared
    np.testing.assert_allclose(new.from_projections(G, S[:, -1]), old.from_projections(G0, S0[:, -1]), atol=1e-10)
    np.testing.assert_allclose(new.null(G, S), old.null(G0, S0), rtol=0, atol=1e-10)
    K = kubota[0][0.5]  # prefixes near the rank rule's bound take the SVD of R[:L, :L]
    delays = {1: 20, 2: 4}
    a = capacity_by_readout(K, kubota[1], [10, 30, 50], max_delay=delays, standardize=False)
    b = lapack(capacity_by_readout, K, kubota[1], [10, 30, 50], max_delay=delays, standardize=False)
    np.testing.assert_array_equal(a.table["rank"], b.table["rank"])
    np.testing.assert_allclose(a.table.capacity, b.table.capacity, rtol=0, atol=1e-10)


def test_ipc_tables_unchanged(esn, lapack_route):
    X, u = esn
    old = ipc(X, u, max_delay={1: 30, 2: 6, 3: 4})
    core.CHOLESKY_MAX_CONDITION = 1e7  # monkeypatch restores 0 after the test
    new = ipc(X, u, max_delay={1: 30, 2: 6, 3: 4})
    assert new.rank == old.rank
    np.testing.assert_allclose(new.table.capacity, old.table.capacity, rtol=0, atol=1e-10)
    np.testing.assert_allclose(new.table.null, old.table.null, rtol=0, atol=1e-10)


def test_blockwise_pass_1_shares_the_route(esn):
    """``r_factor`` (the R of each row block in ``wrec.capacity.blocks.scan``) is Householder's R up to the signs
    of its rows, and blockwise IPC is the same with either route."""
    X, u = esn
    A = np.column_stack([np.ones(X.shape[0]), X])
    R0 = np.linalg.qr(A, mode="r")
    R = core.r_factor(A.copy())
    np.testing.assert_allclose(R, np.sign(np.diag(R0))[:, None] * R0, rtol=0, atol=1e-10 * np.abs(R0).max())
    blocks = [X[i : i + 1000] for i in range(0, X.shape[0], 1000)]
    new = ipc(blocks, u, max_delay={1: 30, 2: 5})
    old = lapack(ipc, blocks, u, max_delay={1: 30, 2: 5})
    np.testing.assert_allclose(new.table.capacity, old.table.capacity, rtol=0, atol=1e-10)
    assert new.rank == old.rank


def test_cholesky_qr2_factors_in_place_and_refuses_what_it_cannot(esn):
    X = core.centred_states(esn[0])
    for other in (np.asfortranarray(X), X.astype(np.float32)):
        kept = other.copy()
        assert core.cholesky_qr2(other) is None
        np.testing.assert_array_equal(other, kept)
    Q1 = X.copy()
    R1, R2 = core.cholesky_qr2(Q1)
    Q = np.linalg.solve(R2.T, Q1.T).T
    np.testing.assert_allclose(Q.T @ Q, np.eye(X.shape[1]), rtol=0, atol=1e-13)
    np.testing.assert_allclose(Q @ (R2 @ R1), X, rtol=0, atol=1e-13)


def test_row_parts_give_the_one_thread_numbers(esn, monkeypatch):
    """CholeskyQR2 and the basis on 3 threads, each a third of the rows (its Gram a sum over the thirds), give
    the one-part SVD numbers: the decomposition, the nested one and the capacities."""
    X, _ = esn
    one = decompose(X), nested_decompose(X, [5, 40])
    monkeypatch.setattr(core, "spare_threads", lambda: 3)
    monkeypatch.setattr(core, "PART_MIN_ROWS", 1000)
    assert [p.stop - p.start for p in core.row_parts(X.shape[0])] == [1666, 1667, 1667]
    same_decomposition(decompose(X), lapack(decompose, X), X)
    np.testing.assert_allclose(decompose(X).basis, one[0].basis, rtol=0, atol=1e-12)
    np.testing.assert_allclose(nested_decompose(X, [5, 40]).basis, one[1].basis, rtol=0, atol=1e-12)
